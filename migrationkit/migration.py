"""``migrate``: MongoDB source → worker cluster → PostgreSQL sink, checkpointed and checked."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from migrationkit.batches import Transform, last_id
from migrationkit.clusters import ClusterMigrationBase, ClusterMigrationFactory, WorkerJob
from migrationkit.clusters.worker import SinkOpener, postgres_sink
from migrationkit.connections import MongoConnectionHandler, ReconnectingConnection
from migrationkit.dispatch import Dispatcher, make_dispatcher
from migrationkit.endpoints import Endpoints, resolve_endpoints
from migrationkit.errors import ConfigurationError, IntegrityCheckError, MigrationKitError
from migrationkit.keyset import OPEN
from migrationkit.logs import WorkerLogging, with_run_id
from migrationkit.models import document_to_row
from migrationkit.observe import NullObserver, Observer
from migrationkit.progress import NullProgress, Progress
from migrationkit.report import MigrationReport
from migrationkit.repositories import UserMongoRepository, UserPostgresRepository
from migrationkit.repositories.checkpoints import Checkpoint, CheckpointRepository
from migrationkit.retry import POSTGRES_TRANSIENT
from migrationkit.settings import Settings, redact_uri
from migrationkit.writers import row_writer

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
    environment instead of the task.
    """

    partitions: int | None = None
    scheduler: str | None = None
    secrets_from_worker_env: bool = False


@with_run_id
async def migrate(
    settings: Settings | None = None,
    *,
    endpoints: Endpoints | None = None,
    progress: Progress | None = None,
    dispatcher: Dispatcher | None = None,
    transform: Transform = document_to_row,
    resume: bool = False,
    observer: Observer | None = None,
    open_sink: SinkOpener | None = None,
    ranges: RangeOptions | None = None,
) -> MigrationReport:
    """Copy every user document into the ``users`` table (or set it aside) and report.

    A fresh run empties the table and its dead-letter table first. ``resume=True``
    continues after the last checkpoint instead (a fresh run if there is none).
    Raises :class:`IntegrityCheckError` unless every document read is, exactly once,
    either in the table or in the dead-letter table. ``open_sink`` replaces how each
    worker writes a batch (default: :func:`~migrationkit.clusters.worker.postgres_sink`).
    The ``dask`` backend, or ``ranges`` with a ``multiprocessing`` one, dispatches whole
    ``_id`` ranges instead of batches (see :mod:`migrationkit.ranged`).
    """
    settings = settings or Settings()
    if ranges is not None or settings.backend not in ClusterMigrationFactory.available():
        from migrationkit.ranged import migrate_ranges, range_executor_for

        ranges = ranges or RangeOptions()
        executor = range_executor_for(
            settings.backend,
            partitions=ranges.partitions,
            scheduler=ranges.scheduler,
            worker_env=ranges.secrets_from_worker_env,
        )
        if executor is not None:
            unused = {
                "--resume": resume,
                "a dispatcher": dispatcher is not None or settings.dispatch != "round-robin",
                "an observer (metrics)": observer is not None,
                "a sink": open_sink is not None,
            }
            if any(unused.values()):
                raise ConfigurationError(
                    f"the {executor} range run takes no "
                    + ", ".join(name for name, given in unused.items() if given)
                    + ": it dispatches whole _id ranges and is exact when run again"
                )
            return await migrate_ranges(
                settings,
                executor=executor,
                scheduler=ranges.scheduler,
                partitions=ranges.partitions,
                endpoints=endpoints,
                progress=progress,
                transform=transform,
                secrets_from_worker_env=ranges.secrets_from_worker_env,
            )
    if endpoints is None:
        endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    progress = progress or NullProgress()
    observer = observer or NullObserver()
    policy = settings.retry_policy
    source_name = f"{settings.mongo_database}.{settings.mongo_collection}"
    async with (
        MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client,
        ReconnectingConnection(endpoints.pg_dsn, policy=policy) as postgres,
    ):
        source = UserMongoRepository(client[settings.mongo_database][settings.mongo_collection])
        start = await postgres.run(
            lambda db: starting_point(db, settings, source_name, resume=resume),
            what="preparing the target tables",
        )
        cluster = ClusterMigrationFactory.create(
            settings.backend,
            settings.workers,
            job=WorkerJob(
                pg_dsn=endpoints.pg_dsn,
                table=settings.pg_table,
                # The function itself, so process workers need not know its name.
                writer=row_writer(settings.writer),
                open_sink=open_sink or postgres_sink,
                transform=transform,
                retry=policy,
                log_setup=WorkerLogging.current(),
            ),
            queue_depth=settings.queue_depth,
            dispatcher=dispatcher or make_dispatcher(settings.dispatch, settings.workers),
            progress=progress,
            observer=observer,
        )
        saver = _CheckpointSaver(postgres, settings.pg_table, source_name)
        done_before = start.rows_done if start else 0
        # Counting can cost a full scan (SecantusDB): only when someone shows a total.
        wants_total = not isinstance(progress, NullProgress) or not isinstance(
            observer, NullObserver
        )
        total = await source.estimated_count() if wants_total else None
        todo = None if total is None else max(total - done_before, 0)
        progress.start(todo, f"{settings.backend}/{settings.writer}")
        observer.run_started(backend=settings.backend, workers=settings.workers, total=total)
        batches = source.iter_batches(
            settings.batch_size,
            after=start.last_id if start else OPEN,
            raw=cluster.reads_raw_bson,
            policy=policy,
        )
        # The first batch can take seconds (SecantusDB builds the whole result before
        # it answers): ask for it now, so that the workers start meanwhile.
        first = asyncio.ensure_future(anext(batches, None))
        started = time.perf_counter()
        try:
            async with cluster:
                rows_read = await _feed(cluster, first, batches, saver, done_before=done_before)
            await saver.save(cluster, completed=True)
        except BaseException:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            await saver.save_after_failure(cluster)
            raise
        finally:
            progress.close()
            await batches.aclose()
        elapsed = time.perf_counter() - started
        report = MigrationReport(
            backend=settings.backend,
            workers=settings.workers,
            writer=settings.writer,
            batch_size=settings.batch_size,
            rows_read=rows_read,
            rows_written=sum(worker.rows_written for worker in cluster.stats),
            rows_rejected=sum(worker.rows_rejected for worker in cluster.stats),
            elapsed_s=elapsed,
            per_worker=cluster.stats,
            rejected_samples=cluster.rejected,
            source=f"{redact_uri(endpoints.mongo_uri)} {source_name}",
            target=f"{redact_uri(endpoints.pg_dsn)} table {settings.pg_table}",
            resumed_after=start.last_key if start else None,
        )
        expected = await source.count() if start is not None else rows_read
        await postgres.run(
            lambda db: check_target(db, report, settings.pg_table, expected=expected),
            what="checking the target table",
        )
    observer.run_finished(report)
    log.info("migrated %d rows in %.2f s (%.0f rows/s)", rows_read, elapsed, report.rows_per_s)
    return report


