"""``UserPostgresRepository``: the users table — what it stores, never how a batch loads.

The rows are :data:`~migrationkit._normalize.rows.ROW_COLUMNS` tuples keyed by the
unique ``mongo_id``; documents set aside live in the dead-letter table
(:mod:`migrationkit._target.dead_letters`), batches load through
:mod:`migrationkit._target.loader`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migrationkit._normalize.rows import ROW_COLUMNS, Row
from migrationkit._target.writers import quote_identifier


class UserPostgresRepository:
    """The users table on an asyncpg connection or pool."""

    def __init__(self, connection: Any, *, table: str = "users") -> None:
        self._db = connection
        self.table = table
        self._quoted = quote_identifier(table)

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

    async def rows_for(self, keys: Sequence[str]) -> dict[str, Row]:
        """The rows of these ``mongo_id``s, by key (``verify`` compares them with the source)."""
        records = await self._db.fetch(
            f"SELECT {', '.join(ROW_COLUMNS)} FROM {self._quoted} WHERE mongo_id = ANY($1::text[])",
            list(keys),
        )
        return {record["mongo_id"]: tuple(record) for record in records}
