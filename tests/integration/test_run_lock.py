"""One run per target: the advisory lock on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from migrationkit import Endpoints, Settings, UserMongoRepository, UserPostgresRepository
from migrationkit._errors import TargetBusyError
from migrationkit._run.migration import migrate
from migrationkit._target.run_lock import (
    LOCK_KEEPALIVES,
    RUNS_TABLE,
    RunInfo,
    TargetLock,
    list_runs,
    lock_key,
)
from migrationkit.workshop.seeding import seed_users
from tests.integration.test_ranged import migrate_ranges

pytestmark = pytest.mark.integration


def holder(run_id: str = "holder-run") -> RunInfo:
    return RunInfo(
        run_id=run_id,
        host="ops-host",
        pid=4242,
        started_at=datetime(2025, 6, 1, 10, 0, 3, tzinfo=UTC),
        command="migrationkit migrate --backend asyncio",
    )


@pytest.fixture
async def observer(servers: Endpoints) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection for looking at locks and runs from outside."""
    connection = await asyncpg.connect(servers.pg_dsn)
    yield connection
    await connection.close()


async def test_a_second_run_on_a_held_table_is_refused_at_once_naming_the_holder(
    servers: Endpoints,
) -> None:
    async with TargetLock.acquire(servers.pg_dsn, tables=["lock_a"], run_info=holder()):
        started = time.perf_counter()
        with pytest.raises(TargetBusyError) as refused:
            async with TargetLock.acquire(servers.pg_dsn, tables=["lock_a"]):
                pytest.fail("two runs held one table")
        assert time.perf_counter() - started < 1.0
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("table lock_a is being migrated by another run (")
    assert "run holder-run on host ops-host, pid 4242, started 2025-06-01 10:00:03 UTC" in message
    assert "migrationkit migrate --backend asyncio" in message
    assert refused.value.holder == holder()


async def test_runs_on_different_tables_do_not_wait_for_each_other(servers: Endpoints) -> None:
    async with (
        TargetLock.acquire(servers.pg_dsn, tables=["lock_b1"]),
        TargetLock.acquire(servers.pg_dsn, tables=["lock_b2"]),
    ):
        pass


async def test_a_refused_run_on_several_tables_keeps_none_of_them(servers: Endpoints) -> None:
    async with TargetLock.acquire(servers.pg_dsn, tables=["lock_c2"]):
        with pytest.raises(TargetBusyError, match="table lock_c2"):
            async with TargetLock.acquire(servers.pg_dsn, tables=["lock_c1", "lock_c2"]):
                pass
        async with TargetLock.acquire(servers.pg_dsn, tables=["lock_c1"]):
            pass  # the refused run did not keep lock_c1


async def test_the_lock_and_its_record_go_when_the_run_ends(
    servers: Endpoints, observer: asyncpg.Connection
) -> None:
    async with TargetLock.acquire(servers.pg_dsn, tables=["lock_d"], run_info=holder("run-d")):
        assert [run.run.run_id for run in await list_runs(observer)] == ["run-d"]
    assert await list_runs(observer) == []
    assert await observer.fetchval(f"SELECT count(*) FROM {RUNS_TABLE}") == 0
    async with TargetLock.acquire(servers.pg_dsn, tables=["lock_d"]):
        pass


async def test_runs_in_progress_are_listed_with_their_tables(
    servers: Endpoints, observer: asyncpg.Connection
) -> None:
    async with TargetLock.acquire(servers.pg_dsn, tables=["lock_e1", "lock_e2"], run_info=holder()):
        (run,) = await list_runs(observer)
    assert run.tables == ("lock_e1", "lock_e2")
    assert run.run == holder()
    assert run.describe().startswith("lock_e1, lock_e2: run holder-run on host ops-host")


