"""Fault injection on the real servers: after each fault the target equals the source exactly.

"Exactly" means: every source ``_id`` is in the table or the dead-letter table, once,
with the values the source has — no row lost, none doubled — and no worker left running.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from migrationkit import (
    CountingProgress,
    Endpoints,
    ServerUnavailableError,
    UserMongoRepository,
    WorkerCrashedError,
    migrate,
)
from migrationkit._executors.events import BatchDone
from migrationkit._normalize.rows import ROW_COLUMNS, document_to_row
from migrationkit._observe.observe import NullObserver
from migrationkit._target.checkpoints import CheckpointRepository
from migrationkit._target.table import UserPostgresRepository
from migrationkit._target.tables import count_target
from migrationkit.workshop import seed_users
from tests.integration.transforms import slow_transform

pytestmark = pytest.mark.integration


async def assert_target_equals_source(
    source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    expected = {document_to_row(d) async for batch in source.iter_batches(5_000) for d in batch}
    rows = await target._db.fetch(f"SELECT {', '.join(ROW_COLUMNS)} FROM {target._quoted}")
    assert len(rows) == len(expected), "rows lost or doubled"
    assert {tuple(r) for r in rows} == expected
    counts = await count_target(target._db, target.mapping)
    assert (counts.rejected, counts.in_both) == (0, 0)


class AfterFirstBatch(CountingProgress):
    """A progress report that injects a fault once the first batch is committed."""

    def __init__(self, fault: Any) -> None:
        super().__init__()
        self._fault = fault

    def advance(self, count: int) -> None:
        if self.count == 0:
            self._fault()
        super().advance(count)


class KillAWorkerOnceCheckpointed(NullObserver):
    """Kill a worker process as soon as the first batch (seq 0) is committed."""

    def batch_done(self, *, backend: str, event: BatchDone) -> None:
        if event.seq == 0:
            os.kill(multiprocessing.active_children()[0].pid or 0, signal.SIGKILL)


async def test_a_killed_worker_process_then_resume_gives_the_exact_table(
    make_settings: Any, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 8_000)
    settings = make_settings(backend="multiprocessing", batch_size=250)
    with pytest.raises(WorkerCrashedError, match="SIGKILL"):
        await migrate(settings, observer=KillAWorkerOnceCheckpointed())
    assert multiprocessing.active_children() == []
    assert await target.count() < 8_000

    report = await migrate(settings, resume=True)
    assert report.resumed_after is not None
    assert report.rows_read < 8_000  # it did not start over
    await assert_target_equals_source(source, target)


@pytest.mark.parametrize("backend", ["asyncio", "threading"])
async def test_a_postgres_restart_mid_run_is_retried_and_the_run_completes(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    caplog: pytest.LogCaptureFixture,
    backend: str,
) -> None:
    from migrationkit._servers.embedded import EmbeddedServers

    await seed_users(source, 12_000)
    home = Path(os.environ["MIGRATIONKIT_TEST_HOME"])
    restart = threading.Thread(target=EmbeddedServers(home).restart_postgres)
    settings = make_settings(backend=backend, batch_size=250)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        report = await migrate(
            settings, transform=slow_transform, progress=AfterFirstBatch(restart.start)
        )
    restart.join()
    assert "retrying" in caplog.text  # the fault really landed mid-run
    assert (report.rows_read, report.rows_written) == (12_000, 12_000)
    assert time.monotonic() - started < 120
    await assert_target_equals_source(source, target)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_mid_run_stops_promptly_and_resume_completes_exactly(
    servers: Endpoints,
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    stop_signal: signal.Signals,
) -> None:
    await seed_users(source, 30_000)
    settings = make_settings()
    env = {
        **os.environ,
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_MONGO_COLLECTION": settings.mongo_collection,
        "MIGRATIONKIT_PG_TABLE": settings.pg_table,
        "MIGRATIONKIT_MAPPING": "users",
    }
    command = [sys.executable, "-m", "migrationkit", "migrate", "--quiet"]
    options = ["--backend", "multiprocessing", "--workers", "2", "--batch-size", "250"]
    run = await asyncio.to_thread(
        subprocess.Popen,
        [*command, *options, "--transform", "pseudonymise"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    await wait_until(lambda: checkpoint_saved(target), timeout=60)
    workers = children_of(run.pid)
    assert workers, "the multiprocessing workers should be running"
    run.send_signal(stop_signal)
    started = time.monotonic()
    _, stderr = await asyncio.to_thread(run.communicate, timeout=30)
    assert time.monotonic() - started < 15, "it should stop within seconds"
    assert run.returncode == 128 + stop_signal, stderr
    assert "stopped by" in stderr
    assert "Traceback" not in stderr
    left = await processes_still_alive(workers, grace_s=5)  # exiting takes a moment
    assert not left, f"orphaned processes: {[(pid, state(pid), cmdline(pid)) for pid in left]}"
    assert await target.count() < 30_000

    resumed = await asyncio.to_thread(
        subprocess.run,
        [*command, *options, "--transform", "pseudonymise", "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after _id" in resumed.stdout
    await assert_target_equals_pseudonymised_source(source, target)


async def test_an_unreachable_postgres_at_start_is_one_clear_error(
    make_settings: Any, source: UserMongoRepository
) -> None:
    await seed_users(source, 10)
    started = time.monotonic()
    with pytest.raises(ServerUnavailableError, match="cannot reach PostgreSQL at postgresql://"):
        await migrate(make_settings(pg_dsn="postgresql://u:secret@127.0.0.1:9/db"))
    assert time.monotonic() - started < 15


async def test_a_full_rerun_after_an_interruption_is_exact(
    make_settings: Any, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 4_000)
    settings = make_settings(backend="multiprocessing", batch_size=250)

    def kill_a_worker() -> None:
        os.kill(multiprocessing.active_children()[0].pid or 0, signal.SIGKILL)

    with pytest.raises(WorkerCrashedError):
        await migrate(settings, progress=AfterFirstBatch(kill_a_worker))
    await migrate(settings)  # no --resume: starts over, still exact
    await assert_target_equals_source(source, target)


# -- helpers --------------------------------------------------------------------------


async def assert_target_equals_pseudonymised_source(
    source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    from migrationkit._normalize.transforms import pseudonymise_email

    expected = {pseudonymise_email(d) async for batch in source.iter_batches(5_000) for d in batch}
    rows = await target._db.fetch(f"SELECT {', '.join(ROW_COLUMNS)} FROM {target._quoted}")
    assert len(rows) == len(expected), "rows lost or doubled"
    assert {tuple(r) for r in rows} == expected


async def checkpoint_saved(target: UserPostgresRepository) -> bool:
    try:
        return await CheckpointRepository(target._db).load(target.table) is not None
    except asyncpg.UndefinedTableError:  # the run has not created it yet
        return False


async def wait_until(condition: Any, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def processes_still_alive(pids: list[int], *, grace_s: float) -> list[int]:
    deadline = time.monotonic() + grace_s
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)  # other processes: nothing to await but time


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def alive(pid: int) -> bool:
    """Running, and not a zombie (this container's PID 1 does not reap orphans)."""
    return state(pid) not in ("Z", "X", "gone")
