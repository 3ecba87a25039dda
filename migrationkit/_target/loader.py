"""``BatchLoader``: a batch lands whole, or not at all, through any row writer; the worker's sink.

Writers (:mod:`migrationkit._target.writers`: ``copy``, ``executemany``, ``insert``, or
your own) load rows. :meth:`BatchLoader.write_batch` wraps any of them in one
transaction, whatever it meets:

- a row PostgreSQL refuses (bad encoding, out-of-range number, a constraint) is found by
  halving the batch inside savepoints, and set aside with the reason; the rest lands;
- a row that is already there (a re-run or a resumed run) is updated in place
  (``INSERT … ON CONFLICT (mongo_id) DO UPDATE`` from a staging table), never doubled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from migrationkit._executors.worker import Sink, WorkerJob
from migrationkit._normalize.rows import (
    ROW_COLUMNS,
    PreparedBatch,
    Rejection,
    Row,
    Transform,
    document_to_row,
)
from migrationkit._observe.logs import WorkerLogging
from migrationkit._retry import RetryPolicy
from migrationkit._target.connection import ReconnectingConnection
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.writers import RowWriter, quote_identifier, row_writer

#: Errors caused by the values of some row, not by the connection or the server.
ROW_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
    OverflowError,
    TypeError,
)

_STAGE = "migrationkit_stage"


class BatchLoader:
    """Loads batches into one table (and its dead-letter table) on an asyncpg connection.

    Needs a connection, not a pool: it opens transactions.
    """

    def __init__(self, connection: Any, *, table: str, writer: str | RowWriter = "copy") -> None:
        self._db = connection
        self.table = table
        self._write_rows = row_writer(writer)  # resolved once, not at every halving
        self._dead_letters = DeadLetterRepository(connection, table=table)
        columns = ", ".join(ROW_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in ROW_COLUMNS[1:])
        self._upsert_sql = (
            f"INSERT INTO {quote_identifier(table)} ({columns}) SELECT {columns} FROM {_STAGE} "
            f"ON CONFLICT (mongo_id) DO UPDATE SET {updates}"
        )

    async def write(self, rows: Sequence[Row]) -> int:
        """Plain load of ``rows`` with the writer: all or nothing, fails on any bad or
        existing row."""
        if rows:
            async with self._db.transaction():
                await self._write_rows(self._db, self.table, rows)
        return len(rows)

    async def write_batch(self, batch: PreparedBatch) -> list[Rejection]:
        """Write a batch's rows and set its rejections aside, in one transaction.

        Returns every rejection: the batch's own, plus the rows PostgreSQL refused.
        """
        async with self._db.transaction():
            refused = await self._write_isolating(batch.rows, upsert=False)
            rejections = batch.rejections + batch.reject_rows(refused)
            await self._dead_letters.add(rejections)
        return rejections

    async def _write_isolating(self, rows: list[Row], *, upsert: bool) -> dict[str, str]:
        if not rows:
            return {}
        try:
            async with self._db.transaction():  # a savepoint inside the batch's transaction
                if upsert:
                    await self._upsert(rows)
                else:
                    await self._write_rows(self._db, self.table, rows)
        except asyncpg.UniqueViolationError:
            if upsert:
                raise
            return await self._write_isolating(rows, upsert=True)
        except ROW_ERRORS as exc:
            if len(rows) == 1:
                return {rows[0][0]: f"PostgreSQL refused the row: {type(exc).__name__}: {exc}"}
            middle = len(rows) // 2
            refused = await self._write_isolating(rows[:middle], upsert=upsert)
            return refused | await self._write_isolating(rows[middle:], upsert=upsert)
        return {}

    async def _upsert(self, rows: list[Row]) -> None:
        await self._db.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            "(mongo_id TEXT, username TEXT, email TEXT, age INTEGER, registered_at TIMESTAMPTZ) "
            "ON COMMIT DELETE ROWS"
        )
        await self._db.execute(f"TRUNCATE {_STAGE}")
        await self._db.copy_records_to_table(_STAGE, records=rows, columns=ROW_COLUMNS)
        await self._db.execute(self._upsert_sql)


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
