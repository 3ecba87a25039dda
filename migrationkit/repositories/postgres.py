"""``UserPostgresRepository``: the users table, and three ways to write a batch into it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migrationkit.models import ROW_COLUMNS, Row
from migrationkit.settings import Writer

WRITERS: tuple[Writer, ...] = ("copy", "executemany", "insert")


def quote_identifier(name: str) -> str:
    """Quote a table name for SQL (settings already restrict it to a plain identifier)."""
    return '"' + name.replace('"', '""') + '"'


class UserPostgresRepository:
    """The users table on an asyncpg connection or pool.

    Every writer is all-or-nothing per batch: COPY and ``executemany`` are atomic
    in asyncpg, and the row-by-row writer runs inside one transaction.
    """

    def __init__(self, connection: Any, *, table: str = "users") -> None:
        self._db = connection
        self.table = table
        self._quoted = quote_identifier(table)
        columns = ", ".join(ROW_COLUMNS)
        placeholders = ", ".join(f"${i}" for i in range(1, len(ROW_COLUMNS) + 1))
        self._insert_sql = f"INSERT INTO {self._quoted} ({columns}) VALUES ({placeholders})"

    async def create_table(self) -> None:
        await self._db.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {self._quoted} (
                id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                mongo_id      TEXT NOT NULL UNIQUE,
                username      TEXT NOT NULL,
                email         TEXT NOT NULL,
                age           INTEGER NOT NULL,
                registered_at TIMESTAMPTZ
            )"""
        )

    async def drop_table(self) -> None:
        await self._db.execute(f"DROP TABLE IF EXISTS {self._quoted}")

    async def truncate(self) -> None:
        await self._db.execute(f"TRUNCATE {self._quoted} RESTART IDENTITY")

    async def count(self) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {self._quoted}"))

    async def write(self, rows: Sequence[Row], *, writer: Writer = "copy") -> int:
        """Write ``rows`` with the named writer; returns the number of rows written."""
        if not rows:
            return 0
        if writer == "copy":
            await self._db.copy_records_to_table(self.table, records=rows, columns=ROW_COLUMNS)
        elif writer == "executemany":
            await self._db.executemany(self._insert_sql, rows)
        elif writer == "insert":
            async with self._db.transaction():
                for row in rows:
                    await self._db.execute(self._insert_sql, *row)
        else:
            raise ValueError(f"unknown writer {writer!r}; choose one of {', '.join(WRITERS)}")
        return len(rows)
