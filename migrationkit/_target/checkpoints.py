"""``CheckpointRepository``: where a migration got to, stored durably in PostgreSQL.

A checkpoint is the ``_id`` of the last document such that it and every document
before it (in ``_id`` order) is committed, written or set aside. A resumed run
reads only what comes after it; anything past it that had already landed is
updated in place, never doubled (the unique ``mongo_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bson

from migrationkit._normalize.rows import BSON_OPTIONS, mongo_key
from migrationkit._target.writers import quote_identifier

TABLE = "migrationkit_checkpoints"


@dataclass(frozen=True)
class Checkpoint:
    target_table: str
    source: str
    last_id: Any
    rows_done: int
    updated_at: datetime
    completed: bool

    @property
    def last_key(self) -> str:
        return mongo_key(self.last_id)


class CheckpointRepository:
    """One checkpoint per target table, keyed by table name."""

    def __init__(self, connection: Any) -> None:
        self._db = connection
        self._table = quote_identifier(TABLE)

    async def create_table(self) -> None:
        await self._db.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {self._table} (
                target_table TEXT PRIMARY KEY,
                source       TEXT NOT NULL,
                last_id      BYTEA,
                rows_done    BIGINT NOT NULL DEFAULT 0,
                updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
                completed    BOOLEAN NOT NULL DEFAULT false
            )"""
        )

    async def load(self, target_table: str) -> Checkpoint | None:
        record = await self._db.fetchrow(
            f"SELECT * FROM {self._table} WHERE target_table = $1", target_table
        )
        if record is None or record["last_id"] is None:
            return None
        last_id = bson.decode(record["last_id"], BSON_OPTIONS)["_id"]
        return Checkpoint(
            record["target_table"],
            record["source"],
            last_id,
            record["rows_done"],
            record["updated_at"],
            record["completed"],
        )

    async def save(
        self, target_table: str, *, source: str, last_id: Any, rows_done: int, completed: bool
    ) -> None:
        await self._db.execute(
            f"INSERT INTO {self._table} "
            "(target_table, source, last_id, rows_done, completed, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (target_table) DO UPDATE SET "
            "source = EXCLUDED.source, last_id = EXCLUDED.last_id, rows_done = EXCLUDED.rows_done, "
            "completed = EXCLUDED.completed, updated_at = now()",
            target_table,
            source,
            bson.encode({"_id": last_id}),
            rows_done,
            completed,
        )

    async def clear(self, target_table: str) -> None:
        await self._db.execute(f"DELETE FROM {self._table} WHERE target_table = $1", target_table)
