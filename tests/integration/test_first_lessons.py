"""Lessons 00 (setup) and 01 (seeding), on the real servers: what their helpers time and read."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from faker import Faker
from pymongo import AsyncMongoClient

from migrationkit import Endpoints, Settings
from migrationkit._servers.embedded import EmbeddedServers
from migrationkit.workshop import UserFactory
from migrationkit.workshop import lessons as L
from migrationkit.workshop.lessons import seeding_lesson as S
from migrationkit.workshop.lessons import setup_lesson as T

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(make_settings: Callable[..., Settings], servers: Endpoints) -> L.Lab:
    return L.Lab(make_settings(), servers)


def lessons_insert(lab: L.Lab) -> S.InsertCode:
    """Lesson 01's own seeding loop, on the lab's collection."""
    database, collection_name = lab.settings.mongo_database, lab.settings.mongo_collection

    async def insert_in_batches(
        mongo_uri: str, users: Iterable[dict[str, Any]], *, batch_size: int
    ) -> int:
        inserted = 0
        async with AsyncMongoClient(mongo_uri) as client:
            collection = client[database][collection_name]
            remaining = iter(users)
            while batch := list(itertools.islice(remaining, batch_size)):
                result = await collection.insert_many(batch, ordered=False)
                inserted += len(result.inserted_ids)
        return inserted

    return insert_in_batches


def lessons_faker_user(fake: Faker, number: int) -> dict[str, Any]:
    name = f"{fake.first_name()}.{fake.last_name()}".lower()
    return {"username": f"{name}{number}", "age": fake.random_int(18, 90)}


async def test_opening_a_connection_costs_more_than_a_round_trip_on_both_servers(
    servers: Endpoints,
) -> None:
    costs = T.by_server(await T.connection_costs(servers, repeats=3))
    assert [c.server for c in costs] == ["MongoDB", "PostgreSQL"]
    for server in costs:
        assert len(server.opening.runs) == len(server.trip.runs) == 3
        assert server.opening.seconds > server.trip.seconds > 0


async def test_the_doctor_finds_nothing_wrong_with_the_test_servers(
    make_settings: Callable[..., Settings],
) -> None:
    diagnosis = await T.doctor(make_settings())
    problems = [check for check in diagnosis.problems if check.name != "[embedded]"]
    assert problems == []
    assert any(check.section == "Servers" for check in diagnosis.checks)


async def test_seeding_runs_time_every_batch_size_and_seed_users(lab: L.Lab) -> None:
    spreads = await S.seeding_runs(
        lessons_insert(lab), lab, rows=600, batch_sizes=[1, 100], repeats=2
    )
    assert [s.label for s in spreads] == ["batch 1", "batch 100", S.PACKAGE]
    assert [s.params["users"] for s in spreads] == [S.users_for(1, 600), 600, 600]
    assert all(run.rows == s.params["users"] for s in spreads for run in s.runs)
    assert all(len(s.runs) == 2 for s in spreads)
    assert lab.seeded is None  # the collection no longer holds what the lab seeded
    async with lab.collection() as users:
        assert await users.count() == 600  # the last run: seed_users
    first = (await L.first_batch(lab, 1))[0]
    assert S.same_users([first], UserFactory(seed=0).users(1))


async def test_a_user_server_s_cpu_is_not_read(lab: L.Lab) -> None:
    assert S.server_pid(lab) is None  # the lab's settings name a server of their own


def test_the_embedded_server_s_pid_and_cpu_are_read(
    make_settings: Callable[..., Settings], servers: Endpoints
) -> None:
    embedded = L.Lab(make_settings(mongo_uri=None), servers)
    pid = S.server_pid(
        embedded, servers=EmbeddedServers(Path(os.environ["MIGRATIONKIT_TEST_HOME"]))
    )
    assert pid is not None
    cpu = S.process_cpu_s(pid)
    assert cpu is not None
    assert cpu > 0


async def test_generation_runs_make_the_users_both_ways() -> None:
    making = await S.generation_runs(lessons_faker_user, rows=300, repeats=2)
    assert [s.label for s in making] == ["Faker, one call per field", "UserFactory (pooled names)"]
    assert all(run.rows == 300 for s in making for run in s.runs)


async def test_finding_the_servers_reports_readable_addresses_without_the_password(
    make_settings: Callable[..., Settings], servers: Endpoints
) -> None:
    endpoints, check = await L.find_servers(make_settings())
    assert endpoints == servers
    password = urlsplit(servers.pg_dsn).password
    assert password
    assert password not in check.detail
    assert check.detail.startswith("MongoDB: mongodb://")
    assert "; PostgreSQL: postgresql://" in check.detail
    assert "Endpoints(" not in check.detail
