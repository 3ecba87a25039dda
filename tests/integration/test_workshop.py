"""``reset_workshop``: back to a clean, seeded state on the real servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from migrationkit import (
    CountingProgress,
    MongoConnectionHandler,
    PostgresConnectionHandler,
    Settings,
)
from migrationkit.workshop import UserFactory
from migrationkit.workshop.reset import reset_workshop, reset_workshop_async

pytestmark = pytest.mark.integration

#: The test's own "users": its names cannot clash with other tests' collections and tables.
BASE = "wsreset"
LEFTOVERS = [BASE, f"nb2_{BASE}", f"{BASE}_rejected"]
KEPT = "wsreset2_keep"


@pytest.fixture
def workshop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(mongo_collection=BASE, pg_table=BASE)


async def collection_names(settings: Settings) -> set[str]:
    assert settings.mongo_uri is not None
    async with MongoConnectionHandler(settings.mongo_uri.get_secret_value()) as client:
        return set(await client[settings.mongo_database].list_collection_names())


async def table_names(settings: Settings) -> set[str]:
    assert settings.pg_dsn is not None
    async with PostgresConnectionHandler(settings.pg_dsn.get_secret_value()) as pool:
        rows = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}


async def leave_a_mess(settings: Settings) -> None:
    """What a learner's notebooks leave behind: copies of users, and an unrelated table."""
    assert settings.mongo_uri is not None
    assert settings.pg_dsn is not None
    async with MongoConnectionHandler(settings.mongo_uri.get_secret_value()) as client:
        for name in [*LEFTOVERS, KEPT]:
            await client[settings.mongo_database][name].insert_one({"left": "over"})
    async with PostgresConnectionHandler(settings.pg_dsn.get_secret_value()) as pool:
        for name in [*LEFTOVERS, KEPT]:
            await pool.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (x int)')


async def first_users(settings: Settings, count: int) -> list[dict[str, Any]]:
    assert settings.mongo_uri is not None
    async with MongoConnectionHandler(settings.mongo_uri.get_secret_value()) as client:
        cursor = client[settings.mongo_database][settings.mongo_collection].find(
            {}, {"_id": 0}, sort=[("_id", 1)], limit=count
        )
        return [document async for document in cursor]


async def test_reset_drops_the_workshop_collections_and_tables_and_seeds_the_users(
    workshop_settings: Settings,
) -> None:
    await leave_a_mess(workshop_settings)
    lines: list[str] = []
    progress = CountingProgress()

    # Called as a notebook cell calls it: an event loop already runs in this thread.
    done = reset_workshop(
        count=1_500, seed=3, progress=progress, settings=workshop_settings, echo=lines.append
    )

    assert done.seeded == progress.count == 1_500
    assert sorted(done.dropped_collections) == sorted(LEFTOVERS)
    assert sorted(done.dropped_tables) == sorted(LEFTOVERS)
    collections = await collection_names(workshop_settings)
    assert {BASE, KEPT} <= collections
    assert not collections & set(LEFTOVERS[1:])
    tables = await table_names(workshop_settings)
    assert KEPT in tables
    assert not tables & set(LEFTOVERS)
    assert await first_users(workshop_settings, 3) == list(UserFactory(3).users(3))
    assert lines[-1].startswith("seeded 1,500 users")
    assert any(f"nb2_{BASE}" in line for line in lines)


async def test_reset_gives_the_same_users_every_time_and_never_prints_the_password(
    workshop_settings: Settings,
) -> None:
    lines: list[str] = []
    await reset_workshop_async(count=200, seed=7, settings=workshop_settings, echo=lines.append)
    before = await first_users(workshop_settings, 200)
    await reset_workshop_async(count=200, seed=7, settings=workshop_settings, echo=lines.append)
    assert await first_users(workshop_settings, 200) == before
    assert workshop_settings.pg_dsn is not None
    password = workshop_settings.pg_dsn.get_secret_value().split("@")[0].rsplit(":", 1)[1]
    assert password not in "\n".join(lines)
    assert "***@" in "\n".join(lines)


def test_reset_also_runs_from_plain_synchronous_code(workshop_settings: Settings) -> None:
    done = reset_workshop(count=10, settings=workshop_settings, echo=lambda line: None)
    assert done.seeded == 10