async def _feed(
    cluster: ClusterMigrationBase,
    first: asyncio.Future[list[Any] | None],
    batches: AsyncIterator[list[Any]],
    saver: _CheckpointSaver,
    *,
    done_before: int,
) -> int:
    """Hand every batch to the cluster, checkpointing as they commit; returns rows read."""
    rows_read = 0
    waited = time.perf_counter()
    batch = await first
    while batch is not None:
        rows_read += len(batch)
        cluster.observer.batch_read(
            backend=cluster.name, rows=len(batch), seconds=time.perf_counter() - waited
        )
        await cluster.submit(batch, checkpoint=(last_id(batch), done_before + rows_read))
        await saver.save_now_and_then(cluster)
        waited = time.perf_counter()
        batch = await anext(batches, None)
    return rows_read


async def starting_point(
    db: asyncpg.Connection, settings: Settings, source_name: str, *, resume: bool
) -> Checkpoint | None:
    """The checkpoint to resume after, or ``None`` after emptying the target for a fresh run."""
    target = UserPostgresRepository(db, table=settings.pg_table)
    checkpoints = CheckpointRepository(db)
    await target.create_tables()
    await checkpoints.create_table()
    if resume:
        checkpoint = await checkpoints.load(settings.pg_table)
        if checkpoint is not None:
            if checkpoint.source != source_name:
                raise ConfigurationError(
                    f"the checkpoint for table {settings.pg_table} is for {checkpoint.source}, "
                    f"not {source_name}; run without --resume to start over"
                )
            log.warning(
                "resuming after _id %s (%d documents already done)",
                checkpoint.last_key,
                checkpoint.rows_done,
            )
            return checkpoint
        log.warning("no checkpoint for table %s: starting from the beginning", settings.pg_table)
    async with db.transaction():
        await target.truncate()
        await checkpoints.clear(settings.pg_table)
    return None


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


async def check_target(
    db: asyncpg.Connection, report: MigrationReport, table: str, *, expected: int
) -> None:
    """Every source document is, exactly once, in the table or set aside (a cheap verify)."""
    target = UserPostgresRepository(db, table=table)
    written, rejected = await target.count(), await target.count_rejected()
    both = await target.count_in_both()
    problems = []
    resumed = report.resumed_after is not None
    if not resumed and (report.rows_written, report.rows_rejected) != (written, rejected):
        problems.append(
            f"workers reported {report.rows_written} written and {report.rows_rejected} rejected"
        )
    if written + rejected != expected:
        problems.append(f"the source has {expected} documents")
    if both:
        problems.append(f"{both} documents are both written and rejected")
    if problems:
        raise IntegrityCheckError(
            f"the table holds {written} rows and {rejected} rejected documents, but "
            + "; ".join(problems)
        )


def run_migration(settings: Settings | None = None, **options: Any) -> MigrationReport:
    """Synchronous :func:`migrate`, for scripts and the CLI (not inside a running loop)."""
    return asyncio.run(migrate(settings, **options))
