"""The PostgreSQL sink a worker writes through: where to write, and the opener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from migrationkit._executors.worker import Sink, WorkerJob
from migrationkit._normalize.batches import PreparedBatch, Rejection, Transform
from migrationkit._normalize.models import document_to_row
from migrationkit._observe.logs import WorkerLogging
from migrationkit._retry import RetryPolicy
from migrationkit._target.connection import ReconnectingConnection
from migrationkit._target.loader import BatchLoader
from migrationkit._target.writers import RowWriter, row_writer


@dataclass(frozen=True)
class PostgresTarget:
    """Where a worker writes and with which writer. Picklable; its repr shows no password."""

    pg_dsn: str = field(repr=False)
    table: str = "users"
    writer: str | RowWriter = "copy"  # a name, or the function (module-level: it is pickled)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@asynccontextmanager
async def postgres_sink(target: PostgresTarget) -> AsyncIterator[Sink]:
    """One persistent PostgreSQL connection per worker, re-opened after transient faults."""
    write_rows = row_writer(target.writer)  # a name or import path is looked up once

    async def write(batch: PreparedBatch) -> list[Rejection]:
        return await connection.run(
            lambda db: BatchLoader(db, table=target.table, writer=write_rows).write_batch(batch),
            what="writing a batch to PostgreSQL",
        )

    async with ReconnectingConnection(target.pg_dsn, policy=target.retry) as connection:
        yield write


def postgres_job(
    pg_dsn: str,
    *,
    table: str = "users",
    writer: str | RowWriter = "copy",
    transform: Transform = document_to_row,
    retry: RetryPolicy | None = None,
    log_setup: WorkerLogging | None = None,
) -> WorkerJob:
    """A worker job that writes batches into ``table`` through :func:`postgres_sink`."""
    target = PostgresTarget(pg_dsn, table=table, writer=writer, retry=retry or RetryPolicy())
    return WorkerJob(target, postgres_sink, transform, log_setup)
