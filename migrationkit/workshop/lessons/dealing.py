"""Lesson 06's dealing: one reader, N bounded queues, and who gets the next batch.

:func:`copy_round_robin` is the mechanism, short enough to read in the lesson: a reader
deals each batch to the next queue in turn (``next(cycle)``), and each worker writes
what its own queue holds. The kit does the same with a *dispatcher*
(:class:`~migrationkit._executors.dispatch.RoundRobin` or ``LeastLoaded``) choosing the
inbox in ``ClusterMigrationBase.submit``. The slow-worker runs are simulated (workers
that wait instead of writing, :mod:`~migrationkit.workshop.lessons.simulation`), timed
in whole rounds; every sentence is made here from the runs.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import asyncpg
from pymongo import AsyncMongoClient

from migrationkit._normalize.rows import document_to_row
from migrationkit.workshop.lessons.compare import overlaps, seconds_span, times
from migrationkit.workshop.lessons.experiments import run_dispatch
from migrationkit.workshop.lessons.lab import Choice
from migrationkit.workshop.lessons.overlap import REPEATS, Spread
from migrationkit.workshop.lessons.paging import (
    KEYSET,
    ONE_CURSOR,
    SKIP_LIMIT,
    scans_the_collection,
)
from migrationkit.workshop.lessons.results import Measurement

#: The kit's users table columns, in order: what ``document_to_row`` returns.
COLUMNS = ("mongo_id", "username", "email", "age", "registered_at")


async def copy_round_robin(
    mongo_uri: str,
    pg_dsn: str,
    *,
    database: str,
    collection: str,
    table: str,
    workers: int,
    batch_size: int,
    queue_depth: int = 2,
) -> list[int]:
    """Copy every user: one reader deals batches in turn to ``workers`` bounded queues.

    Returns how many batches each worker wrote.
    """
    queues: list[asyncio.Queue[list[Any] | None]] = [
        asyncio.Queue(maxsize=queue_depth) for _ in range(workers)
    ]
    turn = itertools.cycle(range(workers))  # 0, 1, …, workers - 1, 0, 1, …

    async def read() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
        async with client:
            cursor = client[database][collection].find({}, batch_size=batch_size)
            while batch := await cursor.to_list(batch_size):
                await queues[next(turn)].put(batch)  # waits while that queue is full
        for inbox in queues:
            await inbox.put(None)  # "no more batches", once for each worker

    async def write(inbox: asyncio.Queue[list[Any] | None]) -> int:
        batches = 0
        pg = await asyncpg.connect(pg_dsn)
        try:
            while (batch := await inbox.get()) is not None:
                rows = [document_to_row(document) for document in batch]
                await pg.copy_records_to_table(table, records=rows, columns=COLUMNS)
                batches += 1
        finally:
            await pg.close()
        return batches

    async with asyncio.TaskGroup() as group:  # if one fails, the others are cancelled
        writers = [group.create_task(write(inbox)) for inbox in queues]
        await read()
    return [writer.result() for writer in writers]


def dealt_note(batches: Sequence[int], *, rows: int, in_table: int) -> str:
    """Markdown: the batches each worker wrote, and whether every user arrived."""
    per_worker = ", ".join(f"worker {index}: **{count}**" for index, count in enumerate(batches))
    arrived = (
        "every user arrived" if in_table == rows else f"{in_table:,} of {rows:,} users arrived"
    )
    return f"Batches written: {per_worker} ({sum(batches)} in all); {arrived}."


# -- a slow worker, simulated ---------------------------------------------------------------


async def dispatch_runs(
    base: Choice,
    *,
    scenarios: Sequence[str],
    dispatchers: Sequence[str],
    repeats: int = REPEATS,
) -> list[Spread]:
    """Every scenario with every dispatcher, once a round for ``repeats`` rounds; a Spread each.

    The runs keep their reports (``spread.median_run.report``) for the timelines.
    """
    settings = [(scenario, dispatcher) for scenario in scenarios for dispatcher in dispatchers]
    runs: dict[tuple[str, str], list[Measurement]] = {setting: [] for setting in settings}
    for _ in range(max(1, repeats)):
        for scenario, dispatcher in settings:
            choice = base.but(scenario=scenario, dispatch=dispatcher)
            runs[scenario, dispatcher].append(await run_dispatch(choice))
    return [
        Spread(measured[0].label, measured[0].params, tuple(measured)) for measured in runs.values()
    ]


def _in(spreads: Sequence[Spread], scenario: str, dispatcher: str) -> Spread:
    return next(
        spread
        for spread in spreads
        if spread.params["scenario"] == scenario and spread.params["dispatch"] == dispatcher
    )


def compare_dispatchers(spreads: Sequence[Spread], scenario: str) -> str:
    """``"least-loaded 0.11 s, round-robin 0.22 s: 2.0x as long"``, or a tie (ranges overlap)."""
    robin, least = _in(spreads, scenario, "round-robin"), _in(spreads, scenario, "least-loaded")
    if overlaps(robin, least, span=seconds_span):
        return (
            f"a tie: round-robin {robin.seconds:.2f} s, least-loaded {least.seconds:.2f} s "
            "(their ranges overlap)"
        )
    faster, slower = (least, robin) if least.seconds < robin.seconds else (robin, least)
    return (
        f"{faster.params['dispatch']} {faster.seconds:.2f} s, "
        f"{slower.params['dispatch']} {slower.seconds:.2f} s: "
        f"{times(slower.seconds / faster.seconds)} as long"
    )


def rows_per_worker(spread: Spread) -> list[int]:
    """The rows each worker wrote in the median run."""
    report = spread.median_run.report
    if report is None:
        raise ValueError(f"{spread.label}: no report (dispatch_runs keeps them)")
    return [stats.rows_written for stats in report.per_worker]


def dispatch_note(spreads: Sequence[Spread], *, slow: str = "slow worker") -> str:
    """Markdown: every scenario's two dispatchers compared, and who got what when one is slow."""
    scenarios = list(dict.fromkeys(str(spread.params["scenario"]) for spread in spreads))
    lines = [
        f"- **{scenario}:** {compare_dispatchers(spreads, scenario)} (medians of "
        f"{len(_in(spreads, scenario, 'round-robin').runs)} runs)."
        for scenario in scenarios
    ]
    if slow in scenarios:
        robin, least = _in(spreads, slow, "round-robin"), _in(spreads, slow, "least-loaded")
        lines.append(
            f"- Rows per worker with worker 0 slow (median runs): round-robin "
            f"{_listing(rows_per_worker(robin))}; least-loaded {_listing(rows_per_worker(least))}."
        )
    return "\n".join(lines)


