"""``UserPostgresRepository``: the users table, its dead-letter table, and how to write a batch.

Writers (:mod:`migrationkit.writers`: ``copy``, ``executemany``, ``insert``, or your
own) load rows. :meth:`UserPostgresRepository.write_batch` wraps any of them so
that a batch lands whole, or not at all, whatever it meets:

- a row PostgreSQL refuses (bad encoding, out-of-range number, a constraint) is found by
  halving the batch inside savepoints, and set aside with the reason; the rest lands;
- a row that is already there (a re-run or a resumed run) is updated in place
  (``INSERT … ON CONFLICT (mongo_id) DO UPDATE`` from a staging table), never doubled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from migrationkit.batches import PreparedBatch, Rejection
from migrationkit.models import ROW_COLUMNS, Row
from migrationkit.writers import RowWriter, quote_identifier, row_writer

#: Errors caused by the values of some row, not by the connection or the server.
ROW_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
    OverflowError,
    TypeError,
)

_STAGE = "migrationkit_stage"


class UserPostgresRepository:
    """The users table (and ``<table>_rejected``) on an asyncpg connection or pool.

    ``write`` and ``write_batch`` need a connection, not a pool (they open transactions).
    """

    def __init__(self, connection: Any, *, table: str = "users") -> None:
        self._db = connection
        self.table = table
        self.rejected_table = f"{table}_rejected"
        self._quoted = quote_identifier(table)
        self._rejected = quote_identifier(self.rejected_table)
        columns = ", ".join(ROW_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in ROW_COLUMNS[1:])
        self._upsert_sql = (
            f"INSERT INTO {self._quoted} ({columns}) SELECT {columns} FROM {_STAGE} "
            f"ON CONFLICT (mongo_id) DO UPDATE SET {updates}"
        )

    async def create_tables(self) -> None:
        await self._db.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {self._quoted} (
                id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                mongo_id      TEXT NOT NULL UNIQUE,
                username      TEXT NOT NULL,
                email         TEXT NOT NULL,
                age           INTEGER NOT NULL,
                registered_at TIMESTAMPTZ
            );
            CREATE TABLE IF NOT EXISTS {self._rejected} (
                mongo_id    TEXT PRIMARY KEY,
                document    TEXT NOT NULL,
                reason      TEXT NOT NULL,
                rejected_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )"""
        )

    async def drop_tables(self) -> None:
        await self._db.execute(f"DROP TABLE IF EXISTS {self._quoted}, {self._rejected}")

    async def truncate(self) -> None:
        await self._db.execute(f"TRUNCATE {self._quoted}, {self._rejected} RESTART IDENTITY")

    async def count(self) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {self._quoted}"))

    async def count_rejected(self) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {self._rejected}"))

    async def count_in_both(self) -> int:
        """Ids that are both written and rejected: always 0 in a correct migration."""
        return int(
            await self._db.fetchval(
                f"SELECT count(*) FROM {self._quoted} JOIN {self._rejected} USING (mongo_id)"
            )
        )

    async def rejections(self, *, limit: int = 20) -> list[asyncpg.Record]:
        records: list[asyncpg.Record] = await self._db.fetch(
            f"SELECT mongo_id, reason, rejected_at, document FROM {self._rejected} "
            "ORDER BY rejected_at, mongo_id LIMIT $1",
            limit,
        )
        return records

    async def write(self, rows: Sequence[Row], *, writer: str | RowWriter = "copy") -> int:
        """Plain load of ``rows`` with one writer (see :mod:`migrationkit.writers`).

        All or nothing: fails on any bad or existing row, leaving none of them.
        """
        if rows:
            async with self._db.transaction():
                await row_writer(writer)(self._db, self.table, rows)
        return len(rows)

    async def write_batch(
        self, batch: PreparedBatch, *, writer: str | RowWriter = "copy"
    ) -> list[Rejection]:
        """Write a batch's rows and set its rejections aside, in one transaction.

        Returns every rejection: the batch's own, plus the rows PostgreSQL refused.
        """
        write_rows = row_writer(writer)  # resolved once, not at every halving
        async with self._db.transaction():
            refused = await self._write_isolating(batch.rows, write_rows, upsert=False)
            rejections = batch.rejections + batch.reject_rows(refused)
            await self.reject(rejections)
        return rejections

    async def reject(self, rejections: Sequence[Rejection]) -> None:
        """Set documents aside in the dead-letter table (the latest reason wins)."""
        if rejections:
            await self._db.executemany(
                f"INSERT INTO {self._rejected} (mongo_id, document, reason) VALUES ($1, $2, $3) "
                "ON CONFLICT (mongo_id) DO UPDATE SET document = EXCLUDED.document, "
                "reason = EXCLUDED.reason, rejected_at = now()",
                [(r.mongo_id, r.document, r.reason) for r in rejections],
            )

    async def _write_isolating(
        self, rows: list[Row], write_rows: RowWriter, *, upsert: bool
    ) -> dict[str, str]:
        if not rows:
            return {}
        try:
            async with self._db.transaction():  # a savepoint inside the batch's transaction
                if upsert:
                    await self._upsert(rows)
                else:
                    await write_rows(self._db, self.table, rows)
        except asyncpg.UniqueViolationError:
            if upsert:
                raise
            return await self._write_isolating(rows, write_rows, upsert=True)
        except ROW_ERRORS as exc:
            if len(rows) == 1:
                return {rows[0][0]: f"PostgreSQL refused the row: {type(exc).__name__}: {exc}"}
            middle = len(rows) // 2
            refused = await self._write_isolating(rows[:middle], write_rows, upsert=upsert)
            return refused | await self._write_isolating(rows[middle:], write_rows, upsert=upsert)
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
