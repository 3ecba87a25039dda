"""``DeadLetterRepository``: documents set aside (``<table>_rejected``), each with its reason.

The document is kept whole in a ``jsonb`` column in the kit's lossless encoding
(:func:`migrationkit._mapping.types.to_jsonb`: every BSON type, NUL and odd keys
included), so what was set aside can be compared with the source value for value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from migrationkit._mapping.types import from_jsonb, to_jsonb
from migrationkit._normalize.rows import Rejection
from migrationkit._target.writers import quote_identifier


class DeadLetterRepository:
    """The dead-letter table of one target table, keyed by ``mongo_id``."""

    def __init__(self, connection: Any, *, table: str = "users") -> None:
        self._db = connection
        self.of_table = table
        self.table = f"{table}_rejected"
        self._quoted = quote_identifier(self.table)

    async def create_table(self) -> None:
        await self._db.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {self._quoted} (
                mongo_id    TEXT PRIMARY KEY,
                document    JSONB NOT NULL,
                reason      TEXT NOT NULL,
                rejected_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )"""
        )

    async def drop_table(self) -> None:
        await self._db.execute(f"DROP TABLE IF EXISTS {self._quoted}")

    async def add(self, rejections: Sequence[Rejection]) -> None:
        """Set documents aside (the latest reason wins)."""
        if rejections:
            await self._db.executemany(
                f"INSERT INTO {self._quoted} (mongo_id, document, reason) VALUES ($1, $2, $3) "
                "ON CONFLICT (mongo_id) DO UPDATE SET document = EXCLUDED.document, "
                "reason = EXCLUDED.reason, rejected_at = now()",
                [(r.mongo_id, to_jsonb(r.document), r.reason) for r in rejections],
            )

    async def remove(self, keys: Sequence[str]) -> None:
        """Take these documents out (a later change replaced or deleted them)."""
        if keys:
            await self._db.execute(
                f"DELETE FROM {self._quoted} WHERE mongo_id = ANY($1::text[])", list(keys)
            )

    async def truncate(self) -> None:
        await self._db.execute(f"TRUNCATE {self._quoted}")

    async def count(self) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {self._quoted}"))

    async def latest(self, *, limit: int = 20) -> list[asyncpg.Record]:
        """The first ``limit`` documents set aside, oldest first, with reason and time."""
        records: list[asyncpg.Record] = await self._db.fetch(
            f"SELECT mongo_id, reason, rejected_at, document FROM {self._quoted} "
            "ORDER BY rejected_at, mongo_id LIMIT $1",
            limit,
        )
        return records

    async def documents_for(self, keys: Sequence[str]) -> dict[str, Any]:
        """The documents set aside under these ``mongo_id``s, decoded to their BSON values."""
        records = await self._db.fetch(
            f"SELECT mongo_id, document FROM {self._quoted} WHERE mongo_id = ANY($1::text[])",
            list(keys),
        )
        return {record["mongo_id"]: from_jsonb(record["document"]) for record in records}

    async def keys_among(self, keys: Sequence[str]) -> list[str]:
        """Which of these ``mongo_id``s are set aside."""
        records = await self._db.fetch(
            f"SELECT mongo_id FROM {self._quoted} WHERE mongo_id = ANY($1::text[])", list(keys)
        )
        return [record["mongo_id"] for record in records]

    async def count_also_written(self) -> int:
        """Ids both set aside and in the target table: always 0 in a correct migration."""
        return int(
            await self._db.fetchval(
                f"SELECT count(*) FROM {quote_identifier(self.of_table)} "
                f"JOIN {self._quoted} USING (mongo_id)"
            )
        )
