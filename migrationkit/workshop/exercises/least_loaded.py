"""Check for exercise 4: ``MyLeastLoaded`` in the learner's ``least_loaded.py``.

The dispatcher is first asked about hand-made ``in_flight`` lists, then plugged
into a real migration in which worker 0 is slow (:func:`slow_worker_sink`: it
waits before every write). The real step judges batch *counts*, never timings:
the slowness is large enough that a least-loaded dispatcher gives worker 0 a few
batches of 100, where round robin gives it a full share, 25.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from migrationkit._executors.worker import Sink, SinkOpener
from migrationkit._normalize.rows import PreparedBatch, Rejection
from migrationkit._target.loader import PostgresTarget, postgres_sink
from migrationkit.workshop.exercises.feedback import (
    Feedback,
    Hint,
    Step,
    learner_code,
    run_steps,
)
from migrationkit.workshop.exercises.learner import attribute
from migrationkit.workshop.exercises.plug import run_real_migration
from migrationkit.workshop.lessons.simulation import current_worker

TITLE = "Exercise 4 · a least-loaded dispatcher"
STUB_HINT = (
    "In choose(), in_flight holds one number per worker: return the index of the "
    "smallest one (the lowest index on a tie). min() over range(len(in_flight)) with a "
    "key does it, and so does a loop that remembers the best index so far."
)
ROWS, BATCH, WORKERS = 5_000, 50, 4
#: How long the slow worker waits per row before each write: half a second a batch,
#: about a hundred times what a fast worker needs to COPY one.
SLOW_ROW_S = 10e-3
#: The most batches the slow worker may get for the real step to pass: half a fair
#: share (12 of 100). Least-loaded gives it 2 to 4, up to 7 on a busy machine (ties
#: while the workers warm up go to worker 0); round robin gives it a full share, 25.
SLOW_MAX_BATCHES = ROWS // BATCH // WORKERS // 2


@asynccontextmanager
async def slow_worker_sink(
    target: PostgresTarget,
    *,
    slow_worker: int = 0,
    slow_row_s: float = SLOW_ROW_S,
    row_s: float = 0.0,
) -> AsyncIterator[Sink]:
    """:func:`postgres_sink` that waits before each write: ``slow_row_s`` a row on one worker.

    The other workers wait ``row_s`` a row (none by default). A stand-in for a worker
    on a congested connection (and, with ``row_s``, for the network every worker waits
    on): every batch is written to PostgreSQL, some later. Module-level, so any
    backend can use it.
    """
    delay_s = slow_row_s if current_worker() == slow_worker else row_s
    async with postgres_sink(target) as write:

        async def write_late(batch: PreparedBatch) -> list[Rejection]:
            await asyncio.sleep(len(batch.rows) * delay_s)
            return await write(batch)

        yield write_late


def slow_worker(
    slow_row_s: float = SLOW_ROW_S, *, row_s: float = 0.0, worker: int = 0
) -> SinkOpener:
    """A sink opener for :func:`run_real_migration` whose ``worker`` is slow (see above)."""
    return functools.partial(
        slow_worker_sink, slow_worker=worker, slow_row_s=slow_row_s, row_s=row_s
    )


async def check(module: ModuleType) -> Feedback:
    dispatcher_class = attribute(module, "MyLeastLoaded", kind="class")

    def make(size: int) -> Any:
        with learner_code(f"MyLeastLoaded({size})", stub_hint=STUB_HINT):
            return dispatcher_class(size)  # type: ignore[operator]

    def ask(size: int, cases: Sequence[Sequence[int]]) -> list[Any]:
        """One fresh dispatcher's answers to ``cases``, asked in order."""
        dispatcher = make(size)
        answers = []
        for case in cases:
            in_flight = list(case)
            with learner_code("choose()", stub_hint=STUB_HINT):
                answers.append(dispatcher.choose(in_flight))
            if in_flight != list(case):
                raise Hint(
                    f"choose({list(case)}) changed the list to {in_flight}",
                    "Read in_flight but do not change it: the cluster keeps that list and "
                    "updates it itself when it hands out a batch and when a worker finishes one.",
                )
        return answers

    async def gives_an_index() -> str:
        cases = [[7, 5, 9, 6], [12, 10, 11, 13], [6, 8, 7, 4]]
        answers = ask(4, cases)
        if not all(_is_index(answer, 4) for answer in answers):
            _judge(cases, answers, size=4)
        return "for 4 workers it answers 0 to 3, however large the counts"

    async def follows_in_flight() -> str:
        # Twelve asks: a random pick among four idle workers repeats itself twelve times
        # with a chance of 4 in 4**12, so it cannot slip through to the later steps.
        cases = [[0, 0, 0, 0]] * 12 + [[1, 0, 1, 1]] * 2
        answers = ask(4, cases)
        if len(set(answers[:12])) != 1 or len(set(answers[12:])) != 1:
            _judge(cases, answers, size=4)
        return "the same in_flight gets the same answer: no turns taken"

    async def least_busy() -> str:
        for size, cases in _UNIQUE.items():
            answers = ask(size, cases)
            if answers != [_least(case) for case in cases]:
                _judge(cases, answers, size=size)
        return "[2, 0, 1, 3] → worker 1, [3, 2, 1, 4] → worker 2 (and more, for 1 to 4 workers)"

    async def lowest_on_a_tie() -> str:
        answers = ask(4, _TIES)
        if answers != [_least(case) for case in _TIES]:
            _judge(_TIES, answers, size=4)
        return "[2, 0, 1, 0] → worker 1, [0, 0, 0, 0] → worker 0"

    async def routes_around_the_slow_worker() -> str:
        with learner_code("a migration with your dispatcher", stub_hint=STUB_HINT):
            report = await run_real_migration(
                "least_loaded",
                rows=ROWS,
                workers=WORKERS,
                batch_size=BATCH,
                backend="threading",  # each worker in its own thread: it reports promptly
                dispatcher=make(WORKERS),
                open_sink=slow_worker(SLOW_ROW_S),
            )
        batches = [worker.batches for worker in report.per_worker]
        if report.rows_written != ROWS:
            raise Hint(
                f"only {report.rows_written:,} of {ROWS:,} users reached PostgreSQL",
                "Every batch must go to some worker: check that choose() always returns "
                "an index, for any in_flight.",
            )
        fair = ROWS // BATCH // WORKERS
        if batches[0] > SLOW_MAX_BATCHES:
            raise Hint(
                f"with worker 0 slow, the {WORKERS} workers got {batches} batches "
                f"(a fair share is {fair}; the slow one should get at most {SLOW_MAX_BATCHES})",
                "The cluster calls choose() with in_flight as it is at that moment, and the "
                "slow worker's number stays high: pick from the in_flight you are given on "
                "every call, not from a copy or a count of your own.",
            )
        return (
            f"all {report.rows_written:,} users copied; slow worker 0 got {batches[0]} "
            f"of {sum(batches)} batches (a fair share is {fair}): {batches}"
        )

    return await run_steps(
        TITLE,
        [
            Step("answers with a worker index, not a count", gives_an_index),
            Step("follows in_flight instead of taking turns", follows_in_flight),
            Step("picks the least busy worker", least_busy),
            Step("breaks a tie with the lowest index", lowest_on_a_tie),
            Step(
                "gives a slow worker fewer batches, on the real servers",
                routes_around_the_slow_worker,
            ),
        ],
        praise="Your dispatcher routes batches around a slow worker. "
        "Watch it do so in the cells below.",
    )


