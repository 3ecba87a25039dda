"""The coordinator: one run, from an empty (or resumed) target to the end check.

Data flow::

    Migration: resolve endpoints, open MongoDB + PostgreSQL, prepare the target
      │
      ├─ batches ─▶ read the collection once (keyset) ─submit─▶ a cluster's workers
      │             ◀── BatchDone events: stats, rejections, checkpoints ──
      └─ ranges ──▶ plan _id ranges ─▶ a range executor: each task reads and writes one
                    ◀── RangeResult per range ──
      │
      ▼ one report, one end check (every document read is in the table or set aside, once)

Both ways share everything but how the work is sent out: :meth:`Migration.migrate`
prepares, runs one of :meth:`_send_batches` / :meth:`_send_ranges`, then reports and
checks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

import asyncpg

from migrationkit._errors import ConfigurationError, IntegrityCheckError, MigrationKitError
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.clusters.base import ClusterMigrationBase
from migrationkit._executors.dispatch import Dispatcher, make_dispatcher
from migrationkit._executors.ranges import DEFAULT_RETRIES, RangeExecutor
from migrationkit._executors.stats import REJECTION_SAMPLES, WorkerStats, log_rejections
from migrationkit._executors.worker import SinkOpener, WorkerJob
from migrationkit._mapping.files import resolve_mapping
from migrationkit._mapping.infer import Inference
from migrationkit._mapping.normalize import transform_for
from migrationkit._mapping.spec import TableMapping
from migrationkit._normalize.rows import Transform, last_id, raw_path
from migrationkit._observe.logs import WorkerLogging, with_run_id
from migrationkit._observe.observe import NullObserver, Observer
from migrationkit._observe.progress import NullProgress, Progress
from migrationkit._redact import redact_uri
from migrationkit._retry import POSTGRES_TRANSIENT
from migrationkit._run.follow import (
    Follower,
    FollowOptions,
    FollowStatus,
    check_same_collection,
    raised_floor,
    start_position,
)
from migrationkit._run.inference import infer_collection, target_table
from migrationkit._run.range_task import RangeJob, RangeResult, run_range
from migrationkit._run.report import MigrationReport
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.keyset import OPEN
from migrationkit._source.partitioning import plan_ranges
from migrationkit._source.repository import UserMongoRepository
from migrationkit._source.stream import SourceCollection
from migrationkit._target.checkpoints import Checkpoint, CheckpointRepository
from migrationkit._target.connection import ReconnectingConnection
from migrationkit._target.loader import postgres_job
from migrationkit._target.mappings import MappingRecordRepository
from migrationkit._target.run_lock import TargetLock
from migrationkit._target.stream_positions import StreamPosition, StreamPositionRepository
from migrationkit._target.tables import (
    count_target,
    create_target,
    empty_target,
    replace_other_mapping,
)
from migrationkit._target.writers import row_writer

log = logging.getLogger(__name__)

#: Save the checkpoint at most this often while batches complete.
CHECKPOINT_INTERVAL_S = 0.5
#: How long a failing run may spend saving its last checkpoint.
FAILURE_SAVE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RangeOptions:
    """How a range run splits the ``_id``s and where it runs (``migrate --partitions``).

    ``partitions`` defaults to one range per worker; ``scheduler`` is a Dask address;
    ``secrets_from_worker_env`` lets remote workers take the URIs from their own
    environment instead of the task; ``executor`` is a ready :class:`RangeExecutor`
    to use instead of building the backend's.
    """

    partitions: int | None = None
    scheduler: str | None = None
    secrets_from_worker_env: bool = False
    retries: int = DEFAULT_RETRIES
    executor: RangeExecutor | None = None


def sends_ranges(backend: str, ranges: RangeOptions | None) -> bool:
    """Whether a run sends ``_id`` ranges (else batches); options a backend can't use fail.

    ``dask`` always sends ranges; ``multiprocessing`` does when ``partitions``,
    ``secrets_from_worker_env`` or a ready executor asks for them.
    """
    ranges = ranges or RangeOptions()
    if ranges.scheduler is not None and backend != "dask":
        raise ConfigurationError("--scheduler is for the dask backend")
    wants_ranges = (
        ranges.partitions is not None or ranges.secrets_from_worker_env or ranges.executor
    )
    if backend in ClusterMigrationFactory.available("batches") and not wants_ranges:
        return False
    if ranges.executor is None and backend not in ClusterMigrationFactory.available("ranges"):
        raise ConfigurationError(
            f"backend {backend!r} cannot dispatch ranges; "
            f"use one of {', '.join(ClusterMigrationFactory.available('ranges'))}"
        )
    return True


@dataclass
class _Outcome:
    """What sending the work out gave, whichever way it went."""

    label: str
    workers: int
    rows_read: int
    per_worker: list[WorkerStats]
    rejected_samples: list[tuple[str, str]]
    elapsed_s: float
    expected: int | None = None  # documents the end check expects (None: rows read)


class Migration:
    """One run, wired once: settings, endpoints, connections, and what plugs in.

    ``async with Migration(settings) as run: report = await run.migrate()``. The CLI,
    the benchmark, the lessons and the exercises all run migrations through it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        endpoints: Endpoints | None = None,
        progress: Progress | None = None,
        observer: Observer | None = None,
        dispatcher: Dispatcher | None = None,
        mapping: TableMapping | None = None,
        transform: Transform | None = None,
        open_sink: SinkOpener | None = None,
        ranges: RangeOptions | None = None,
        on_follow_batch: Callable[[FollowStatus], None] | None = None,
    ) -> None:
        self.settings = settings
        # Decided here when it can be (given, a file, the built-in users mapping);
        # an inferred one once the source can be read (see :meth:`migrate`).
        self.mapping: TableMapping | None = mapping
        self.inference: Inference | None = None
        if mapping is None:
            self.mapping = resolve_mapping(settings, config_mappings={}).mapping
        self.endpoints = endpoints
        self.progress = progress or NullProgress()
        self.observer = observer or NullObserver()
        self._observer_given = observer is not None
        self.dispatcher = dispatcher
        self._transform = transform
        self.open_sink = open_sink
        self.ranges = ranges
        self.source_name = f"{settings.mongo_database}.{settings.mongo_collection}"
        self._mongo: MongoConnectionHandler | None = None
        self._postgres: ReconnectingConnection | None = None
        self._client: Any = None
        #: What following did (``migrate(follow=...)``), once it stopped.
        self.follow_status: FollowStatus | None = None
        self.on_follow_batch = on_follow_batch
        self._position: StreamPosition | None = None
        row_writer(settings.writer)  # a writer that cannot be called fails before any work
        self.check_options(resume=False)

    def check_options(self, *, resume: bool) -> bool:
        """Whether the run sends ranges; refuses, before any connection, what it can't use."""
        if not sends_ranges(self.settings.backend, self.ranges):
            return False
        unused = {
            "--resume": resume,
            "a dispatcher": self.dispatcher is not None or self.settings.dispatch != "round-robin",
            "an observer (metrics)": self._observer_given,
            "a sink": self.open_sink is not None,
        }
        if any(unused.values()):
            raise ConfigurationError(
                f"the {self.settings.backend} range run takes no "
                + ", ".join(name for name, given in unused.items() if given)
                + ": it dispatches whole _id ranges and is exact when run again"
            )
        return True

    async def __aenter__(self) -> Self:
        if self.endpoints is None:
            self.endpoints = await asyncio.to_thread(resolve_endpoints, self.settings)
        self._mongo = MongoConnectionHandler(
            self.endpoints.mongo_uri, driver=self.settings.mongo_driver
        )
        self._client = await self._mongo.__aenter__()
        try:
            self._postgres = ReconnectingConnection(
                self.endpoints.pg_dsn, policy=self.settings.retry_policy
            )
            await self._postgres.__aenter__()
        except BaseException:
            await self._mongo.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._postgres is not None:
                await self._postgres.__aexit__(exc_type, exc, tb)
        finally:
            if self._mongo is not None:
                await self._mongo.__aexit__(exc_type, exc, tb)

    @property
    def target_table(self) -> str:
        """The table this run writes (known before an inferred mapping is)."""
        return self.mapping.table if self.mapping is not None else target_table(self.settings)

    @property
    def table_mapping(self) -> TableMapping:
        """The mapping the run writes with (inferred at the start of :meth:`migrate`)."""
        if self.mapping is None:
            raise RuntimeError("the mapping is inferred when the migration starts")
        return self.mapping

    @property
    def transform(self) -> Transform:
        return self._transform or transform_for(self.table_mapping)

    async def _infer_mapping(self, *, resume: bool) -> None:
        """No mapping was declared: the recorded one on resume, else infer one, and say so."""
        assert self.endpoints is not None
        table = target_table(self.settings)
        if resume:
            recorded = await self.postgres.run(
                lambda db: MappingRecordRepository(db).load(table), what="reading the mapping"
            )
            if recorded is not None:
                log.warning("resuming with the mapping recorded for table %s", table)
                self.mapping = recorded
                return
        self.inference = await infer_collection(self.settings, self.endpoints.mongo_uri)
        self.mapping = self.inference.mapping
        log.warning(
            "no mapping is declared for %s: inferred one from %s documents (table %s); "
            "`migrationkit infer` writes it to a file to review",
            self.source_name,
            f"{self.inference.report.documents:,}",
            self.mapping.table,
        )

    @property
    def postgres(self) -> ReconnectingConnection:
        if self._postgres is None:
            raise RuntimeError("the migration is not open; use `async with Migration(...)`")
        return self._postgres

    @property
    def source(self) -> UserMongoRepository:
        """The source collection, on the run's client."""
        if self._client is None:
            raise RuntimeError("the migration is not open; use `async with Migration(...)`")
        database = self._client[self.settings.mongo_database]
        return UserMongoRepository(database[self.settings.mongo_collection])

    @with_run_id
    async def migrate(
        self,
        *,
        resume: bool = False,
        batches: AsyncIterator[list[Any]] | None = None,
        follow: FollowOptions | None = None,
    ) -> MigrationReport:
        """Copy every document into the table (or set it aside) and report.

        A fresh run empties the table and its dead-letter table first. ``resume=True``
        continues after the last checkpoint instead (a fresh run if there is none).
        ``batches`` replaces the keyset reader (the benchmark feeds the original project's
        skip/limit pages through it; no checkpoints then). Raises
        :class:`IntegrityCheckError` unless every document read is, exactly once, either
        in the table or in the dead-letter table.

        ``follow`` takes the change stream's position before the load, then follows the
        stream after it until ``follow.stop`` is set (see :mod:`migrationkit._run.follow`);
        what it did is in :attr:`follow_status`. With ``resume`` too, a load that was
        interrupted goes on, and following goes on from the last change applied.
        """
        if batches is not None and (resume or follow is not None):
            raise ConfigurationError("a run fed its own batches cannot resume or follow")
        assert self.endpoints is not None
        # One run per target: held from preparing the target to the end check; a lock
        # dies with its connection, so a killed run never leaves one behind.
        async with TargetLock.acquire(
            self.endpoints.pg_dsn, tables=[self.target_table], policy=self.settings.retry_policy
        ):
            if follow is None:
                return await self._run(resume=resume, batches=batches)
            return await self._run_and_follow(resume=resume, options=follow)

    async def _run_and_follow(self, *, resume: bool, options: FollowOptions) -> MigrationReport:
        """Position, load (unless a resumed follower had finished it), follow."""
        assert self.endpoints is not None
        stream_source = SourceCollection(
            self._client,
            self.settings.mongo_database,
            self.settings.mongo_collection,
            uri=self.endpoints.mongo_uri,
        )
        saved = None
        if resume:
            if self.mapping is None:
                await self._infer_mapping(resume=True)
            saved = await self.postgres.run(
                lambda db: StreamPositionRepository(db).load(self.table_mapping.table),
                what="reading the stream position",
            )
            if saved is None:
                raise ConfigurationError(
                    f"no stream position is saved for table {self.target_table}: start "
                    "following with a fresh load, `migrationkit migrate --follow`"
                )
            await check_same_collection(stream_source, saved)
        if saved is not None and saved.phase == "following":
            report = self._report_only()
            position = raised_floor(saved, await stream_source.cluster_time())
        else:
            report = await self._run(
                resume=resume, batches=None, stream_source=stream_source, position=saved
            )
            loaded_from = saved if saved is not None else self._position
            assert loaded_from is not None  # taken by _run before the load
            position = replace(
                loaded_from,
                phase="following",
                reread_floor=await stream_source.cluster_time(),
            )
        await self.postgres.run(
            lambda db: _save_position(db, position), what="saving the stream position"
        )
        log.warning("the load is done: following the changes of %s", self.source_name)
        follower = Follower(
            source=stream_source,
            postgres=self.postgres,
            mapping=self.table_mapping,
            transform=self.transform,
            position=position,
            observer=self.observer,
            on_batch=self.on_follow_batch,
        )
        self.follow_status = follower.status
        self.follow_status = await follower.run(options)
        return report

    def _report_only(self) -> MigrationReport:
        """The report of a load that an earlier run completed (nothing more is read)."""
        outcome = _Outcome(self.settings.backend, self.settings.workers, 0, [], [], 0.0)
        return self._report(outcome, None)

    async def _run(
        self,
        *,
        resume: bool,
        batches: AsyncIterator[list[Any]] | None,
        stream_source: SourceCollection | None = None,
        position: StreamPosition | None = None,
    ) -> MigrationReport:
        by_ranges = self.check_options(resume=resume)
        if self.mapping is None:
            await self._infer_mapping(resume=resume)
        start = await self.postgres.run(
            lambda db: self._starting_point(db, resume=resume),
            what="preparing the target tables",
        )
        if stream_source is not None and position is None:
            # Before the first document is read: every later change comes through the stream.
            table = self.table_mapping.table
            self._position = await start_position(
                stream_source, table=table, source_name=stream_source.namespace
            )
            await self.postgres.run(
                lambda db: _save_position(db, self._position), what="saving the stream position"
            )
        if by_ranges:
            outcome = await self._send_ranges()
        else:
            outcome = await self._send_batches(start, batches)
        report = self._report(outcome, start)
        expected = outcome.expected
        if expected is None:
            expected = await self.source.count() if start is not None else outcome.rows_read
        # While the source changes (a followed load) only the stream can make the counts
        # agree: the check then keeps to what the load itself wrote.
        await self.postgres.run(
            lambda db: _check_target(
                db,
                report,
                self.table_mapping,
                expected=None if stream_source is not None else expected,
            ),
            what="checking the target table",
        )
        self.observer.run_finished(report)
        for reason, count, ids in report.rejections_by_reason():  # one line a reason
            log.warning("set aside %d documents: %s (e.g. _id %s)", count, reason, ", ".join(ids))
        log.info(
            "migrated %d rows in %.2f s (%.0f rows/s)",
            report.rows_read,
            report.elapsed_s,
            report.rows_per_s,
        )
        return report

    # -- the two ways of sending work out ---------------------------------------------

    async def _send_batches(
        self, start: Checkpoint | None, given: AsyncIterator[list[Any]] | None
    ) -> _Outcome:
        settings = self.settings
        cluster = ClusterMigrationFactory.create(
            settings.backend,
            settings.workers,
            job=self._worker_job(writer=row_writer(settings.writer)),
            queue_depth=settings.queue_depth,
            dispatcher=self.dispatcher or make_dispatcher(settings.dispatch, settings.workers),
            progress=self.progress,
            observer=self.observer,
        )
        saver = _CheckpointSaver(self.postgres, self.table_mapping.table, self.source_name)
        done_before = start.rows_done if start else 0
        # Counting can cost a full scan (SecantusDB): only when someone shows a total.
        wants_total = not isinstance(self.progress, NullProgress) or not isinstance(
            self.observer, NullObserver
        )
        total = await self.source.estimated_count() if wants_total else None
        todo = None if total is None else max(total - done_before, 0)
        self.progress.start(todo, f"{settings.backend}/{settings.writer}")
        self.observer.run_started(backend=settings.backend, workers=settings.workers, total=total)
        batches = given or self.source.iter_batches(
            settings.batch_size,
            batch_bytes=settings.batch_bytes or None,
            after=start.last_id if start else OPEN,
            # Raw BSON also where the transform writes rows from it in C (fast_rows.py).
            raw=cluster.reads_raw_bson or raw_path(self.transform) is not None,
            policy=settings.retry_policy,
        )
        checkpoint = None if given else (lambda batch, rows: (last_id(batch), done_before + rows))
        # The first batch can take seconds (SecantusDB builds the whole result before
        # it answers): ask for it now, so that the workers start meanwhile.
        first = asyncio.ensure_future(anext(batches, None))
        started = time.perf_counter()
        try:
            async with cluster:
                rows_read = await cluster.feed(
                    batches,
                    first=first,
                    checkpoint=checkpoint,
                    after_each=lambda: saver.save_now_and_then(cluster),
                )
            await saver.save(cluster, completed=True)
        except BaseException:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            await saver.save_after_failure(cluster)
            raise
        finally:
            self.progress.close()
            if hasattr(batches, "aclose"):
                await batches.aclose()
        return _Outcome(
            label=settings.backend,
            workers=settings.workers,
            rows_read=rows_read,
            per_worker=cluster.stats,
            rejected_samples=cluster.rejected,
            elapsed_s=time.perf_counter() - started,
        )

    async def _send_ranges(self) -> _Outcome:
        settings, ranges = self.settings, self.ranges or RangeOptions()
        assert self.endpoints is not None
        executor = ranges.executor or ClusterMigrationFactory.create_range_executor(
            settings.backend,
            settings.workers,
            retries=ranges.retries,
            **({"scheduler": ranges.scheduler} if ranges.scheduler else {}),
        )
        job = RangeJob(
            endpoints=None if ranges.secrets_from_worker_env else self.endpoints,
            database=settings.mongo_database,
            collection=settings.mongo_collection,
            batch_size=settings.batch_size,
            worker=self._worker_job(writer=settings.writer, dsn=""),  # the task fills the DSN
            mongo_driver=settings.mongo_driver,
            retry=settings.retry_policy,
            batch_bytes=settings.batch_bytes or None,
        )
        started = time.perf_counter()
        try:
            async with executor:
                collection = self._client[settings.mongo_database][settings.mongo_collection]
                plan = await plan_ranges(
                    collection,
                    ranges.partitions or executor.workers,
                    policy=settings.retry_policy,
                )
                self.progress.start(plan.documents, f"{executor.label}/{settings.writer}")

                def finished(result: RangeResult) -> None:
                    log_rejections(result.rejected_samples)
                    self.progress.advance(result.rows_read)

                results: list[RangeResult] = await executor.run(
                    run_range, job, plan.ranges, finished
                )
        finally:
            self.progress.close()
        log.info("%d ranges planned in %.2f s", len(plan.ranges), plan.seconds)
        per_worker: dict[str, WorkerStats] = {}
        for result in sorted(results, key=lambda r: r.index):
            stats = per_worker.setdefault(result.where, WorkerStats(len(per_worker)))
            stats.merge(result.stats)
        samples = [sample for result in results for sample in result.rejected_samples]
        return _Outcome(
            label=executor.label,
            workers=executor.workers,
            rows_read=sum(result.rows_read for result in results),
            per_worker=list(per_worker.values()),
            rejected_samples=samples[:REJECTION_SAMPLES],
            elapsed_s=time.perf_counter() - started,
            expected=plan.documents,
        )

    def _worker_job(self, *, writer: Any, dsn: str | None = None) -> WorkerJob:
        assert self.endpoints is not None
        job = postgres_job(
            self.endpoints.pg_dsn if dsn is None else dsn,
            mapping=self.table_mapping,
            writer=writer,
            transform=self.transform,
            retry=self.settings.retry_policy,
            log_setup=WorkerLogging.current(),
        )
        return job if self.open_sink is None else replace(job, open_sink=self.open_sink)

    # -- shared steps --------------------------------------------------------------------

    async def _starting_point(self, db: asyncpg.Connection, *, resume: bool) -> Checkpoint | None:
        """The checkpoint to resume after, or ``None`` after emptying the target."""
        table = self.table_mapping.table
        await replace_other_mapping(db, self.table_mapping, resume=resume)
        await create_target(db, self.table_mapping)
        if resume:
            checkpoint = await CheckpointRepository(db).load(table)
            if checkpoint is not None:
                if checkpoint.source != self.source_name:
                    raise ConfigurationError(
                        f"the checkpoint for table {table} is for {checkpoint.source}, "
                        f"not {self.source_name}; run without --resume to start over"
                    )
                log.warning(
                    "resuming after _id %s (%d documents already done)",
                    checkpoint.last_key,
                    checkpoint.rows_done,
                )
                return checkpoint
            log.warning("no checkpoint for table %s: starting from the beginning", table)
        await empty_target(db, self.table_mapping)
        await StreamPositionRepository(db).clear(table)
        return None

    def _report(self, outcome: _Outcome, start: Checkpoint | None) -> MigrationReport:
        assert self.endpoints is not None
        return MigrationReport(
            backend=outcome.label,
            workers=outcome.workers,
            writer=self.settings.writer,
            batch_size=self.settings.batch_size,
            rows_read=outcome.rows_read,
            rows_written=sum(worker.rows_written for worker in outcome.per_worker),
            rows_rejected=sum(worker.rows_rejected for worker in outcome.per_worker),
            elapsed_s=outcome.elapsed_s,
            per_worker=outcome.per_worker,
            rejected_samples=outcome.rejected_samples,
            source=f"{redact_uri(self.endpoints.mongo_uri)} {self.source_name}",
            target=f"{redact_uri(self.endpoints.pg_dsn)} table {self.table_mapping.table}",
            resumed_after=start.last_key if start else None,
            collection=self.settings.mongo_collection,
            table=self.table_mapping.table,
        )


