"""Reading lessons 02 and 03's runs: speed-ups, how far waits overlapped, what bound each run.

Every judgement is made from the runs' own numbers against the thresholds here, so
that a lesson's sentence about a limit says what its stored figure shows.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from migrationkit._run.report import MigrationReport
from migrationkit.workshop.lessons.overlap_runs import BATCH_SIZE
from migrationkit.workshop.lessons.results import Measurement
from migrationkit.workshop.lessons.spreads import Spread

#: N workers count as "N times one worker" while they keep this share of it.
LINEAR_SHARE = 0.8
#: A run within this share of the source's own read rate is bound by the source.
NEAR_READ_SHARE = 0.85
#: Workers that had a batch in hand this share of the time were the slow part.
BUSY_SHARE = 0.75
#: A process (or a machine) using this share of its CPU is bound by it.
CPU_SATURATED = 0.9

#: The resources a run can be bound by, as the lessons name them.
ROUND_TRIPS = "waiting on PostgreSQL's round trips"
SOURCE_READ = "the source's read"
ONE_THREAD = "Python's one thread (the process used a whole core)"
MACHINE_CPU = "the CPUs (all busy: servers, workers, other programs)"
WRITES = "the writes to PostgreSQL"
READER = "the reader (the writers waited for batches)"


def by_workers(spreads: Sequence[Spread]) -> dict[int, Spread]:
    return {spread.workers: spread for spread in spreads}


def series(spreads: Sequence[Spread], key: str = "delay") -> dict[str, list[Spread]]:
    """Spreads grouped by ``params[key]``, in the order first seen."""
    groups: dict[str, list[Spread]] = {}
    for spread in spreads:
        groups.setdefault(str(spread.params[key]), []).append(spread)
    return groups


def speedups(spreads: Sequence[Spread]) -> dict[int, float]:
    """Each worker count's median rows/s over that of the fewest workers."""
    runs = by_workers(spreads)
    base = runs[min(runs)].rate
    return {count: spread.rate / base if base else 0.0 for count, spread in sorted(runs.items())}


def overlap_limit(spreads: Sequence[Spread]) -> int:
    """The most workers up to which every count kept :data:`LINEAR_SHARE` of N x the fewest."""
    gains = speedups(spreads)
    fewest = min(gains)
    top = fewest
    for count, gain in gains.items():
        if gain < LINEAR_SHARE * count / fewest:
            break
        top = count
    return top


def bound_by(spread: Spread, *, read_rate: float, fewest_rate: float, fewest: int = 1) -> str:
    """Which resource set this setting's pace, judged from its own runs.

    Far from PostgreSQL and still about N times the fewest workers: the waits. Else
    near the source's own read rate: the source. Else a whole core busy in this
    process: Python's one thread. Else workers often without a batch: the reader fed
    them too slowly. Else every CPU of the machine busy: the CPUs. Else the writes.
    """
    far = spread.params.get("pg_delay_s") is not None
    linear = spread.rate >= LINEAR_SHARE * fewest_rate * spread.workers / fewest
    if far and linear:
        return ROUND_TRIPS
    if spread.rate >= NEAR_READ_SHARE * read_rate:
        return SOURCE_READ
    if (spread.median_of("cpu_share") or 0.0) >= CPU_SATURATED:
        return ONE_THREAD
    busy = spread.median_of("busy_share")
    if busy is not None and busy < BUSY_SHARE:
        return READER
    if (spread.median_of("machine_busy") or 0.0) >= CPU_SATURATED:
        return MACHINE_CPU
    return ROUND_TRIPS if far else WRITES


def cores(spreads: Sequence[Spread]) -> dict[int, float]:
    """The median CPU this process used in each setting, in cores (1.0: one core throughout)."""
    return {
        count: s.median_of("cpu_share") or 0.0 for count, s in sorted(by_workers(spreads).items())
    }


def batch_in_hand_s(spread: Spread, *, batch_size: int = BATCH_SIZE) -> float:
    """The median time a worker held one batch (took it → committed it), from ``busy_share``."""
    batches = max(1, -(-spread.runs[0].rows // batch_size))
    busy = spread.median_of("busy_share")
    if busy is None:
        raise ValueError(f"{spread.label}: no busy_share (only migrations() measure it)")
    return busy * spread.seconds * spread.workers / batches


def held_batch_s(report: MigrationReport) -> float:
    """The median time a worker of ``report`` held a batch (took it -> committed it)."""
    spans = [end - start for stats in report.per_worker for start, end in stats.spans]
    return statistics.median(spans) if spans else 0.0


def first_batch_s(run: Measurement) -> float:
    """How long after ``migrate()`` was called the first batch reached a worker."""
    assert run.report is not None, "only migrations() keep their reports"
    starts = [start for stats in run.report.per_worker for start, _ in stats.spans]
    return min(starts) - float(run.extra["called_at"])
