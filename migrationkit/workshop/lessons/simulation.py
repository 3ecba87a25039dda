"""Workers without a database: sinks that only wait, so dispatch and backpressure show plainly.

A simulated sink sleeps ``row_cost_s`` per row instead of writing (a stand-in
for PostgreSQL's time), and can make one worker slower than the others. The
sinks and transforms here are module-level functions (or ``functools.partial``
of them) because process workers receive them pickled by name.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import random
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.dispatch import Dispatcher
from migrationkit._executors.worker import Sink, SinkOpener, WorkerJob
from migrationkit._normalize.rows import Batch, PreparedBatch, Rejection, Row, Transform
from migrationkit._observe.progress import NullProgress, Progress
from migrationkit._run.report import MigrationReport
from migrationkit._settings.settings import Backend

#: Clusters name their workers ``migrationkit-worker-<index>`` (task, thread or process).
WORKER_NAME_PREFIX = "migrationkit-worker-"

#: What one simulated row costs a normal worker (a COPY-like ~25k rows/s per worker).
ROW_COST_S = 40e-6

SCENARIOS = ("uniform", "skewed", "slow worker")


def current_worker() -> int | None:
    """The index of the cluster worker running this code, read from its task/thread/process name."""
    names = [multiprocessing.current_process().name, threading.current_thread().name]
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        task = None
    if task is not None:
        names.append(task.get_name())
    for name in names:
        if name.startswith(WORKER_NAME_PREFIX):
            return int(name.removeprefix(WORKER_NAME_PREFIX))
    return None


def simulated_row(document: Mapping[str, Any]) -> Row:
    """A row for any document with an ``_id``: no validation, next to no CPU."""
    return (str(document["_id"]), "user", "user@example.org", 30, None)


@asynccontextmanager
async def simulated_sink(
    target: object,
    *,
    row_cost_s: float = ROW_COST_S,
    slow_worker: int | None = None,
    slow_factor: float = 1.0,
) -> AsyncIterator[Sink]:
    """Wait ``row_cost_s`` per row instead of writing; ``slow_worker`` waits ``slow_factor`` x."""
    factor = slow_factor if slow_worker is not None and current_worker() == slow_worker else 1.0

    async def write(batch: PreparedBatch) -> list[Rejection]:
        await asyncio.sleep(len(batch.rows) * row_cost_s * factor)
        return list(batch.rejections)

    yield write


@asynccontextmanager
async def discarding_sink(target: object) -> AsyncIterator[Sink]:
    """A sink that drops rows at once: what is left to time is the transform."""

    async def write(batch: PreparedBatch) -> list[Rejection]:
        return list(batch.rejections)

    yield write


def scenario_sink(scenario: str, *, row_cost_s: float = ROW_COST_S) -> SinkOpener:
    """The sink of a dispatch scenario: the slow-worker one makes worker 0 four times slower."""
    if scenario == "slow worker":
        return functools.partial(
            simulated_sink, row_cost_s=row_cost_s, slow_worker=0, slow_factor=4.0
        )
    return functools.partial(simulated_sink, row_cost_s=row_cost_s)


def scenario_batches(
    scenario: str, rows: int, batch_size: int, *, seed: int = 0
) -> list[list[dict[str, Any]]]:
    """``rows`` documents in batches: equal ones, or (``skewed``) 1 in 5 batches 6 times larger.

    Skewed batches keep the average: four of each five hold ``batch_size / 2``
    documents and one holds ``3 * batch_size``, shuffled with ``seed``.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if scenario == "skewed":
        small = max(1, batch_size // 2)
        pattern = [3 * batch_size, small, small, small, small]
        sizes = pattern * (rows // sum(pattern) + 1)
        random.Random(seed).shuffle(sizes)
    else:
        sizes = [batch_size] * (rows // batch_size + 1)
    batches, start = [], 0
    for size in sizes:
        size = min(size, rows - start)
        if size <= 0:
            break
        batches.append([{"_id": number} for number in range(start, start + size)])
        start += size
    return batches


async def run_batches(
    batches: Iterable[Batch],
    *,
    backend: Backend = "asyncio",
    workers: int = 2,
    job: WorkerJob,
    dispatcher: Dispatcher | None = None,
    queue_depth: int = 2,
    progress: Progress | None = None,
) -> MigrationReport:
    """Push in-memory ``batches`` through a cluster and report like a migration would."""
    progress = progress or NullProgress()
    batches = list(batches)
    cluster = ClusterMigrationFactory.create(
        backend, workers, job=job, queue_depth=queue_depth, dispatcher=dispatcher, progress=progress
    )
    progress.start(sum(len(batch) for batch in batches), f"{backend} x{workers}")
    started = time.perf_counter()
    try:
        async with cluster:
            for batch in batches:
                await cluster.submit(batch)
    finally:
        progress.close()
    return MigrationReport(
        backend=backend,
        workers=workers,
        writer="simulated",
        batch_size=max((len(batch) for batch in batches), default=0),
        rows_read=sum(len(batch) for batch in batches),
        rows_written=sum(worker.rows_written for worker in cluster.stats),
        rows_rejected=sum(worker.rows_rejected for worker in cluster.stats),
        elapsed_s=time.perf_counter() - started,
        per_worker=cluster.stats,
        rejected_samples=cluster.rejected,
        source="memory",
        target=f"{job.open_sink!r}",
    )


def simulation_job(open_sink: SinkOpener, transform: Transform = simulated_row) -> WorkerJob:
    """A worker job that never touches PostgreSQL."""
    return WorkerJob(target=None, open_sink=open_sink, transform=transform)


def user_documents(rows: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """Seeded fake users with integer ``_id``s, in memory (for CPU-only experiments)."""
    from migrationkit.workshop.seeding import UserFactory

    return [{"_id": number, **user} for number, user in enumerate(UserFactory(seed).users(rows))]


def in_batches(documents: Sequence[Any], batch_size: int) -> list[Sequence[Any]]:
    return [documents[i : i + batch_size] for i in range(0, len(documents), batch_size)]
