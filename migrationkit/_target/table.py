"""The target table (and its child tables), as a mapping describes them — what they store.

Rows are in the mapping's ``column_names`` order, keyed by the unique ``mongo_id``;
child tables by ``(mongo_id, position)``. Documents set aside live in the dead-letter
table (:mod:`migrationkit._target.dead_letters`); batches load through
:mod:`migrationkit._target.loader`. ``UserPostgresRepository`` is the face of the
built-in users mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migrationkit._mapping.spec import TableMapping, users_mapping
from migrationkit._normalize.rows import Row
from migrationkit._target.mapping_sql import (
    create_table_statements,
    drop_table_statements,
    select_statements,
)
from migrationkit._target.writers import quote_identifier


class TableRepository:
    """A mapping's tables on an asyncpg connection or pool."""

    def __init__(self, connection: Any, *, mapping: TableMapping) -> None:
        self._db = connection
        self.mapping = mapping
        self.table = mapping.table
        self._quoted = quote_identifier(mapping.table)

    @property
    def tables(self) -> list[str]:
        """The parent table, then its child tables."""
        return [self.mapping.table, *(child.table for child in self.mapping.children)]

    async def create_table(self) -> None:
        for statement in create_table_statements(self.mapping):
            await self._db.execute(statement)

    async def drop_table(self) -> None:
        for statement in drop_table_statements(self.mapping):
            await self._db.execute(statement)

    async def truncate(self) -> None:
        quoted = ", ".join(quote_identifier(table) for table in self.tables)
        await self._db.execute(f"TRUNCATE {quoted} RESTART IDENTITY")

    async def count(self) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {self._quoted}"))

    async def rows_for(self, keys: Sequence[str]) -> dict[str, Row]:
        """The rows of these ``mongo_id``s, by key (``verify`` compares them with the source)."""
        records = await self._db.fetch(select_statements(self.mapping)[self.table], list(keys))
        return {record["mongo_id"]: tuple(record) for record in records}

    async def child_rows_for(self, keys: Sequence[str]) -> dict[str, list[Row]]:
        """Each child table's rows of these ``mongo_id``s, in key and position order."""
        statements = select_statements(self.mapping)
        return {
            child.table: [tuple(r) for r in await self._db.fetch(statements[child.table], keys)]
            for child in self.mapping.children
        }


class UserPostgresRepository(TableRepository):
    """The workshop's users table: the built-in users mapping, under any table name."""

    def __init__(self, connection: Any, *, table: str = "users") -> None:
        super().__init__(connection, mapping=users_mapping(table))
