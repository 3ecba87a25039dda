"""``MappingRecordRepository``: the mapping each target table was written with.

A run records its mapping (as the TOML a person reviews) beside the tables it writes,
so that ``--resume`` and ``verify`` use that mapping, not a new inference from another
sample that could differ.
"""

from __future__ import annotations

from typing import Any

from migrationkit._mapping.spec import TableMapping
from migrationkit._mapping.toml import mapping_to_toml, mappings_from_toml
from migrationkit._target.writers import quote_identifier

TABLE = "migrationkit_mappings"


class MappingRecordRepository:
    """One recorded mapping per target table, keyed by table name."""

    def __init__(self, connection: Any) -> None:
        self._db = connection
        self._table = quote_identifier(TABLE)

    async def create_table(self) -> None:
        await self._db.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {self._table} (
                target_table TEXT PRIMARY KEY,
                mapping      TEXT NOT NULL,
                recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
            )"""
        )

    async def save(self, mapping: TableMapping) -> None:
        await self._db.execute(
            f"INSERT INTO {self._table} (target_table, mapping) VALUES ($1, $2) "
            "ON CONFLICT (target_table) DO UPDATE SET mapping = EXCLUDED.mapping, "
            "recorded_at = now()",
            mapping.table,
            mapping_to_toml(mapping),
        )

    async def load(self, target_table: str) -> TableMapping | None:
        """The mapping recorded for ``target_table``, or ``None`` (never written, or no table)."""
        exists = await self._db.fetchval("SELECT to_regclass($1) IS NOT NULL", self._table)
        if not exists:
            return None
        text = await self._db.fetchval(
            f"SELECT mapping FROM {self._table} WHERE target_table = $1", target_table
        )
        if text is None:
            return None
        mappings = mappings_from_toml(text)
        return next(iter(mappings.values()), None)
