"""``StreamPositionRepository``: where a follower is in the source's change stream.

One row per target table, written in the same transaction as the changes it covers, so
that a follower killed at any moment resumes exactly after the last change it applied
(``migrate --follow --resume``): none lost, none applied twice in effect.

Cluster times (BSON ``Timestamp``) are stored as one ``bigint`` (seconds << 32 | the
increment), which sorts as the server orders its writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import bson
from bson.timestamp import Timestamp

from migrationkit._normalize.rows import BSON_OPTIONS
from migrationkit._target.writers import quote_identifier

TABLE = "migrationkit_stream_positions"
#: The channel a saved position is announced on (payload: the target table), at commit.
CHANNEL = "migrationkit_stream_positions"

Phase = Literal["loading", "following"]


def time_to_int(time: Timestamp) -> int:
    """A cluster time as one sortable integer."""
    return (time.time << 32) | time.inc


def int_to_time(value: int) -> Timestamp:
    return Timestamp(value >> 32, value & 0xFFFFFFFF)


@dataclass(frozen=True)
class StreamPosition:
    """A follower's position, saved with every batch of changes it applies.

    ``token`` resumes the stream just after the last change applied (or read, when the
    stream had nothing more). ``caught_up_to``: every change made at or before this
    cluster time is applied (what ``cutover`` waits for). ``reread_floor``: changes at
    or before it may be older than what the target already holds (the full load read
    documents while they changed), so the follower re-reads those documents instead of
    applying the events' contents (see :mod:`migrationkit._run.follow`).
    """

    target_table: str
    source: str
    collection_uuid: str | None
    token: Any
    caught_up_to: Timestamp
    reread_floor: Timestamp
    phase: Phase = "loading"
    changes_applied: int = 0
    updated_at: datetime | None = None

    def advanced(self, *, token: Any, caught_up_to: Timestamp, applied: int) -> StreamPosition:
        return replace(
            self,
            token=token,
            caught_up_to=max(caught_up_to, self.caught_up_to),
            changes_applied=self.changes_applied + applied,
        )


class StreamPositionRepository:
    """The positions of every follower, keyed by target table."""

    def __init__(self, connection: Any) -> None:
        self._db = connection
        self._table = quote_identifier(TABLE)

    async def create_table(self) -> None:
        await self._db.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {self._table} (
                target_table    TEXT PRIMARY KEY,
                source          TEXT NOT NULL,
                collection_uuid TEXT,
                token           BYTEA NOT NULL,
                caught_up_to    BIGINT NOT NULL,
                reread_floor    BIGINT NOT NULL,
                phase           TEXT NOT NULL,
                changes_applied BIGINT NOT NULL DEFAULT 0,
                updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
            )"""
        )

    async def load(self, target_table: str) -> StreamPosition | None:
        if not await self._db.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
            return None
        record = await self._db.fetchrow(
            f"SELECT * FROM {self._table} WHERE target_table = $1", target_table
        )
        if record is None:
            return None
        return StreamPosition(
            target_table=record["target_table"],
            source=record["source"],
            collection_uuid=record["collection_uuid"],
            token=bson.decode(record["token"], BSON_OPTIONS)["token"],
            caught_up_to=int_to_time(record["caught_up_to"]),
            reread_floor=int_to_time(record["reread_floor"]),
            phase=record["phase"],
            changes_applied=record["changes_applied"],
            updated_at=record["updated_at"],
        )

    async def save(self, position: StreamPosition) -> None:
        await self._db.execute(
            f"INSERT INTO {self._table} (target_table, source, collection_uuid, token, "
            "caught_up_to, reread_floor, phase, changes_applied, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) "
            "ON CONFLICT (target_table) DO UPDATE SET source = EXCLUDED.source, "
            "collection_uuid = EXCLUDED.collection_uuid, token = EXCLUDED.token, "
            "caught_up_to = EXCLUDED.caught_up_to, reread_floor = EXCLUDED.reread_floor, "
            "phase = EXCLUDED.phase, changes_applied = EXCLUDED.changes_applied, "
            "updated_at = now()",
            position.target_table,
            position.source,
            position.collection_uuid,
            bson.encode({"token": position.token}),
            time_to_int(position.caught_up_to),
            time_to_int(position.reread_floor),
            position.phase,
            position.changes_applied,
        )
        await self._db.execute("SELECT pg_notify($1, $2)", CHANNEL, position.target_table)

    async def clear(self, target_table: str) -> None:
        if await self._db.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
            await self._db.execute(
                f"DELETE FROM {self._table} WHERE target_table = $1", target_table
            )