#: Cases with one clear least busy worker, by number of workers.
_UNIQUE: dict[int, list[list[int]]] = {
    4: [[2, 0, 1, 3], [3, 2, 1, 4], [1, 1, 1, 0], [0, 2, 3, 1], [5, 4, 6, 9]],
    3: [[4, 2, 3], [1, 2, 0]],
    1: [[5], [0]],
}
#: Cases where several workers are equally least busy. The lowest index is required,
#: not just advised: ties are the usual case (idle workers are all at 0), so the rule
#: decides most batches; it is what the task and the built-in ``LeastLoaded`` say; and
#: with it every ``in_flight`` has one right answer, which the feedback can name.
_TIES = [[2, 0, 1, 0], [0, 0, 0, 0], [3, 1, 1, 1], [1, 2, 1, 2]]


def _least(in_flight: Sequence[int]) -> int:
    return min(range(len(in_flight)), key=lambda worker: in_flight[worker])


def _is_index(answer: Any, size: int) -> bool:
    return isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < size


def _judge(cases: Sequence[Sequence[int]], answers: list[Any], *, size: int) -> None:
    """Raise the hint for the first mistake ``answers`` show (they are known to be wrong)."""
    expected = [_least(case) for case in cases]
    wrong = next(
        i for i, (got, want) in enumerate(zip(answers, expected, strict=True)) if got != want
    )
    said = (
        f"choose({list(cases[wrong])}) answered {answers[wrong]!r}, expected {expected[wrong]}"
        + (f" (all answers: {answers})" if len(cases) > 1 else "")
    )
    mistakes: list[tuple[Callable[[], bool], str]] = [
        (
            lambda: not all(isinstance(a, int) and not isinstance(a, bool) for a in answers),
            "choose() must return a worker index, an int such as 0 or 3.",
        ),
        (
            lambda: all(a == min(case) for a, case in zip(answers, cases, strict=True)),
            "That is the smallest *count*, not whose it is: return the worker's index i "
            "(where in_flight[i] is smallest), not in_flight[i] itself.",
        ),
        (
            lambda: any(not 0 <= a < size for a in answers),
            f"Worker indices run from 0 to {size - 1}: return a position in in_flight.",
        ),
        (
            lambda: size > 1 and answers == [i % size for i in range(len(answers))],
            "Your answers went 0, 1, 2, … in turn whatever in_flight said: that is round "
            "robin (exercise 1), or a count of the batches you dealt, which only goes up. "
            "Least-loaded keeps no turn or count of its own: it reads in_flight on every "
            "call (the cluster lowers it when a batch is finished) and picks from it.",
        ),
        (
            lambda: any(
                answers[i] != answers[j]
                for i in range(len(cases))
                for j in range(len(cases))
                if list(cases[i]) == list(cases[j])
            ),
            "The same in_flight got different answers: decide from in_flight alone, with no "
            "turn, counter or random choice kept on self. (Counting the batches you dealt "
            "is not the same: only the cluster knows when a worker finishes one.)",
        ),
        (
            lambda: all(a in _busiest(case) for a, case in zip(answers, cases, strict=True)),
            "You picked the busiest worker: the one with the *most* unfinished batches. "
            "Least-loaded wants the fewest: min, not max.",
        ),
        (
            lambda: all(_is_least_busy(a, case) for a, case in zip(answers, cases, strict=True)),
            "Your dispatcher balances the load, well done; only the tie rule differs. When "
            "several workers are equally least busy, take the lowest index: compare with < "
            "(not <=) in a loop, or use min(), which keeps the first of equal keys. Ties are "
            "the usual case (idle workers are all at 0), so this rule decides most batches; "
            "with it, yours deals exactly like the built-in least-loaded dispatcher.",
        ),
    ]
    for applies, hint in mistakes:
        if applies():
            raise Hint(said, hint)
    raise Hint(said, "Find the smallest number in in_flight and return its position (index).")


def _busiest(in_flight: Sequence[int]) -> set[int]:
    top = max(in_flight)
    return {worker for worker, count in enumerate(in_flight) if count == top}


def _is_least_busy(answer: int, in_flight: Sequence[int]) -> bool:
    return in_flight[answer] == min(in_flight)
