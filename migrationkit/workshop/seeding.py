"""Fake users for the source collection: unique, reproducible, and fast.

Faker makes only a few thousand profiles per second per core, slower than the
server can store them. So Faker fills small pools of names and domains once,
and each user is a cheap random combination plus its sequence number, which
makes every username and e-mail unique.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from faker import Faker

from migrationkit._observe.progress import NullProgress, Progress
from migrationkit._source.repository import UserMongoRepository

POOL_SIZE = 1_000
_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
_SPAN_S = 10 * 365 * 24 * 3600


class UserFactory:
    """Build user documents ``start, start+1, …`` deterministically from ``seed``."""

    def __init__(self, seed: int = 0) -> None:
        faker = Faker()
        faker.seed_instance(seed)
        self._first = [faker.first_name().lower() for _ in range(POOL_SIZE)]
        self._last = [faker.last_name().lower().replace(" ", "") for _ in range(POOL_SIZE)]
        # sorted, not list(set): a set's order changes with each process's hash seed.
        self._domains = sorted({faker.free_email_domain() for _ in range(POOL_SIZE)})
        self._seed = seed

    def users(self, count: int, *, start: int = 0) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"{self._seed}:{start}")
        first, last, domains = self._first, self._last, self._domains
        for number in range(start, start + count):
            name = f"{rng.choice(first)}.{rng.choice(last)}"
            # MongoDB keeps milliseconds: round here so source and target compare equal.
            registered = _EPOCH + timedelta(milliseconds=rng.randrange(_SPAN_S * 1000))
            yield {
                "username": f"{name}{number}",
                "email": f"{name}{number}@{rng.choice(domains)}",
                "age": rng.randint(18, 90),
                "registered_at": registered,
            }


async def seed_users(
    repository: UserMongoRepository,
    count: int,
    *,
    seed: int = 0,
    batch_size: int = 10_000,
    append: bool = False,
    progress: Progress | None = None,
) -> int:
    """Insert ``count`` fake users (after dropping the collection unless ``append``)."""
    progress = progress or NullProgress()
    start = await repository.count() if append else 0
    if not append:
        await repository.drop()
    factory = UserFactory(seed)
    progress.start(count, "seeding")
    inserted = 0
    try:
        documents = factory.users(count, start=start)
        while batch := [doc for _, doc in zip(range(batch_size), documents, strict=False)]:
            inserted += await repository.insert_many(batch)
            progress.advance(len(batch))
    finally:
        progress.close()
    return inserted