async def migrate(
    settings: Settings,
    *,
    resume: bool = False,
    endpoints: Endpoints | None = None,
    progress: Progress | None = None,
    observer: Observer | None = None,
    dispatcher: Dispatcher | None = None,
    mapping: TableMapping | None = None,
    transform: Transform | None = None,
    open_sink: SinkOpener | None = None,
    ranges: RangeOptions | None = None,
    follow: FollowOptions | None = None,
) -> MigrationReport:
    """Copy every document into the table (or set it aside): one :class:`Migration` run.

    ``open_sink`` replaces how each worker writes a batch (default:
    :func:`~migrationkit._target.loader.postgres_sink`). The ``dask`` backend, or
    ``ranges`` with a ``multiprocessing`` one, dispatches whole ``_id`` ranges.
    """
    run = Migration(
        settings,
        endpoints=endpoints,
        progress=progress,
        observer=observer,
        dispatcher=dispatcher,
        mapping=mapping,
        transform=transform,
        open_sink=open_sink,
        ranges=ranges,
    )
    run.check_options(resume=resume)  # before connecting: a wrong option fails at once
    async with run:
        return await run.migrate(resume=resume, follow=follow)


def run_migration(settings: Settings, **options: Any) -> MigrationReport:
    """Synchronous :func:`migrate`, for scripts (not inside a running event loop)."""
    return asyncio.run(migrate(settings, **options))


