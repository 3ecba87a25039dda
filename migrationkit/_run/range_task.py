"""A range task: migrate one ``_id`` range on its own connections, wherever it runs.

Data flow (the coordinator never holds a document)::

    coordinator: empty the target ─▶ walk the _ids ─▶ ranges [start, b1) [b1, b2) … [bN, end]
        │ one task per range (bounds only)           ▲ RangeResult: rows, rejections, busy s
        ▼                                            │
    range executor (process pool, Dask) ── task: own MongoDB client ─find(min, max)─▶
        the worker loop (prepare, then the sink) ─▶ PostgreSQL

A failed task is run again by the executor. That keeps the result exact because
every write is an upsert on ``mongo_id``: rows an attempt committed before it died
are updated in place by the next one, never doubled.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from migrationkit._errors import ConfigurationError
from migrationkit._executors.events import STOP, BatchDone, Failed, WorkerEvent
from migrationkit._executors.ranges import RangeFailedError
from migrationkit._executors.stats import REJECTION_SAMPLES, WorkerStats
from migrationkit._executors.worker import WorkerJob, run_worker
from migrationkit._normalize.rows import Batch
from migrationkit._retry import RetryPolicy
from migrationkit._servers.endpoints import Endpoints
from migrationkit._settings.settings import MongoDriver
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.partitioning import IdRange, iter_range


@dataclass(frozen=True)
class RangeJob:
    """What every range task needs. Picklable; its repr shows no password.

    ``endpoints=None`` means: read ``MIGRATIONKIT_MONGO_URI`` and ``MIGRATIONKIT_PG_DSN``
    where the task runs, so no password travels with the tasks. ``worker.pg_dsn`` is
    filled in there, from the endpoints.
    """

    endpoints: Endpoints | None
    database: str
    collection: str
    batch_size: int
    worker: WorkerJob
    mongo_driver: MongoDriver = "motor"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch_bytes: int | None = None  # a batch also closes at this many bytes of BSON


@dataclass(frozen=True)
class RangeResult:
    """What one range task did, and where it ran (``host:pid[:thread]``)."""

    index: int
    rows_read: int
    stats: WorkerStats
    rejected_samples: tuple[tuple[str, str], ...]
    where: str

    @property
    def rows_written(self) -> int:
        return self.stats.rows_written

    @property
    def rows_rejected(self) -> int:
        return self.stats.rows_rejected


def run_range(job: RangeJob, part: IdRange) -> RangeResult:
    """Entry point of a range task in a worker process or thread: its own event loop."""
    return asyncio.run(migrate_range(job, part))


async def migrate_range(job: RangeJob, part: IdRange) -> RangeResult:
    """Read ``part`` and write it through the same worker loop as every batch backend."""
    endpoints = job.endpoints or endpoints_from_environment()
    worker = replace(job.worker, target=replace(job.worker.target, pg_dsn=endpoints.pg_dsn))
    events: list[WorkerEvent] = []
    rows_read = 0
    seqs = itertools.count()
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=job.mongo_driver) as client:
        batches = iter_range(
            client[job.database][job.collection],
            part,
            batch_size=job.batch_size,
            batch_bytes=job.batch_bytes,
            policy=job.retry,
        )

        async def receive() -> tuple[int, Batch] | None:
            nonlocal rows_read
            batch = await anext(batches, None)
            if batch is None:
                return STOP
            rows_read += len(batch)
            return next(seqs), batch

        async with aclosing(batches):
            await run_worker(part.index, worker, receive, events.append)
    for event in events:
        if isinstance(event, Failed):
            raise RangeFailedError(part.index, event.message, event.traceback)
    return _summarise(part.index, rows_read, [e for e in events if isinstance(e, BatchDone)])


def endpoints_from_environment() -> Endpoints:
    """The databases as this worker's own environment names them (never the embedded ones)."""
    mongo, pg = (os.environ.get(f"MIGRATIONKIT_{name}") for name in ("MONGO_URI", "PG_DSN"))
    if not mongo or not pg:
        raise ConfigurationError(
            f"set MIGRATIONKIT_MONGO_URI and MIGRATIONKIT_PG_DSN on {socket.gethostname()}: "
            "the tasks were sent without passwords"
        )
    return Endpoints(mongo, pg)


def _summarise(index: int, rows_read: int, done: list[BatchDone]) -> RangeResult:
    stats = WorkerStats(index)
    for event in done:
        stats.add_batch(event)
    rejected = [rejection for event in done for rejection in event.rejected]
    thread = threading.current_thread()
    where = f"{socket.gethostname()}:{os.getpid()}"
    if thread is not threading.main_thread():  # a Dask worker thread, or an in-process cluster
        where += f":{thread.name}"
    return RangeResult(
        index=index,
        rows_read=rows_read,
        stats=stats,
        rejected_samples=tuple(rejected[:REJECTION_SAMPLES]),
        where=where,
    )
