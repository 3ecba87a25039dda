"""``reset_workshop()``: a learner's machine back to a clean, seeded state in one call.

It starts (or reuses) the servers; drops the users collection and table, every
``*_users`` one the notebooks made along the way and their companions such as
``users_rejected``, and every lesson's own ``nbNN_*`` data (whatever exists at the
time); then seeds the same users as every other learner has: same count, same seed,
same documents.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from migrationkit._observe.progress import Progress
from migrationkit._redact import redact_uri
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.repository import UserMongoRepository
from migrationkit._target.connection import PostgresConnectionHandler
from migrationkit._target.writers import quote_identifier
from migrationkit.workshop.seeding import seed_users

DEFAULT_COUNT = 100_000

T = TypeVar("T")


@dataclass(frozen=True)
class WorkshopReset:
    """What :func:`reset_workshop` did (the endpoints print with passwords hidden)."""

    endpoints: Endpoints
    dropped_collections: list[str]
    dropped_tables: list[str]
    seeded: int
    seed: int
    collection: str


def is_workshop_name(name: str, base: str) -> bool:
    """Whether ``name`` has ``base`` as a whole ``_``-separated word, or is a lesson's.

    With ``base="users"``: ``users`` itself, the notebooks' copies (``bench_users``,
    ``nb2_users``) and what goes with any of them (``users_rejected``); and what a lesson
    made under its own prefix (``nb08_orders__items``, ``nb09_customers``).
    """
    if re.fullmatch(r"nb\d+_\w+", name):
        return True
    return re.fullmatch(rf"(?:\w+_)?{re.escape(base)}(?:_\w+)?", name) is not None


async def drop_workshop_collections(mongo_uri: str, settings: Settings) -> list[str]:
    """Drop the workshop's collections in the configured database; return their names."""
    async with MongoConnectionHandler(mongo_uri, driver=settings.mongo_driver) as client:
        database = client[settings.mongo_database]
        names = sorted(await database.list_collection_names())
        dropped = [name for name in names if is_workshop_name(name, settings.mongo_collection)]
        for name in dropped:
            await UserMongoRepository(database[name]).drop()
    return dropped


async def drop_workshop_tables(pg_dsn: str, settings: Settings) -> list[str]:
    """Drop the workshop's tables in the current schema; return their names."""
    async with PostgresConnectionHandler(pg_dsn, max_size=1) as pool:
        rows = await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        names = [str(row["tablename"]) for row in rows]
        dropped = [name for name in names if is_workshop_name(name, settings.pg_table)]
        for name in dropped:
            await pool.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")
    return dropped


async def reset_workshop_async(
    *,
    count: int = DEFAULT_COUNT,
    seed: int = 0,
    progress: Progress | None = None,
    settings: Settings | None = None,
    echo: Callable[[str], object] = print,
) -> WorkshopReset:
    """:func:`reset_workshop` for code that already runs an event loop: ``await`` it."""
    settings = settings or Settings()
    endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    echo(f"MongoDB:    {redact_uri(endpoints.mongo_uri)}")
    echo(f"PostgreSQL: {redact_uri(endpoints.pg_dsn)}")
    collections, tables = await asyncio.gather(
        drop_workshop_collections(endpoints.mongo_uri, settings),
        drop_workshop_tables(endpoints.pg_dsn, settings),
    )
    echo(f"dropped MongoDB collections: {', '.join(collections) or '(none)'}")
    echo(f"dropped PostgreSQL tables:   {', '.join(tables) or '(none)'}")
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client:
        target = client[settings.mongo_database][settings.mongo_collection]
        seeded = await seed_users(UserMongoRepository(target), count, seed=seed, progress=progress)
    where = f"{settings.mongo_database}.{settings.mongo_collection}"
    echo(f"seeded {seeded:,} users into {where} (seed {seed}): ready for the workshop")
    return WorkshopReset(endpoints, collections, tables, seeded, seed, settings.mongo_collection)


def reset_workshop(
    *,
    count: int = DEFAULT_COUNT,
    seed: int = 0,
    progress: Progress | None = None,
    settings: Settings | None = None,
    echo: Callable[[str], object] = print,
) -> WorkshopReset:
    """Start or reuse the servers, drop the workshop's collections and tables, seed ``count`` users.

    ``settings`` defaults to the ``MIGRATIONKIT_*`` environment. Works from a script and
    from a notebook cell alike (where an event loop already runs). Prints each step
    through ``echo``, passwords hidden.
    """
    return run_blocking(
        reset_workshop_async(
            count=count, seed=seed, progress=progress, settings=settings, echo=echo
        )
    )


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to the end; in a thread of its own if this one runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrationkit-reset") as pool:
        return pool.submit(asyncio.run, coroutine).result()