async def test_a_dead_sessions_record_is_not_a_run_in_progress_and_does_not_block(
    servers: Endpoints, observer: asyncpg.Connection
) -> None:
    records = f"SELECT count(*) FROM {RUNS_TABLE} WHERE run_id = 'run-f'"
    connection = await asyncpg.connect(servers.pg_dsn)  # ours: the lock does not reconnect it
    async with TargetLock.acquire(connection, tables=["lock_f"], run_info=holder("run-f")):
        # The session ends as a killed process's would: no goodbye, the record stays.
        await observer.execute("SELECT pg_terminate_backend($1, 5000)", connection.get_server_pid())
        assert await observer.fetchval(records) == 1
        assert await list_runs(observer) == []  # pg_locks: nobody holds the lock
        async with TargetLock.acquire(servers.pg_dsn, tables=["lock_f"]):
            assert await observer.fetchval(records) == 0  # the next run deleted it


async def test_the_locks_session_has_postgresql_probe_a_vanished_client_within_seconds(
    servers: Endpoints,
) -> None:
    # A machine that vanishes sends no FIN: only TCP keepalives tell PostgreSQL to end the
    # session, and so to free the lock, instead of after the system's two hours.
    async with TargetLock.acquire(servers.pg_dsn, tables=["lock_k"], run_info=holder()) as lock:
        session = lock._connection
        assert session is not None
        shown = {name: await session.fetchval(f"SHOW {name}") for name in LOCK_KEEPALIVES}
    assert shown == {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
                     "tcp_keepalives_count": "3"}  # fmt: skip


async def test_a_run_whose_connection_drops_takes_its_lock_again(
    servers: Endpoints, observer: asyncpg.Connection
) -> None:
    async with TargetLock.acquire(servers.pg_dsn, tables=["lock_g"], run_info=holder()) as lock:
        first = lock.backend_pid
        await observer.execute("SELECT pg_terminate_backend($1, 5000)", first)
        await asyncio.wait_for(lock.until_taken(2), 10)
        assert lock.backend_pid not in (None, first)
        (run,) = await list_runs(observer)
        assert run.run == holder()
        with pytest.raises(TargetBusyError):
            async with TargetLock.acquire(servers.pg_dsn, tables=["lock_g"]):
                pass


async def test_a_run_that_loses_its_lock_to_another_is_stopped(
    servers: Endpoints, observer: asyncpg.Connection
) -> None:
    key = lock_key("public", "lock_h")

    async def run_that_loses_its_lock() -> None:
        async with TargetLock.acquire(servers.pg_dsn, tables=["lock_h"]) as lock:
            await observer.execute("SELECT pg_terminate_backend($1)", lock.backend_pid)
            await observer.execute("SELECT pg_advisory_lock($1)", key)  # granted as it dies
            await asyncio.Event().wait()  # the run's work: stopped by the lock, not by us

    with pytest.raises(TargetBusyError, match="lost the lock while its connection was down"):
        await run_that_loses_its_lock()
    await observer.execute("SELECT pg_advisory_unlock($1)", key)


async def test_migrate_refuses_a_held_target_before_touching_it(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 300)
    await migrate(settings)
    assert settings.pg_dsn is not None
    dsn = settings.pg_dsn.get_secret_value()
    async with TargetLock.acquire(dsn, tables=[settings.pg_table], run_info=holder()):
        with pytest.raises(TargetBusyError, match="run holder-run on host ops-host"):
            await migrate(settings)  # a fresh run would empty the table first
        with pytest.raises(TargetBusyError):
            await migrate(settings, resume=True)
        with pytest.raises(TargetBusyError):
            await migrate_ranges(settings, executor="multiprocessing")
    assert await target.count() == 300


async def test_migrate_releases_the_target_when_it_ends(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 200)
    await migrate(settings)
    await migrate(settings)  # no lock left behind by the first
    assert settings.pg_dsn is not None
    connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        assert await list_runs(connection) == []
    finally:
        await connection.close()
    assert await target.count() == 200
