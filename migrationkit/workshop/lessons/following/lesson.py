"""Lesson 09's sizes and paces, and its collection: generated customers and their mapping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient

from migrationkit._mapping.infer import infer_mapping
from migrationkit._mapping.spec import TableMapping
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit.workshop.lessons import overlap
from migrationkit.workshop.lessons.lab import notebook_rows
from migrationkit.workshop.samples import CustomerFactory

#: Customers the stored outputs load (CI sets fewer through ``MIGRATIONKIT_NOTEBOOK_ROWS``).
ROWS = 20_000
#: Same seed, same customers, same writes.
SEED = 9
#: Documents per batch of the full load.
BATCH_SIZE = 1_000
#: The live writer's pace while the collection is loaded and followed.
LIVE_RATE = 50.0
#: How long the live writer goes on once the follower has started following.
FOLLOW_S = 8.0
#: The writer's paces in the measurement, and how long each run writes.
RATES = (25.0, 50.0, 100.0)
BURST_S = 3.0
#: Runs of every pace; the charts show their median and range.
REPEATS = overlap.REPEATS
#: The issue's target: the follower keeps up when no change waits longer than this.
KEPT_UP_S = 2.0
#: Median delays within this factor of each other count as one (the pace did not move them).
FLAT_DELAY = 1.5
#: The writer kept its pace when it made at least this share of the writes it was asked for.
KEPT_PACE = 0.9
#: Longest a lesson waits for the follower to load or catch up.
WAIT_TIMEOUT_S = 300.0

#: What the writer does, and how often (shares add up to 1).
OPERATIONS = (
    ("insert", 0.15),
    ("update a nested field", 0.30),
    ("push to an array", 0.20),
    ("pop from an array", 0.10),
    ("replace", 0.10),
    ("delete", 0.15),
)

Clock = Callable[[], float]


def lesson_rows() -> int:
    """How many customers the lesson loads: :data:`ROWS`, or what CI sets."""
    return notebook_rows(default=ROWS)


@dataclass
class Customers:
    """The lesson's collection on the servers: its settings, its mapping, its ``_id``s."""

    settings: Settings
    endpoints: Endpoints
    mapping: TableMapping
    ids: list[Any]
    factory: CustomerFactory = field(repr=False)

    @property
    def rows(self) -> int:
        return len(self.ids)

    @property
    def tables(self) -> list[str]:
        return [self.mapping.table, *(child.table for child in self.mapping.children)]

    def client(self) -> AsyncMongoClient[Any]:
        return AsyncMongoClient(self.endpoints.mongo_uri)


async def open_customers(
    name: str, *, rows: int, seed: int = SEED, batch: int = 2_000, **settings: Any
) -> Customers:
    """Replace ``<name>_customers`` with ``rows`` generated customers; infer their mapping.

    The mapping puts arrays in child tables (``nested="child"``) and keeps what it has
    no column for in a catch-all, as ``migrationkit infer --nested child`` would; it is
    inferred from every document as the server returns it.
    """
    options: dict[str, Any] = {
        "mongo_collection": f"{name}_customers",
        "pg_table": f"{name}_customers",
        "backend": "asyncio",
        "workers": 2,
        "batch_size": BATCH_SIZE,
    }
    lesson_settings = Settings(**(options | settings))
    endpoints = await asyncio.to_thread(resolve_endpoints, lesson_settings)
    factory = CustomerFactory(seed)
    client: AsyncMongoClient[Any] = AsyncMongoClient(endpoints.mongo_uri)
    async with client:
        collection = client[lesson_settings.mongo_database][lesson_settings.mongo_collection]
        await collection.drop()
        documents = factory.customers(rows)
        while chunk := [document for _, document in zip(range(batch), documents, strict=False)]:
            await collection.insert_many(chunk)
        stored = [document async for document in collection.find({})]
    mapping = infer_mapping(
        stored,
        collection=lesson_settings.mongo_collection,
        table=lesson_settings.pg_table,
        sampled=None,
        total=len(stored),
        nested="child",
    ).mapping
    ids = [document["_id"] for document in stored]
    return Customers(lesson_settings, endpoints, mapping, ids, factory)