class _CheckpointSaver:
    """Persist the cluster's checkpoint: now and then while running, and at the end."""

    def __init__(self, postgres: ReconnectingConnection, table: str, source: str) -> None:
        self._postgres, self._table, self._source = postgres, table, source
        self._saved: Any = None
        self._last_save = time.monotonic()

    async def save_now_and_then(self, cluster: ClusterMigrationBase) -> None:
        if time.monotonic() - self._last_save >= CHECKPOINT_INTERVAL_S:
            await self.save(cluster)

    async def save(self, cluster: ClusterMigrationBase, *, completed: bool = False) -> None:
        self._last_save = time.monotonic()
        if cluster.checkpoint is None or (cluster.checkpoint == self._saved and not completed):
            return
        last, rows_done = cluster.checkpoint
        await self._postgres.run(
            lambda db: CheckpointRepository(db).save(
                self._table,
                source=self._source,
                last_id=last,
                rows_done=rows_done,
                completed=completed,
            ),
            what="saving the checkpoint",
        )
        self._saved = cluster.checkpoint

    async def save_after_failure(self, cluster: ClusterMigrationBase) -> None:
        """Best effort, bounded: the run is failing anyway, maybe because of the database."""
        try:
            await asyncio.wait_for(asyncio.shield(self.save(cluster)), FAILURE_SAVE_TIMEOUT_S)
        except (MigrationKitError, TimeoutError, *POSTGRES_TRANSIENT) as exc:  # type: ignore[misc]
            log.warning("could not save the checkpoint: %s", exc)
        if cluster.checkpoint is not None:
            log.warning(
                "stopped after committing %d documents; "
                "resume with `migrationkit migrate --resume`",
                cluster.checkpoint[1],
            )


async def _save_position(db: asyncpg.Connection, position: StreamPosition | None) -> None:
    assert position is not None
    positions = StreamPositionRepository(db)
    await positions.create_table()
    await positions.save(position)


async def _check_target(
    db: asyncpg.Connection, report: MigrationReport, mapping: TableMapping, *, expected: int | None
) -> None:
    """Every source document is, exactly once, in the table or set aside (a cheap verify)."""
    counts = await count_target(db, mapping)
    problems = []
    resumed = report.resumed_after is not None
    if not resumed and (report.rows_written, report.rows_rejected) != (
        counts.written,
        counts.rejected,
    ):
        problems.append(
            f"workers reported {report.rows_written} written and {report.rows_rejected} rejected"
        )
    if expected is not None and counts.written + counts.rejected != expected:
        problems.append(f"the source has {expected} documents")
    if counts.in_both:
        problems.append(f"{counts.in_both} documents are both written and rejected")
    if problems:
        raise IntegrityCheckError(
            f"the table holds {counts.written} rows and {counts.rejected} rejected documents, "
            "but " + "; ".join(problems)
        )
