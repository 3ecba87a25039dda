"""Shared fixtures: one pair of real embedded servers for the whole test session."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from migrationkit import (
    DeadLetterRepository,
    Endpoints,
    MongoConnectionHandler,
    PostgresConnectionHandler,
    Settings,
    UserMongoRepository,
)
from migrationkit._mapping.spec import users_mapping
from migrationkit._target.table import UserPostgresRepository
from migrationkit._target.tables import drop_target

_names = itertools.count()


@pytest.fixture(scope="session")
def servers() -> Iterator[Endpoints]:
    """Embedded MongoDB-wire and PostgreSQL servers in a throwaway home, stopped at the end."""
    from migrationkit._servers.embedded import EmbeddedServers

    home = Path(tempfile.mkdtemp(prefix="mk-test-", dir="/tmp"))
    embedded = EmbeddedServers(home)
    os.environ["MIGRATIONKIT_TEST_HOME"] = str(home)  # for tests that restart a server
    try:
        yield embedded.start()
    finally:
        embedded.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def make_settings(servers: Endpoints) -> Callable[..., Settings]:
    """Settings on the test servers, with a collection and table no other test uses."""
    number = next(_names)

    def make(**overrides: Any) -> Settings:
        options: dict[str, Any] = {
            "mongo_uri": servers.mongo_uri,
            "pg_dsn": servers.pg_dsn,
            "mongo_collection": f"users_{number}",
            "pg_table": f"users_{number}",
            "workers": 2,
            "batch_size": 500,
            "mapping": "users",  # the tests' collections are users under other names
        }
        return Settings(**(options | overrides))

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def source(settings: Settings) -> AsyncIterator[UserMongoRepository]:
    """The test's MongoDB collection, empty at the start and dropped at the end."""
    assert settings.mongo_uri is not None
    async with MongoConnectionHandler(settings.mongo_uri.get_secret_value()) as client:
        repository = UserMongoRepository(client[settings.mongo_database][settings.mongo_collection])
        await repository.drop()
        yield repository
        await repository.drop()


@pytest.fixture
async def target(settings: Settings) -> AsyncIterator[UserPostgresRepository]:
    """The test's PostgreSQL table (dropped at the end)."""
    assert settings.pg_dsn is not None
    async with PostgresConnectionHandler(settings.pg_dsn.get_secret_value()) as pool:
        repository = UserPostgresRepository(pool, table=settings.pg_table)
        yield repository
        await drop_target(pool, users_mapping(settings.pg_table))


@pytest.fixture
async def dead_letters(settings: Settings) -> AsyncIterator[DeadLetterRepository]:
    """The test table's dead-letter table (the ``target`` fixture drops it)."""
    assert settings.pg_dsn is not None
    async with PostgresConnectionHandler(settings.pg_dsn.get_secret_value()) as pool:
        yield DeadLetterRepository(pool, table=settings.pg_table)
