"""Dispatch work, not data: each task migrates one ``_id`` range on its own connections.

Data flow (the coordinator never holds a document)::

    coordinator: empty the target ─▶ walk the _ids ─▶ ranges [start, b1) [b1, b2) … [bN, end]
        │ one task per range (bounds only)           ▲ RangeResult: rows, rejections, busy s
        ▼                                            │
    executor (a Dask cluster, or a process pool) ── task: own MongoDB client ─find(min, max)─▶
        prepare_batch ─▶ write_batch (upsert; refused rows to <table>_rejected) ─▶ PostgreSQL
    coordinator: the same cheap end check as ``migrate``

A failed task is run again by the executor (``retries``). That keeps the result exact
because every write is an upsert on ``mongo_id``: rows an attempt committed before it
died are updated in place by the next one, never doubled.

Executors are registered in :class:`RangeExecutorFactory`, the sibling of
``ClusterMigrationFactory``: that one builds clusters fed batch by batch; these run
whole ranges. ``multiprocessing`` (a spawn process pool) and ``dask`` are built in.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

from migrationkit.batches import Batch, Transform
from migrationkit.clusters import ClusterMigrationFactory, WorkerJob
from migrationkit.clusters.events import STOP, BatchDone, Failed, WorkerEvent
from migrationkit.clusters.worker import run_worker
from migrationkit.connections import MongoConnectionHandler, ReconnectingConnection
from migrationkit.endpoints import Endpoints, resolve_endpoints
from migrationkit.errors import ConfigurationError, MigrationKitError, WorkerError
from migrationkit.migration import check_target, starting_point
from migrationkit.models import document_to_row
from migrationkit.partitioning import IdRange, iter_range, plan_ranges
from migrationkit.progress import NullProgress, Progress
from migrationkit.registry import Registry
from migrationkit.report import REJECTION_SAMPLES, MigrationReport, WorkerStats, log_rejections
from migrationkit.settings import MongoDriver, Settings, redact_uri

log = logging.getLogger(__name__)

#: How many times a failed range task is run again before the migration fails.
DEFAULT_RETRIES = 2


# -- the task: runs wherever the executor puts it ---------------------------------


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


@dataclass(frozen=True)
class RangeResult:
    """What one range task did; ``spans`` are its batches' monotonic times where it ran."""

    index: int
    rows_read: int
    rows_written: int
    rows_rejected: int
    rejected_samples: tuple[tuple[str, str], ...]
    batches: int
    busy_s: float
    where: str
    spans: tuple[tuple[float, float], ...] = field(default=(), repr=False)


class RangeFailedError(WorkerError):
    """A range task failed on every attempt; the message carries the task's traceback."""

    def __init__(self, index: int, message: str, remote_traceback: str = "") -> None:
        text = f"range {index} failed: {message}"
        if remote_traceback:
            text += f"\n\nTask traceback:\n{remote_traceback.rstrip()}"
        MigrationKitError.__init__(self, text)
        self.worker = -1  # no single worker: a range may have run on several
        self.range_index, self.message, self.remote_traceback = index, message, remote_traceback

    def __reduce__(self) -> tuple[type[RangeFailedError], tuple[int, str, str]]:
        # Rebuilt from its fields when it crosses a process boundary (Dask, process pools).
        return type(self), (self.range_index, self.message, self.remote_traceback)


#: A module-level function run once per range: :func:`run_range`, or one of its shape.
RangeTask = Callable[[RangeJob, IdRange], RangeResult]


def run_range(job: RangeJob, part: IdRange) -> RangeResult:
    """Entry point of a range task in a worker process or thread: its own event loop."""
    return asyncio.run(migrate_range(job, part))


