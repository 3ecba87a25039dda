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
from migrationkit._mapping.normalize import transform_for
from migrationkit._mapping.spec import USERS, TableMapping, users_mapping
from migrationkit._normalize.rows import PreparedBatch, Rejection, Row, Transform
from migrationkit._observe.logs import WorkerLogging
from migrationkit._retry import RetryPolicy
from migrationkit._target.connection import ReconnectingConnection
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.mapping_sql import (
    delete_statement,
    stage_table_name,
    stage_table_statements,
    truncate_stage_statement,
    upsert_statements,
)
from migrationkit._target.writers import RowWriter, row_writer

#: Errors caused by the values of some row, not by the connection or the server.
ROW_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
    OverflowError,
    TypeError,
)

Children = dict[str, list[Row]]


class BatchLoader:
    """Loads batches into a mapping's tables (and the dead-letter table) on a connection.

    A document's row and its child rows land together, or are set aside together.
    Needs a connection, not a pool: it opens transactions.
    """

    def __init__(
        self, connection: Any, *, mapping: TableMapping, writer: str | RowWriter = "copy"
    ) -> None:
        self._db = connection
        self.mapping = mapping
        self.table = mapping.table
        self._write_rows = row_writer(writer)  # resolved once, not at every halving
        self._dead_letters = DeadLetterRepository(connection, table=mapping.table)

    async def write(self, rows: Sequence[Row], children: Children | None = None) -> int:
        """Plain load with the writer: all or nothing, fails on any bad or existing row."""
        if rows:
            async with self._db.transaction():
                await self._insert(rows, children or {})
        return len(rows)

    async def write_batch(self, batch: PreparedBatch) -> list[Rejection]:
        """Write a batch's rows and set its rejections aside, in one transaction.

        Returns every rejection: the batch's own, plus the documents PostgreSQL refused.
        """
        async with self._db.transaction():
            refused = await self._write_isolating(batch.rows, batch.children, upsert=False)
            rejections = batch.rejections + batch.reject_rows(refused)
            await self._dead_letters.add(rejections)
        return rejections

    async def replace_documents(
        self, batch: PreparedBatch, *, deleted: Sequence[str] = ()
    ) -> list[Rejection]:
        """Make the target hold exactly these documents' new versions (the follower's write).

        In the caller's transaction: the documents ``deleted`` and those set aside now
        leave the table (with their child rows); the others are upserted, their child
        rows replaced; whatever was set aside before under any of these keys is taken
        out of the dead-letter table first. Returns every rejection, as
        :meth:`write_batch` does.
        """
        rejected_now = [rejection.mongo_id for rejection in batch.rejections]
        await self._dead_letters.remove([row[0] for row in batch.rows] + rejected_now + [*deleted])
        await self._db.execute(delete_statement(self.mapping), [*deleted, *rejected_now])
        refused = await self._write_isolating(batch.rows, batch.children, upsert=True)
        if refused:  # their previous versions must not stay behind
            await self._db.execute(delete_statement(self.mapping), list(refused))
        rejections = batch.rejections + batch.reject_rows(refused)
        await self._dead_letters.add(rejections)
        return rejections

    async def _write_isolating(
        self, rows: list[Row], children: Children, *, upsert: bool
    ) -> dict[str, str]:
        if not rows:
            return {}
        try:
            async with self._db.transaction():  # a savepoint inside the batch's transaction
                if upsert:
                    await self._upsert(rows, children)
                else:
                    await self._insert(rows, children)
        except asyncpg.UniqueViolationError:
            if upsert:
                raise
            return await self._write_isolating(rows, children, upsert=True)
        except ROW_ERRORS as exc:
            if len(rows) == 1:
                return {rows[0][0]: f"PostgreSQL refused the row: {type(exc).__name__}: {exc}"}
            halves = rows[: len(rows) // 2], rows[len(rows) // 2 :]
            refused: dict[str, str] = {}
            for half in halves:
                refused |= await self._write_isolating(
                    half, _children_of(half, children), upsert=upsert
                )
            return refused
        return {}

    async def _insert(self, rows: Sequence[Row], children: Children) -> None:
        """Parents first: child rows reference them."""
        await self._write_rows(self._db, self.table, rows, self.mapping.column_names)
        for child in self.mapping.children:
            if child_rows := children.get(child.table):
                await self._write_rows(self._db, child.table, child_rows, child.column_names)

    async def _upsert(self, rows: Sequence[Row], children: Children) -> None:
        """Stage the rows, then update or insert them; a document's child rows are replaced."""
        for statement in stage_table_statements(self.mapping):
            await self._db.execute(statement)
        await self._db.execute(truncate_stage_statement(self.mapping))
        await self._db.copy_records_to_table(
            stage_table_name(self.table), records=rows, columns=list(self.mapping.column_names)
        )
        for child in self.mapping.children:
            if child_rows := children.get(child.table):
                await self._db.copy_records_to_table(
                    stage_table_name(child.table),
                    records=child_rows,
                    columns=list(child.column_names),
                )
        for statement in upsert_statements(self.mapping):
            await self._db.execute(statement)


def _children_of(rows: Sequence[Row], children: Children) -> Children:
    """The child rows of these documents (a child row's first value is its document's key)."""
    if not children:
        return children
    keys = {row[0] for row in rows}
    return {table: [row for row in found if row[0] in keys] for table, found in children.items()}


@dataclass(frozen=True)
class PostgresTarget:
    """Where a worker writes and with which writer. Picklable; its repr shows no password."""

    pg_dsn: str = field(repr=False)
    mapping: TableMapping = USERS
    writer: str | RowWriter = "copy"  # a name, or the function (module-level: it is pickled)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def table(self) -> str:
        return self.mapping.table


@asynccontextmanager
async def postgres_sink(target: PostgresTarget) -> AsyncIterator[Sink]:
    """One persistent PostgreSQL connection per worker, re-opened after transient faults."""
    write_rows = row_writer(target.writer)  # a name or import path is looked up once

    async def write(batch: PreparedBatch) -> list[Rejection]:
        return await connection.run(
            lambda db: BatchLoader(db, mapping=target.mapping, writer=write_rows).write_batch(
                batch
            ),
            what="writing a batch to PostgreSQL",
        )

    async with ReconnectingConnection(target.pg_dsn, policy=target.retry) as connection:
        yield write


def postgres_job(
    pg_dsn: str,
    *,
    table: str = "users",
    mapping: TableMapping | None = None,
    writer: str | RowWriter = "copy",
    transform: Transform | None = None,
    retry: RetryPolicy | None = None,
    log_setup: WorkerLogging | None = None,
) -> WorkerJob:
    """A worker job that writes batches through :func:`postgres_sink`: by ``mapping``, or
    into the users ``table``."""
    mapping = mapping or users_mapping(table)
    target = PostgresTarget(pg_dsn, mapping=mapping, writer=writer, retry=retry or RetryPolicy())
    return WorkerJob(target, postgres_sink, transform or transform_for(mapping), log_setup)
