"""The benchmark's scratch tables: users tables under other names, made by the repository.

They are created by :class:`UserPostgresRepository` itself, so COPY into them costs
exactly what COPY into ``users`` costs, and a schema change reaches them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migrationkit._mapping.spec import users_mapping
from migrationkit._target.table import UserPostgresRepository
from migrationkit._target.tables import create_target, drop_target


async def create_users_table(connection: Any, table: str) -> None:
    """(Re)create an empty users ``table`` (and its dead-letter table)."""
    await drop_target(connection, users_mapping(table))
    await create_target(connection, users_mapping(table))


async def empty_table(connection: Any, table: str) -> None:
    await UserPostgresRepository(connection, table=table).truncate()


async def drop_tables(connection: Any, tables: Sequence[str]) -> None:
    """Drop each table and its dead-letter table."""
    for table in tables:
        await drop_target(connection, users_mapping(table))
