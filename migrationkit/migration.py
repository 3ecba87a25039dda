"""``migrate``: MongoDB source → worker cluster → PostgreSQL sink, checked at the end."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from migrationkit.clusters import ClusterMigrationFactory, WorkerJob
from migrationkit.clusters.worker import Transform
from migrationkit.connections import MongoConnectionHandler, PostgresConnectionHandler
from migrationkit.dispatch import Dispatcher
from migrationkit.endpoints import Endpoints, resolve_endpoints
from migrationkit.errors import IntegrityCheckError
from migrationkit.models import document_to_row
from migrationkit.progress import NullProgress, Progress
from migrationkit.report import MigrationReport
from migrationkit.repositories import UserMongoRepository, UserPostgresRepository
from migrationkit.settings import Settings, redact_uri

log = logging.getLogger(__name__)


async def migrate(
    settings: Settings | None = None,
    *,
    endpoints: Endpoints | None = None,
    progress: Progress | None = None,
    dispatcher: Dispatcher | None = None,
    transform: Transform = document_to_row,
) -> MigrationReport:
    """Copy every user document into a fresh ``users`` table and report how it went.

    The table is created if missing and emptied first, so a re-run gives the same
    table. Raises :class:`IntegrityCheckError` if the table does not end up holding
    exactly the rows read minus the rejected ones.
    """
    settings = settings or Settings()
    where = (
        endpoints if endpoints is not None else await asyncio.to_thread(resolve_endpoints, settings)
    )
    progress = progress or NullProgress()
    async with (
        MongoConnectionHandler(where.mongo_uri, driver=settings.mongo_driver) as client,
        PostgresConnectionHandler(where.pg_dsn, max_size=2) as pool,
    ):
        source = UserMongoRepository(client[settings.mongo_database][settings.mongo_collection])
        target = UserPostgresRepository(pool, table=settings.pg_table)
        await target.create_table()
        await target.truncate()
        job = WorkerJob(
            pg_dsn=where.pg_dsn,
            table=settings.pg_table,
            writer=settings.writer,
            transform=transform,
        )
        cluster = ClusterMigrationFactory.create(
            settings.backend,
            settings.workers,
            job=job,
            queue_depth=settings.queue_depth,
            dispatcher=dispatcher,
            progress=progress,
        )
        progress.start(await source.estimated_count(), f"{settings.backend}/{settings.writer}")
        rows_read = 0
        started = time.perf_counter()
        try:
            async with cluster:
                batches = source.iter_batches(settings.batch_size, raw=cluster.reads_raw_bson)
                async for batch in batches:
                    rows_read += len(batch)
                    await cluster.submit(batch)
        finally:
            progress.close()
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
            source=f"{redact_uri(where.mongo_uri)} "
            f"{settings.mongo_database}.{settings.mongo_collection}",
            target=f"{redact_uri(where.pg_dsn)} table {settings.pg_table}",
        )
        check_target(report, await target.count())
    log.info("migrated %d rows in %.2f s (%.0f rows/s)", rows_read, elapsed, report.rows_per_s)
    return report


def check_target(report: MigrationReport, rows_in_table: int) -> None:
    """Every row read is either in the table or rejected, and the table holds nothing else."""
    accounted = report.rows_written + report.rows_rejected
    if accounted != report.rows_read or rows_in_table != report.rows_written:
        raise IntegrityCheckError(
            f"read {report.rows_read} documents but wrote {report.rows_written} and rejected "
            f"{report.rows_rejected}; the table holds {rows_in_table} rows"
        )


def run_migration(settings: Settings | None = None, **options: Any) -> MigrationReport:
    """Synchronous :func:`migrate`, for scripts and the CLI (not inside a running loop)."""
    return asyncio.run(migrate(settings, **options))
