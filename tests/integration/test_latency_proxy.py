"""The drivers through ``LatencyProxy`` on the real servers, and the waits it lets overlap."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import asyncpg
import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import MongoClient

from migrationkit import Endpoints, Settings, UserMongoRepository, migrate
from migrationkit.workshop import seed_users
from migrationkit.workshop.latency_proxy import ProxiedEndpoints, proxied_uri

pytestmark = pytest.mark.integration

#: One way; a ``SELECT 1`` then costs at least 10 ms.
DELAY_S = 0.005
WORKERS, ROUND_TRIPS = 4, 20


@pytest.fixture
def proxied(servers: Endpoints) -> Iterator[ProxiedEndpoints]:
    with ProxiedEndpoints(servers, pg_delay_s=DELAY_S, mongo_delay_s=0.001) as proxies:
        yield proxies


async def select_one(connection: asyncpg.Connection, times: int) -> None:
    for _ in range(times):
        assert await connection.fetchval("SELECT 1") == 1


async def test_asyncpg_queries_go_through_the_proxy(proxied: ProxiedEndpoints) -> None:
    connection = await asyncpg.connect(proxied.endpoints.pg_dsn)
    try:
        before = proxied.postgres.stats.bytes_from_target
        await select_one(connection, 1)
    finally:
        await connection.close()
    assert proxied.postgres.stats.bytes_from_target > before


def test_pymongo_reaches_the_server_through_the_proxy(proxied: ProxiedEndpoints) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(proxied.endpoints.mongo_uri)
    try:
        assert client.admin.command("ping")["ok"] == 1
        assert client.address == proxied.mongo.address
    finally:
        client.close()


async def test_motor_reaches_the_server_through_the_proxy(proxied: ProxiedEndpoints) -> None:
    client: AsyncIOMotorClient = AsyncIOMotorClient(proxied.endpoints.mongo_uri)
    try:
        assert (await client.admin.command("ping"))["ok"] == 1
        assert client.address == proxied.mongo.address
    finally:
        client.close()


def test_a_mongo_driver_stays_on_the_proxy_though_the_server_names_another_address(
    servers: Endpoints, proxied: ProxiedEndpoints
) -> None:
    # SecantusDB's `hello` lists its own address as the replica set's only host; a
    # driver left to discover the set would leave the proxy for it.
    discovering = servers.mongo_uri.replace("directConnection=true", "directConnection=false")
    client: MongoClient[dict[str, object]] = MongoClient(proxied_uri(discovering, proxied.mongo))
    try:
        client.admin.command("ping")
        assert client.address == proxied.mongo.address
    finally:
        client.close()


async def test_a_migration_with_process_workers_goes_through_both_proxies(
    make_settings: Callable[..., Settings], source: UserMongoRepository, proxied: ProxiedEndpoints
) -> None:
    await seed_users(source, 1_200)
    settings = make_settings(backend="multiprocessing", workers=2)
    report = await migrate(settings, endpoints=proxied.endpoints)
    assert (report.rows_read, report.rows_written) == (1_200, 1_200)
    assert proxied.postgres is not None
    assert proxied.postgres.stats.connections >= 3  # the run's own, and one per worker
    assert proxied.mongo is not None
    assert proxied.mongo.stats.bytes_from_target > 0


async def test_four_asyncio_tasks_overlap_their_round_trips(proxied: ProxiedEndpoints) -> None:
    dsn = proxied.endpoints.pg_dsn
    connections = [await asyncpg.connect(dsn) for _ in range(WORKERS)]
    try:
        started = time.perf_counter()
        await select_one(connections[0], WORKERS * ROUND_TRIPS)
        alone = time.perf_counter() - started
        started = time.perf_counter()
        await asyncio.gather(*(select_one(c, ROUND_TRIPS) for c in connections))
        together = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    assert alone >= WORKERS * ROUND_TRIPS * 2 * DELAY_S
    assert alone / together >= 2.5


def test_four_threads_with_their_own_loops_overlap_their_round_trips(
    proxied: ProxiedEndpoints,
) -> None:
    alone = timed_threads(proxied.endpoints.pg_dsn, threads=1, each=WORKERS * ROUND_TRIPS)
    together = timed_threads(proxied.endpoints.pg_dsn, threads=WORKERS, each=ROUND_TRIPS)
    assert alone >= WORKERS * ROUND_TRIPS * 2 * DELAY_S
    assert alone / together >= 2.5


def timed_threads(dsn: str, *, threads: int, each: int) -> float:
    """Seconds from the first thread's first query to the last thread's last one."""
    connected = threading.Barrier(threads)
    spans: list[tuple[float, float]] = []

    async def work() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            connected.wait()  # every thread is connected: the timing starts together
            started = time.perf_counter()
            await select_one(connection, each)
            spans.append((started, time.perf_counter()))
        finally:
            await connection.close()

    workers = [threading.Thread(target=asyncio.run, args=(work(),)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(spans) == threads, "a thread failed (see its traceback above)"
    return max(end for _, end in spans) - min(start for start, _ in spans)
