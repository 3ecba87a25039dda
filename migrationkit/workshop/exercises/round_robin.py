"""Check for exercise 1: ``MyRoundRobin`` in the learner's ``round_robin.py``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from migrationkit.workshop.exercises.feedback import (
    Feedback,
    Hint,
    Step,
    learner_code,
    run_steps,
)
from migrationkit.workshop.exercises.learner import attribute
from migrationkit.workshop.exercises.plug import run_real_migration

TITLE = "Exercise 1 · a round-robin dispatcher"
STUB_HINT = (
    "Keep whose turn it is on self (start at 0 in __init__); in choose(), return it "
    "and move it on by one, back to 0 after the last worker."
)
ROWS, BATCH, WORKERS = 2_000, 250, 4


async def check(module: ModuleType) -> Feedback:
    dispatcher_class = attribute(module, "MyRoundRobin", kind="class")

    def make(size: int) -> Any:
        with learner_code(f"MyRoundRobin({size})", stub_hint=STUB_HINT):
            return dispatcher_class(size)  # type: ignore[operator]

    def deal(dispatcher: Any, in_flight: Sequence[int], times: int) -> list[Any]:
        with learner_code("choose()", stub_hint=STUB_HINT):
            return [dispatcher.choose(list(in_flight)) for _ in range(times)]

    async def in_turn() -> str:
        for size in (4, 3, 1):
            got = deal(make(size), [0] * size, 2 * size)
            _expect_rounds(got, size, "all workers idle")
        return "4 workers: 0, 1, 2, 3, 0, 1, 2, 3 (and the same for 3 and 1 workers)"

    async def ignores_load() -> str:
        got = deal(make(4), [9, 0, 0, 0], 8)
        _expect_rounds(
            got,
            4,
            "worker 0 busy with 9 batches",
            wrong_order_hint="Round robin deals in turn, however busy a worker is: leave "
            "in_flight alone (weighing it is exercise 4's least-loaded dispatcher).",
        )
        return "a busy worker 0 still gets every fourth batch"

    async def own_turn() -> str:
        first, second = make(2), make(3)
        got = [(deal(first, [0, 0], 1)[0], deal(second, [0, 0, 0], 1)[0]) for _ in range(3)]
        if got != [(0, 0), (1, 1), (0, 2)]:
            raise Hint(
                f"two dispatchers used side by side answered {got} "
                "(expected [(0, 0), (1, 1), (0, 2)])",
                "Each dispatcher needs its own turn: set it on self in __init__, "
                "not on the class or in a global variable.",
            )
        return "two dispatchers side by side keep separate turns"

    async def moves_data() -> str:
        report = await run_real_migration(
            "round_robin",
            rows=ROWS,
            workers=WORKERS,
            batch_size=BATCH,
            dispatcher=make(WORKERS),
        )
        batches = [worker.batches for worker in report.per_worker]
        if batches != [ROWS // BATCH // WORKERS] * WORKERS:
            raise Hint(
                f"in a real migration the {WORKERS} workers got {batches} batches",
                "Every worker should get the same share of equal batches: "
                "compare your choose() with the first step's answers.",
            )
        return (
            f"{report.rows_written:,} users copied into PostgreSQL, "
            f"{batches[0]} batches of {BATCH} per worker"
        )

    return await run_steps(
        TITLE,
        [
            Step("deals the workers in turn", in_turn),
            Step("ignores how busy the workers are", ignores_load),
            Step("each dispatcher keeps its own turn", own_turn),
            Step("moves real data from MongoDB to PostgreSQL", moves_data),
        ],
        praise="Your dispatcher deals batches like the one in migrationkit. "
        "Plug it into a full migration in the next cell.",
    )


def _expect_rounds(
    got: list[Any],
    size: int,
    situation: str,
    *,
    wrong_order_hint: str = "Start with worker 0 and go up by one on every call.",
) -> None:
    expected = [i % size for i in range(len(got))]
    if got == expected:
        return
    said = f"with {size} workers ({situation}) choose() answered {got}"
    problems: list[tuple[Callable[[], bool], str]] = [
        (
            lambda: not all(isinstance(value, int) for value in got),
            "choose() must return a worker index, an int such as 0 or 3.",
        ),
        (
            lambda: any(not 0 <= value < size for value in got),
            f"Worker indices run from 0 to {size - 1}: "
            "wrap around to 0 after the last one (the % operator helps).",
        ),
        (
            lambda: size > 1 and len(set(got)) == 1,
            f"Every batch went to worker {got[0]}: after each choice, "
            "move the turn on to the next worker (and remember it on self).",
        ),
    ]
    start = got[0] if got and isinstance(got[0], int) else 0
    if start and got == [(start + i) % size for i in range(len(got))]:
        problems.append(
            (
                lambda: True,
                f"A new dispatcher must start with worker 0; this one started at {start}. "
                "If the turn lives on the class or in a global, each new dispatcher carries "
                "on where the last one stopped: keep it on self, set in __init__.",
            )
        )
    for applies, hint in problems:
        if applies():
            raise Hint(f"{said}, expected {expected}", hint)
    raise Hint(f"{said}, expected {expected}", wrong_order_hint)
