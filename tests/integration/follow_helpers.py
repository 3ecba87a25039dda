"""A followed migration driven from a test: start it, wait for it to catch up, stop it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bson import Decimal128
from bson.timestamp import Timestamp

from migrationkit import MongoConnectionHandler, Settings, TableMapping
from migrationkit._run.follow import FollowOptions, FollowStatus
from migrationkit._run.migration import Migration
from migrationkit._run.report import MigrationReport
from migrationkit._source.stream import SourceCollection

#: Longest a test waits for the follower to catch up.
CATCH_UP_TIMEOUT_S = 60.0


class FollowedRun:
    """``migrate(follow=...)`` in a task; ``caught_up()`` waits on the follower's own reports."""

    def __init__(
        self, settings: Settings, mapping: TableMapping, *, resume: bool, **options: Any
    ) -> None:
        self._stop = asyncio.Event()
        self._options = options  # FollowOptions' other fields
        self._reported = asyncio.Event()
        self.status: FollowStatus | None = None
        self.run = Migration(settings, mapping=mapping, on_follow_batch=self._on_batch)
        self._resume = resume
        self.task: asyncio.Task[MigrationReport] | None = None

    def _on_batch(self, status: FollowStatus) -> None:
        self.status = status
        self._reported.set()

    async def start(self) -> None:
        await self.run.__aenter__()
        self.task = asyncio.ensure_future(
            self.run.migrate(
                resume=self._resume, follow=FollowOptions(stop=self._stop, **self._options)
            )
        )

    async def following(self) -> None:
        """Until the load is done and the follower has read once."""
        await self._wait(lambda: self.status is not None)

    async def caught_up(self, time: Timestamp) -> FollowStatus:
        """Until every change made up to ``time`` is applied."""
        await self._wait(lambda: self.status is not None and self.status.caught_up_to >= time)
        assert self.status is not None
        return self.status

    async def _wait(self, condition: Any) -> None:
        async with asyncio.timeout(CATCH_UP_TIMEOUT_S):
            while not condition():
                assert self.task is not None
                if self.task.done():
                    self.task.result()  # raises what stopped it
                    raise AssertionError("the follower stopped by itself")
                self._reported.clear()
                waiter = asyncio.ensure_future(self._reported.wait())
                await asyncio.wait([waiter, self.task], return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()

    async def stop(self) -> MigrationReport:
        """Stop between batches, as SIGTERM does; the load's report."""
        self._stop.set()
        assert self.task is not None
        return await self.task

    async def close(self) -> None:
        self._stop.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        await self.run.__aexit__(None, None, None)


@asynccontextmanager
async def followed(
    settings: Settings, mapping: TableMapping, *, resume: bool = False, **options: Any
) -> AsyncIterator[FollowedRun]:
    run = FollowedRun(settings, mapping, resume=resume, **options)
    await run.start()
    try:
        yield run
    finally:
        await run.close()


@asynccontextmanager
async def source_collection(settings: Settings) -> AsyncIterator[SourceCollection]:
    assert settings.mongo_uri is not None
    uri = settings.mongo_uri.get_secret_value()
    async with MongoConnectionHandler(uri) as client:
        yield SourceCollection(client, settings.mongo_database, settings.mongo_collection, uri=uri)


async def random_changes(collection: Any, ids: list[Any], *, count: int, seed: int) -> None:
    """Inserts, updates (top-level, nested, arrays), replaces and deletes, at random."""
    rng = random.Random(seed)
    alive = list(ids)
    next_id = 1_000_000 + seed * 10_000
    for _ in range(count):
        roll = rng.random()
        if roll < 0.15 or not alive:
            next_id += 1
            document = {"_id": next_id, "name": f"new {next_id}", "v": 1, "orders": []}
            await collection.insert_one(document)
            alive.append(next_id)
            continue
        key = rng.choice(alive)
        if roll < 0.55:
            await collection.update_one(
                {"_id": key},
                {"$inc": {"v": 1}, "$set": {"address.city": f"city {rng.randrange(50)}"}},
            )
        elif roll < 0.70:
            order = {
                "order_id": rng.randrange(10**6),
                "total": Decimal128(f"{rng.randrange(10**4)}.25"),
            }
            await collection.update_one(
                {"_id": key}, {"$inc": {"v": 1}, "$push": {"orders": order}}
            )
        elif roll < 0.80:
            await collection.update_one({"_id": key}, {"$inc": {"v": 1}, "$pop": {"orders": 1}})
        elif roll < 0.90:
            await collection.replace_one({"_id": key}, {"name": f"replaced {key}", "v": 100})
        else:
            await collection.delete_one({"_id": key})
            alive.remove(key)
