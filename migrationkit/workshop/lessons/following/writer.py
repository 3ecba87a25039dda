"""The lesson's application: one writer at a steady pace, every write one change."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Self

from bson import Decimal128
from pymongo import AsyncMongoClient

from migrationkit.workshop.lessons.following.lesson import OPERATIONS, SEED, Clock, Customers
from migrationkit.workshop.samples import PRODUCTS, CustomerFactory

CITIES = ("Porto", "Lisbon", "Turin", "Lyon", "Ghent", "Graz", "Bergen", "Cork")


@dataclass(frozen=True)
class WriterRun:
    """One run of the writer: how many writes it was asked for per second, and made."""

    asked: float
    writes: int
    started: float
    ended: float
    first: int  # the writer's count of writes before this run

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def achieved(self) -> float:
        """Writes per second it really made."""
        return self.writes / self.seconds if self.seconds > 0 else 0.0


def next_due(previous: float, *, interval: float, now: float) -> float:
    """When the next write is due: one interval after the last one was, never in the past."""
    return max(previous + interval, now)


def pick_operation(roll: float) -> str:
    """The operation a roll in [0, 1) stands for, by the shares of :data:`OPERATIONS`."""
    total = 0.0
    for name, share in OPERATIONS:
        total += share
        if roll < total:
            return name
    return OPERATIONS[-1][0]


class SteadyWriter:
    """An application writing at a steady pace: inserts, updates, replaces and deletes.

    Updates set a nested field (``address.city``), push an order (with its line items)
    or pop one; every write keeps the documents in the shape their mapping was inferred
    from, and every one changes exactly one document. ``acked`` holds the moment each
    write was acknowledged, in order, on ``clock``.
    """

    def __init__(
        self,
        collection: Any,
        ids: Sequence[Any],
        *,
        factory: CustomerFactory,
        next_number: int,
        seed: int = SEED,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.collection = collection
        self.alive = list(ids)
        self.factory = factory
        self.next_number = next_number
        self.rng = random.Random(seed)
        self.clock = clock
        self.acked: list[float] = []
        self.kinds: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._client: AsyncMongoClient[Any] | None = None

    @classmethod
    def for_customers(cls, customers: Customers, *, clock: Clock = time.perf_counter) -> Self:
        """A writer on its own client (close it with :meth:`close`)."""
        client = customers.client()
        settings = customers.settings
        writer = cls(
            client[settings.mongo_database][settings.mongo_collection],
            customers.ids,
            factory=customers.factory,
            next_number=customers.rows,
            clock=clock,
        )
        writer._client = client
        return writer

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    @property
    def writes(self) -> int:
        return len(self.acked)

    def stop(self) -> None:
        """End the current :meth:`run` before its next write."""
        self._stop.set()

    async def run(self, *, rate: float, seconds: float | None = None) -> WriterRun:
        """Write at ``rate`` writes/s for ``seconds`` (or until :meth:`stop`).

        Each write is due one interval after the one before; a writer held up writes
        the next one at once but never makes up for lost time with a burst, so
        ``achieved`` says what it could do at that pace. A timed run ends after
        ``seconds``, or once it has made ``rate * seconds`` writes.
        """
        self._stop.clear()
        first, started = self.writes, self.clock()
        due, index = started, 0
        while not self._stop.is_set():
            if seconds is not None and (
                index / rate >= seconds or self.clock() - started >= seconds
            ):
                break
            wait = due - self.clock()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)  # the pace, or stop()
                continue
            await self.one_write()
            index += 1
            due = next_due(due, interval=1 / rate, now=self.clock())
        return WriterRun(rate, self.writes - first, started, self.clock(), first)

    async def one_write(self) -> str:
        """One random write; returns which operation it was."""
        operation = pick_operation(self.rng.random()) if self.alive else "insert"
        rng = self.rng
        if operation == "insert":
            document = next(self.factory.customers(1, start=self.next_number))
            self.next_number += 1
            await self.collection.insert_one(document)
            self.alive.append(document["_id"])
        elif operation == "delete":
            where = rng.randrange(len(self.alive))
            key = self.alive[where]
            self.alive[where] = self.alive[-1]
            self.alive.pop()
            await self.collection.delete_one({"_id": key})
        elif operation == "replace":
            key = rng.choice(self.alive)
            document = next(self.factory.customers(1, start=rng.randrange(10**6)))
            await self.collection.replace_one({"_id": key}, document | {"_id": key})
        else:
            await self.collection.update_one(
                {"_id": rng.choice(self.alive)}, self._update(operation)
            )
        self.acked.append(self.clock())
        self.kinds[operation] += 1
        return operation

    def _update(self, operation: str) -> dict[str, Any]:
        bump: dict[str, Any] = {"$inc": {"loyalty_points": 1}}  # never a no-op: one event each
        if operation == "update a nested field":
            return bump | {"$set": {"address.city": self.rng.choice(CITIES)}}
        if operation == "push to an array":
            return bump | {"$push": {"orders": new_order(self.rng)}}
        return bump | {"$pop": {"orders": -1}}  # the oldest order


def new_order(rng: random.Random) -> dict[str, Any]:
    """An order shaped like the sample customers' (a date, line items, Decimal128 prices)."""
    ordered = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(500_000))
    items = [
        {
            "product": rng.choice(PRODUCTS),
            "quantity": rng.randint(1, 10),
            "price": Decimal128(Decimal(rng.randrange(100, 100_000)).scaleb(-2)),
        }
        for _ in range(rng.randint(1, 3))
    ]
    return {"ordered_at": ordered, "items": items}
