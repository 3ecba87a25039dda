"""The target as a whole: a mapping's tables, its dead-letter table and its checkpoint.

The coordinator's only view of the target's tables: it prepares them before a run
and counts them after, never writing SQL of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from migrationkit._errors import ConfigurationError
from migrationkit._mapping.spec import TableMapping
from migrationkit._target.checkpoints import CheckpointRepository
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.mapping_sql import create_table_statements
from migrationkit._target.mappings import MappingRecordRepository
from migrationkit._target.table import TableRepository
from migrationkit._target.writers import quote_identifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetCounts:
    """Rows in the table, documents set aside, and ids in both (0 when correct)."""

    written: int
    rejected: int
    in_both: int


async def create_target(db: Any, mapping: TableMapping) -> None:
    """The mapping's tables, its dead-letter and checkpoints tables, and the mapping's record."""
    await TableRepository(db, mapping=mapping).create_table()
    await DeadLetterRepository(db, table=mapping.table).create_table()
    await CheckpointRepository(db).create_table()
    await MappingRecordRepository(db).create_table()
    await MappingRecordRepository(db).save(mapping)


async def replace_other_mapping(db: Any, mapping: TableMapping, *, resume: bool) -> None:
    """Before a run: tables written with another mapping are dropped, or, on resume, refused.

    ``CREATE TABLE IF NOT EXISTS`` would keep the old tables: their columns would not be
    the mapping's, and an old child table would keep stale rows (and its reference would
    stop the parent being emptied). A run that starts over replaces them; resuming onto
    them would mix two layouts, so it stops and says how to start over.
    """
    recorded = await MappingRecordRepository(db).load(mapping.table)
    if recorded is None or create_table_statements(recorded) == create_table_statements(mapping):
        return
    old = TableRepository(db, mapping=recorded)
    if resume:
        raise ConfigurationError(
            f"table {mapping.table} was written with another mapping (its tables: "
            f"{', '.join(old.tables)}); run without --resume to start over: they are then "
            "replaced"
        )
    log.warning(
        "table %s was written with another mapping: dropping its tables %s to create "
        "them as this mapping says",
        mapping.table,
        ", ".join(old.tables),
    )
    await old.drop_table()


async def empty_target(db: Any, mapping: TableMapping) -> None:
    """Empty the tables and the dead letters and forget the checkpoint, in one transaction."""
    async with db.transaction():
        await TableRepository(db, mapping=mapping).truncate()
        await DeadLetterRepository(db, table=mapping.table).truncate()
        await CheckpointRepository(db).clear(mapping.table)


async def drop_target(db: Any, mapping: TableMapping) -> None:
    await TableRepository(db, mapping=mapping).drop_table()
    await DeadLetterRepository(db, table=mapping.table).drop_table()


async def count_target(db: Any, mapping: TableMapping) -> TargetCounts:
    dead_letters = DeadLetterRepository(db, table=mapping.table)
    return TargetCounts(
        written=await TableRepository(db, mapping=mapping).count(),
        rejected=await dead_letters.count(),
        in_both=await dead_letters.count_also_written(),
    )


async def describe_server(db: Any, table: str) -> tuple[str, bool]:
    """The server's version, and whether ``table`` exists (what the doctor shows)."""
    version = await db.fetchval("SELECT current_setting('server_version')")
    exists = await db.fetchval("SELECT to_regclass($1) IS NOT NULL", quote_identifier(table))
    return str(version), bool(exists)
