"""The benchmark's own data: ``bench_*`` collections, seeded once and reused while intact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrationkit._source.repository import UserMongoRepository
from migrationkit.workshop.seeding import seed_users

#: Seed for the fake users: the same seed gives the same data set on every run.
BENCH_SEED = 20_260_404


async def ensure_users(
    collection: Any, count: int, *, reseed: bool, echo: Callable[[str], None]
) -> None:
    """Make ``collection`` hold exactly ``count`` benchmark users, seeding only if it does not."""
    repository = UserMongoRepository(collection)
    if not reseed and await repository.count() == count:
        echo(f"  reusing {collection.name} ({count:,} users)")
        return
    echo(f"  seeding {collection.name} with {count:,} users")
    await seed_users(repository, count, seed=BENCH_SEED)