async def migrate_range(job: RangeJob, part: IdRange) -> RangeResult:
    """Read ``part`` and write it through the same worker loop as every batch backend."""
    endpoints = job.endpoints or endpoints_from_environment()
    worker = replace(job.worker, pg_dsn=endpoints.pg_dsn)
    events: list[WorkerEvent] = []
    rows_read = 0
    seqs = itertools.count()
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=job.mongo_driver) as client:
        batches = iter_range(
            client[job.database][job.collection],
            part,
            batch_size=job.batch_size,
            policy=worker.retry,
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
    """The databases as this worker's ``MIGRATIONKIT_*`` variables name them (no embedded)."""
    settings = Settings()
    if settings.mongo_uri is None or settings.pg_dsn is None:
        raise ConfigurationError(
            f"set MIGRATIONKIT_MONGO_URI and MIGRATIONKIT_PG_DSN on {socket.gethostname()}: "
            "the tasks were sent without passwords"
        )
    return Endpoints(settings.mongo_uri.get_secret_value(), settings.pg_dsn.get_secret_value())


def _summarise(index: int, rows_read: int, done: list[BatchDone]) -> RangeResult:
    rejected = [rejection for event in done for rejection in event.rejected]
    thread = threading.current_thread()
    where = f"{socket.gethostname()}:{os.getpid()}"
    if thread is not threading.main_thread():  # a Dask worker thread, or an in-process cluster
        where += f":{thread.name}"
    return RangeResult(
        index=index,
        rows_read=rows_read,
        rows_written=sum(event.written for event in done),
        rows_rejected=len(rejected),
        rejected_samples=tuple(rejected[:REJECTION_SAMPLES]),
        batches=len(done),
        busy_s=sum(event.finished - event.started for event in done),
        where=where,
        spans=tuple((event.started, event.finished) for event in done),
    )


# -- executors: where the tasks run --------------------------------------------------


class RangeExecutor(ABC):
    """Runs one task per range on ``workers`` workers, and runs a failed task again.

    ``async with executor:`` starts the workers; leaving with an error stops them
    without waiting for the tasks still running.
    """

    name: ClassVar[str]
    #: What reports call a run with this executor.
    label: ClassVar[str]

    def __init__(self, workers: int, *, retries: int = DEFAULT_RETRIES) -> None:
        if workers < 1:
            raise ValueError("an executor needs at least one worker")
        self.workers = workers
        self.retries = retries

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(abort=exc_type is not None)

    @abstractmethod
    async def start(self) -> None:
        """Get the workers ready (or connect to them)."""

    @abstractmethod
    async def run(
        self,
        task: RangeTask,
        job: RangeJob,
        ranges: Sequence[IdRange],
        on_result: Callable[[RangeResult], None],
    ) -> list[RangeResult]:
        """Run ``task(job, part)`` for every range; ``on_result`` hears each as it finishes.

        Raises :class:`RangeFailedError` once a range has failed ``retries + 1`` times.
        """

    @abstractmethod
    async def close(self, *, abort: bool = False) -> None:
        """Stop the workers; with ``abort``, without waiting for running tasks."""


Executor = TypeVar("Executor", bound=Callable[..., RangeExecutor])


class RangeExecutorFactory:
    """``RangeExecutorFactory.create("dask", 4, scheduler=...)``; new executors ``register``."""

    _registry: ClassVar[Registry[Callable[..., RangeExecutor]]] = Registry("range executor")

    @classmethod
    def register(cls, name: str) -> Callable[[Executor], Executor]:
        """Decorator: make an executor class (or a function building one) available by name."""

        def add(make: Executor) -> Executor:
            cls._registry.register(name, make)
            return make

        return add

    @classmethod
    def available(cls) -> list[str]:
        return cls._registry.names()

    @classmethod
    def create(cls, name: str, workers: int, **options: Any) -> RangeExecutor:
        return cls._registry.get(name)(workers, **options)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when children stop


@RangeExecutorFactory.register("multiprocessing")
class ProcessRangeExecutor(RangeExecutor):
    """Range tasks in a pool of spawned processes on this machine.

    A process that dies (even by ``SIGKILL``) breaks the pool: every range that was
    unfinished counts one failed attempt, and a new pool runs them again.
    """

    name = "multiprocessing"
    label = "mp-ranges"

    def __init__(self, workers: int, *, retries: int = DEFAULT_RETRIES) -> None:
        super().__init__(workers, retries=retries)
        self._pool: ProcessPoolExecutor | None = None

    async def start(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_sigint,
        )

    async def run(
        self,
        task: RangeTask,
        job: RangeJob,
        ranges: Sequence[IdRange],
        on_result: Callable[[RangeResult], None],
    ) -> list[RangeResult]:
        failures: Counter[int] = Counter()
        results: list[RangeResult] = []
        waiting = list(ranges)
        while waiting:
            running: dict[asyncio.Future[Any], IdRange] = {}
            waiting = [part for part in waiting if not self._submit(task, job, part, running)]
            for part in waiting:  # the new pool broke before they started: still an attempt
                self._failed(RangeFailedError(part.index, "the process pool broke"), failures)
            try:
                while running:
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for future in done:
                        part = running.pop(future)
                        error = _failure(future, part)
                        if error is None:
                            results.append(future.result())
                            on_result(results[-1])
                            continue
                        self._failed(error, failures)
                        if not self._submit(task, job, part, running):
                            waiting.append(part)  # the pool broke: after it is replaced
            finally:
                for future in running:  # we are failing: nobody will read these
                    future.cancel()
            if waiting:
                await self.close(abort=True)
                await self.start()
        return results

    def _failed(self, error: RangeFailedError, failures: Counter[int]) -> None:
        """Count a failed attempt; raise ``error`` once the range is out of retries."""
        failures[error.range_index] += 1
        if failures[error.range_index] > self.retries:
            raise error
        log.warning("%s; running it again", str(error).splitlines()[0])

    def _submit(
        self,
        task: RangeTask,
        job: RangeJob,
        part: IdRange,
        running: dict[asyncio.Future[Any], IdRange],
    ) -> bool:
        """Start ``part`` in the pool; ``False`` if the pool is broken (a process died)."""
        assert self._pool is not None, "start the executor first"
        try:
            running[asyncio.wrap_future(self._pool.submit(task, job, part))] = part
        except BrokenProcessPool:
            return False
        return True

    async def close(self, *, abort: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abort:
            # No public way to stop a running task before Python 3.14's
            # terminate_workers(); the pool keeps its processes in _processes.
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=abort)


def _failure(future: asyncio.Future[Any], part: IdRange) -> RangeFailedError | None:
    """The task's error as a :class:`RangeFailedError`, or ``None`` if it succeeded."""
    exc = future.exception()
    if exc is None or isinstance(exc, RangeFailedError):
        return exc
    if isinstance(exc, BrokenProcessPool):
        message = "its worker process died (killed, or out of memory)"
    else:
        message = f"{type(exc).__name__}: {exc}"
    error = RangeFailedError(part.index, message)
    error.__cause__ = exc
    return error


@RangeExecutorFactory.register("dask")
def _dask_executor(workers: int, **options: Any) -> RangeExecutor:
    try:
        from migrationkit.dask_backend import DaskRangeExecutor
    except ImportError as exc:
        if exc.name not in {"dask", "distributed"}:
            raise
        raise ConfigurationError(
            "the dask backend needs Dask's distributed scheduler: "
            "pip install 'migrationkit[distributed]'"
        ) from exc
    return DaskRangeExecutor(workers, **options)


# -- the coordinator -------------------------------------------------------------------


async def migrate_ranges(
    settings: Settings | None = None,
    *,
    executor: str | RangeExecutor,
    scheduler: str | None = None,
    partitions: int | None = None,
    retries: int = DEFAULT_RETRIES,
    endpoints: Endpoints | None = None,
    progress: Progress | None = None,
    transform: Transform = document_to_row,
    secrets_from_worker_env: bool = False,
) -> MigrationReport:
    """Copy every user document into the table (or set it aside), one task per ``_id`` range.

    ``executor`` is a :class:`RangeExecutorFactory` name (``"dask"``, ``"multiprocessing"``)
    with ``settings.workers`` workers, or a ready executor. ``partitions`` defaults to one
    range per worker. Always a fresh run: the table and its dead-letter table are emptied
    first. Raises :class:`IntegrityCheckError` unless every document is, exactly once,
    in the table or the dead-letter table.
    """
    settings = settings or Settings()
    if endpoints is None:
        endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    progress = progress or NullProgress()
    if isinstance(executor, RangeExecutor):
        pool = executor
    else:
        pool = _create(executor, settings, scheduler=scheduler, retries=retries)
    source_name = f"{settings.mongo_database}.{settings.mongo_collection}"
    job = RangeJob(
        endpoints=None if secrets_from_worker_env else endpoints,
        database=settings.mongo_database,
        collection=settings.mongo_collection,
        batch_size=settings.batch_size,
        worker=WorkerJob(
            pg_dsn="",  # filled in where the task runs
            table=settings.pg_table,
            writer=settings.writer,
            transform=transform,
            retry=settings.retry_policy,
        ),
        mongo_driver=settings.mongo_driver,
    )
    async with (
        MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client,
        ReconnectingConnection(endpoints.pg_dsn, policy=settings.retry_policy) as postgres,
    ):
        await postgres.run(
            lambda db: starting_point(db, settings, source_name, resume=False),
            what="preparing the target tables",
        )
        started = time.perf_counter()
        try:
            async with pool:
                plan = await plan_ranges(
                    client[settings.mongo_database][settings.mongo_collection],
                    partitions or pool.workers,
                    policy=settings.retry_policy,
                )
                progress.start(plan.documents, f"{pool.label}/{settings.writer}")

                def finished(result: RangeResult) -> None:
                    log_rejections(result.rejected_samples)
                    progress.advance(result.rows_read)

                results = await pool.run(run_range, job, plan.ranges, finished)
        finally:
            progress.close()
        report = _report(settings, endpoints, pool, results, time.perf_counter() - started)
        await postgres.run(
            lambda db: check_target(db, report, settings.pg_table, expected=plan.documents),
            what="checking the target table",
        )
    log.info(
        "migrated %d rows in %d ranges in %.2f s (%.0f rows/s; planning %.2f s)",
        report.rows_read,
        len(plan.ranges),
        report.elapsed_s,
        report.rows_per_s,
        plan.seconds,
    )
    return report


def _create(name: str, settings: Settings, *, scheduler: str | None, retries: int) -> RangeExecutor:
    options: dict[str, Any] = {"retries": retries}
    if scheduler is not None:
        if name != "dask":
            raise ConfigurationError("--scheduler is for the dask backend")
        options["scheduler"] = scheduler
    return RangeExecutorFactory.create(name, settings.workers, **options)


def _report(
    settings: Settings,
    endpoints: Endpoints,
    pool: RangeExecutor,
    results: list[RangeResult],
    elapsed: float,
) -> MigrationReport:
    workers: dict[str, WorkerStats] = {}
    for result in sorted(results, key=lambda r: r.index):
        stats = workers.setdefault(result.where, WorkerStats(len(workers)))
        stats.batches += result.batches
        stats.rows_written += result.rows_written
        stats.rows_rejected += result.rows_rejected
        stats.busy_s += result.busy_s
        stats.spans.extend(result.spans)
    samples = [sample for result in results for sample in result.rejected_samples]
    return MigrationReport(
        backend=pool.label,
        workers=pool.workers,
        writer=settings.writer,
        batch_size=settings.batch_size,
        rows_read=sum(result.rows_read for result in results),
        rows_written=sum(result.rows_written for result in results),
        rows_rejected=sum(result.rows_rejected for result in results),
        elapsed_s=elapsed,
        per_worker=list(workers.values()),
        rejected_samples=samples[:REJECTION_SAMPLES],
        source=f"{redact_uri(endpoints.mongo_uri)} "
        f"{settings.mongo_database}.{settings.mongo_collection}",
        target=f"{redact_uri(endpoints.pg_dsn)} table {settings.pg_table}",
    )


# -- for the command line ----------------------------------------------------------------


def add_dask_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scheduler``, ``--partitions`` and ``--worker-env`` for ``migrationkit migrate``."""
    from migrationkit.cli import positive_int

    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler for --backend dask, e.g. tcp://host:8786 "
        "(default: $DASK_SCHEDULER_ADDRESS, else a local cluster of --workers processes)",
    )
    parser.add_argument(
        "--partitions",
        type=positive_int,
        metavar="N",
        help="dispatch work as N _id ranges (default: one per worker); "
        "with --backend multiprocessing, ranges instead of batches",
    )
    parser.add_argument(
        "--worker-env",
        action="store_true",
        help="workers read MIGRATIONKIT_MONGO_URI and MIGRATIONKIT_PG_DSN themselves: "
        "no password travels with the tasks",
    )


def range_executor_for(
    backend: str,
    *,
    partitions: int | None = None,
    scheduler: str | None = None,
    worker_env: bool = False,
) -> str | None:
    """The range executor a run should use, or ``None`` for batch dispatch (``migrate``).

    ``dask`` always dispatches ranges; ``multiprocessing`` does when ``--partitions`` or
    ``--worker-env`` asks for them. Options a backend cannot use are an error, not ignored.
    """
    if scheduler is not None and backend != "dask":
        raise ConfigurationError("--scheduler is for the dask backend")
    wants_ranges = partitions is not None or worker_env
    if backend in ClusterMigrationFactory.available() and not wants_ranges:
        return None
    if backend in RangeExecutorFactory.available():
        return backend
    raise ConfigurationError(
        f"backend {backend!r} cannot dispatch ranges; "
        f"use one of {', '.join(RangeExecutorFactory.available())}"
    )
