"""Two operators, one target: ``migrationkit migrate`` as real processes on real servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
import pytest

from migrationkit import Endpoints, MongoConnectionHandler, UserMongoRepository
from migrationkit._cli.main import EXIT_TARGET_BUSY
from migrationkit._target.run_lock import RunInfo, TargetLock, list_runs
from migrationkit.workshop.seeding import seed_users

pytestmark = pytest.mark.integration

TABLE = "lock_cli_users"
#: Documents in the shared collection: enough that a run holds the lock for seconds.
DOCUMENTS = 30_000
#: Per-row work that keeps a run busy (about 50 HMAC rounds a row).
SLOW = ("--transform", "pseudonymise")

Start = Callable[..., subprocess.Popen[str]]


@pytest.fixture(scope="module")
async def seeded(servers: Endpoints) -> AsyncIterator[None]:
    async with MongoConnectionHandler(servers.mongo_uri) as client:
        users = UserMongoRepository(client["migrationkit"][TABLE])
        await seed_users(users, DOCUMENTS)
        yield
        await users.drop()


@pytest.fixture
def start(servers: Endpoints, seeded: None) -> Start:
    """Start ``python -m migrationkit ARGS`` on the shared collection and table."""
    env = {
        **os.environ,
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_MONGO_COLLECTION": TABLE,
        "MIGRATIONKIT_PG_TABLE": TABLE,
        "MIGRATIONKIT_MAPPING": "users",
        "MIGRATIONKIT_WORKERS": "2",
    }

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "migrationkit", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start


def finish(process: subprocess.Popen[str]) -> tuple[int, str, list[tuple[float, str]]]:
    """(exit status, stdout, stderr lines with the wall-clock time each arrived)."""
    assert process.stderr is not None
    assert process.stdout is not None
    lines = [(time.time(), line.rstrip("\n")) for line in process.stderr]  # line-buffered
    stdout = process.stdout.read()
    return process.wait(timeout=300), stdout, lines


def asked_at(lines: list[tuple[float, str]]) -> float:
    """When the run asked for the lock: the time in that JSON log line."""
    for _, line in lines:
        if line.startswith("{") and "asking for the lock" in line:
            return datetime.fromisoformat(json.loads(line)["time"]).timestamp()
    raise AssertionError(f"no 'asking for the lock' line in {lines}")


def error_line(lines: list[tuple[float, str]]) -> tuple[float, str]:
    """The one ``migrationkit: error`` line, and when it arrived."""
    (error,) = [(at, line) for at, line in lines if line.startswith("migrationkit: error")]
    return error


async def test_of_two_runs_started_together_one_migrates_and_the_other_stops_at_once(
    start: Start,
) -> None:
    args = ("-v", "--log-format", "json", "migrate", "--json", "--quiet", *SLOW)
    first, second = start(*args), start(*args)
    results = await asyncio.gather(
        asyncio.to_thread(finish, first), asyncio.to_thread(finish, second)
    )
    outcome = dict(zip((first.pid, second.pid), results, strict=True))
    (winner_pid,) = [pid for pid, result in outcome.items() if result[0] == 0]
    (loser_pid,) = [pid for pid, result in outcome.items() if result[0] == EXIT_TARGET_BUSY]
    _, report_text, winner_lines = outcome[winner_pid]
    _, _, loser_lines = outcome[loser_pid]

    report = json.loads(report_text.strip().splitlines()[-1])
    assert report["rows_read"] == report["rows_written"] == DOCUMENTS
    refused_at, error = error_line(loser_lines)
    assert error.startswith(f"migrationkit: error: table {TABLE} is being migrated by another run")
    assert f"run {report['run_id']} on host {socket.gethostname()}, pid {winner_pid}" in error
    assert "started 20" in error
    assert "migrationkit -v --log-format json migrate --json --quiet --transform" in error
    assert refused_at - asked_at(loser_lines) < 1.0
    assert refused_at < winner_lines[-1][0]  # while the winner was still at work


async def test_a_run_refused_by_a_held_target_exits_3_with_one_line_and_touches_nothing(
    start: Start, servers: Endpoints
) -> None:
    holder = RunInfo(
        run_id="ops-run",
        host="ops-host",
        pid=4242,
        started_at=datetime(2025, 6, 1, 10, 0, 3, tzinfo=UTC),
        command="migrationkit migrate --resume",
    )
    async with TargetLock.acquire(servers.pg_dsn, tables=[TABLE], run_info=holder):
        status, stdout, lines = await asyncio.to_thread(finish, start("migrate", "--quiet"))
    assert status == EXIT_TARGET_BUSY == 3
    assert stdout == ""
    assert [line for _, line in lines] == [
        (
            f"migrationkit: error: table {TABLE} is being migrated by another run "
            "(run ops-run on host ops-host, pid 4242, started 2025-06-01 10:00:03 UTC: "
            "migrationkit migrate --resume); wait for it to finish, or stop it"
        )
    ]


async def test_a_run_killed_while_holding_the_target_does_not_block_the_next(
    start: Start, servers: Endpoints
) -> None:
    killed = start("-v", "migrate", "--quiet", *SLOW)
    assert killed.stderr is not None
    while "holding the lock on table" not in (
        line := await asyncio.to_thread(killed.stderr.readline)
    ):
        assert line, "the run ended before it held the lock"
    observer = await asyncpg.connect(servers.pg_dsn)
    try:
        assert [run.run.pid for run in await list_runs(observer)] == [killed.pid]
        killed.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(killed.wait) == -signal.SIGKILL

        status, stdout, lines = await asyncio.to_thread(finish, start("migrate", "--json"))
        assert status == 0, lines
        assert json.loads(stdout.strip().splitlines()[-1])["rows_written"] == DOCUMENTS
        assert await list_runs(observer) == []
    finally:
        await observer.close()
        killed.communicate()


async def test_servers_status_lists_the_runs_in_progress(servers: Endpoints) -> None:
    """``migrationkit servers status`` ends with the runs holding a lock there."""
    home = os.environ["MIGRATIONKIT_TEST_HOME"]  # the test servers' home (tests/conftest.py)

    def status() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "migrationkit", "servers", "status"],
            env=os.environ | {"MIGRATIONKIT_HOME": home},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    assert "runs        in progress: none" in status()
    holder = RunInfo(
        run_id="status-run", host="ops-host", pid=4242,
        started_at=datetime(2025, 6, 1, 10, 0, 3, tzinfo=UTC),
        command="migrationkit migrate --backend asyncio",
    )  # fmt: skip
    async with TargetLock.acquire(servers.pg_dsn, tables=["lock_status"], run_info=holder):
        listed = await asyncio.to_thread(status)
    assert "runs        in progress: lock_status: run status-run on host ops-host" in listed
