"""``migrationkit cutover``: the step an operator takes before switching the application.

It notes the source's cluster time when it is called, waits until the follower
(``migrate --follow``, running elsewhere) has applied every change made up to then —
the follower announces each position it commits (``NOTIFY``), so nothing polls — and
runs :func:`~migrationkit._run.verify.verify`. It succeeds only when source and target
agree. Stop the application's writes first: while the source keeps changing, verify
compares two moving pictures, and cutover tries again until its timeout.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from bson.timestamp import Timestamp

from migrationkit._errors import CutoverTimeoutError, IntegrityCheckError
from migrationkit._mapping.spec import TableMapping
from migrationkit._run.inference import target_table
from migrationkit._run.verify import VerifyReport, verify
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.stream import SourceCollection
from migrationkit._target.stream_positions import (
    CHANNEL,
    StreamPosition,
    StreamPositionRepository,
)

DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class CutoverReport:
    """What cutover waited for and found."""

    called_at: Timestamp
    waited_s: float
    position: StreamPosition
    verified: VerifyReport
    attempts: int

    def summary(self) -> str:
        return (
            f"the follower applied every change up to {self.called_at.as_datetime():%H:%M:%S} "
            f"UTC (waited {self.waited_s:.1f} s; {self.position.changes_applied:,} changes "
            f"followed in all); verify: {self.verified.summary()}"
        )


async def cutover(
    settings: Settings,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    mapping: TableMapping | None = None,
    endpoints: Endpoints | None = None,
) -> CutoverReport:
    """Wait for the follower to catch up with now, then verify; raise unless they agree."""
    if endpoints is None:
        endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    table = mapping.table if mapping is not None else target_table(settings)
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client:
        source = SourceCollection(
            client, settings.mongo_database, settings.mongo_collection, uri=endpoints.mongo_uri
        )
        attempts = 0
        while True:
            attempts += 1
            called_at = await source.cluster_time()
            position = await _wait_for(endpoints.pg_dsn, table, called_at, deadline=deadline)
            waited = time.monotonic() - started
            report = await verify(settings, endpoints=endpoints, mapping=mapping)
            if report.ok:
                return CutoverReport(called_at, waited, position, report, attempts)
            if time.monotonic() >= deadline:
                raise IntegrityCheckError(
                    f"the follower caught up, but source and target still differ after "
                    f"{attempts} checks in {timeout_s:.0f} s (is the application still "
                    f"writing?): {report.summary()}"
                )


async def _wait_for(
    dsn: str, table: str, called_at: Timestamp, *, deadline: float
) -> StreamPosition:
    """The follower's position, once it covers ``called_at``; or time out, saying how far."""
    connection: Any = await asyncpg.connect(dsn)
    woken = asyncio.Event()
    try:
        await connection.add_listener(CHANNEL, lambda *_: woken.set())
        positions = StreamPositionRepository(connection)
        while True:
            woken.clear()
            position = await positions.load(table)
            if (
                position is not None
                and position.phase == "following"
                and position.caught_up_to >= called_at
            ):
                return position
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CutoverTimeoutError(_behind(table, position, called_at))
            try:
                await asyncio.wait_for(woken.wait(), remaining)
            except TimeoutError:
                continue  # the last look, then the error above
    finally:
        await connection.close()


def _behind(table: str, position: StreamPosition | None, called_at: Timestamp) -> str:
    if position is None:
        return (
            f"no follower has saved a position for table {table}: start one with "
            "`migrationkit migrate --follow` (it must run while cutover waits)"
        )
    if position.phase == "loading":
        return f"the follower of table {table} is still loading; try again when it follows"
    behind = called_at.time - position.caught_up_to.time
    return (
        f"the follower of table {table} has not applied every change made before cutover "
        f"was called: it is {behind} s behind (last saved {position.updated_at:%H:%M:%S}); "
        "is `migrationkit migrate --follow --resume` running?"
    )
