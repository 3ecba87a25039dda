"""The target as a whole: its table, dead-letter table and checkpoint, prepared and counted.

The coordinator's only view of the target's tables: it prepares them before a run
and counts them after, never writing SQL of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrationkit._target.checkpoints import CheckpointRepository
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.users import UserPostgresRepository


@dataclass(frozen=True)
class TargetCounts:
    """Rows in the table, documents set aside, and ids in both (0 when correct)."""

    written: int
    rejected: int
    in_both: int


async def create_target(db: Any, table: str) -> None:
    """The table, its dead-letter table and the checkpoints table, if missing."""
    await UserPostgresRepository(db, table=table).create_table()
    await DeadLetterRepository(db, table=table).create_table()
    await CheckpointRepository(db).create_table()


async def empty_target(db: Any, table: str) -> None:
    """Empty the table and its dead letters and forget its checkpoint, in one transaction."""
    async with db.transaction():
        await UserPostgresRepository(db, table=table).truncate()
        await DeadLetterRepository(db, table=table).truncate()
        await CheckpointRepository(db).clear(table)


async def drop_target(db: Any, table: str) -> None:
    await UserPostgresRepository(db, table=table).drop_table()
    await DeadLetterRepository(db, table=table).drop_table()


async def count_target(db: Any, table: str) -> TargetCounts:
    dead_letters = DeadLetterRepository(db, table=table)
    return TargetCounts(
        written=await UserPostgresRepository(db, table=table).count(),
        rejected=await dead_letters.count(),
        in_both=await dead_letters.count_also_written(),
    )