def _listing(values: Sequence[int]) -> str:
    return " / ".join(f"{value:,}" for value in values)


def backpressure_note(memory: Sequence[Measurement]) -> str:
    """Markdown: the traced memory peak and the time of each inbox size."""
    lines = [
        f"- **{m.label}:** peak **{m.extra['peak_mib']:.1f} MiB** of Python memory; "
        f"the run took {m.seconds:.2f} s."
        for m in memory
    ]
    unbounded = next((m for m in memory if m.params["queue_depth"] == 0), None)
    bounded = [m for m in memory if m.params["queue_depth"] > 0]
    if unbounded is not None and bounded:
        low = min(bounded, key=lambda m: m.extra["peak_mib"])
        lines.append(
            f"- Unbounded held {times(unbounded.extra['peak_mib'] / low.extra['peak_mib'])} "
            f"the memory of {low.label}, in {times(unbounded.seconds / low.seconds)} its time."
        )
    return "\n".join(lines)


def recap(
    batches: Sequence[int],
    dispatch: Sequence[Spread],
    memory: Sequence[Measurement],
    reads: Sequence[Spread],
    costs: Sequence[Spread],
) -> str:
    """The lesson's three lines, each number from the runs."""
    robin = _in(dispatch, "slow worker", "round-robin")
    least = _in(dispatch, "slow worker", "least-loaded")
    unbounded = next(m for m in memory if m.params["queue_depth"] == 0)
    bounded = min((m for m in memory if m.params["queue_depth"] > 0), key=lambda m: m.seconds)
    named = {str(spread.params["pager"]): spread for spread in reads}
    cursor, skip, keyset = named[ONE_CURSOR], named[SKIP_LIMIT], named[KEYSET]
    scan = scans_the_collection(costs)
    return "\n".join(
        [
            f"1. Round robin deals in turn (`next(cycle)`, the kit's `RoundRobin`): your code "
            f"gave its {len(batches)} workers {' / '.join(str(b) for b in batches)} batches. "
            f"With worker 0 four times slower: {compare_dispatchers(dispatch, 'slow worker')}; "
            f"round-robin still gave it {rows_per_worker(robin)[0]:,} rows, least-loaded "
            f"{rows_per_worker(least)[0]:,}.",
            f"2. Bounded inboxes hold memory flat: a peak of {bounded.extra['peak_mib']:.1f} MiB "
            f"with {bounded.label}, {unbounded.extra['peak_mib']:.1f} MiB unbounded.",
            f"3. The kit's reader is one cursor: {cursor.runs[0].rows:,} users in "
            f"{cursor.seconds:.2f} s, against {skip.seconds:.2f} s for skip/limit and "
            f"{keyset.seconds:.2f} s for the keyset pager, "
            + (
                "because on this server every query costs about a scan of the collection; "
                if scan
                else "on this server; "
            )
            + "on MongoDB the keyset pager's `$gt` walks the `_id` index and reads only its page.",
        ]
    )
