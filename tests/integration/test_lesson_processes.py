"""Lesson 04's mechanism on the real servers: spawned children copying, and what they cost."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import time
from collections.abc import Callable

import asyncpg
import pytest

from migrationkit import Endpoints, Settings
from migrationkit.workshop import lessons as L
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons import processes as P
from migrationkit.workshop.lessons.migration_runs import choice_migrations
from migrationkit.workshop.lessons.simulation import user_documents

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(make_settings: Callable[..., Settings], servers: Endpoints) -> L.Lab:
    return L.Lab(make_settings(), servers)


async def raw_batches(lab: L.Lab, batch_size: int) -> list[list[bytes]]:
    async with lab.collection() as users:
        return [list(batch) async for batch in users.iter_batches(batch_size, raw=True)]


async def test_spawned_children_copy_every_user_and_report_their_rows(lab: L.Lab) -> None:
    await lab.seed(600)
    table = f"{lab.settings.pg_table}_processes"
    await O.empty_users_table(lab.endpoints.pg_dsn, table)
    inbox, outbox = P.SPAWN.Queue(maxsize=4), P.SPAWN.Queue()
    children = [
        P.SPAWN.Process(target=P.write_batches, args=(inbox, outbox, lab.endpoints.pg_dsn, table))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    for batch in await raw_batches(lab, 100):
        await asyncio.to_thread(inbox.put, batch)
    for _ in children:
        await asyncio.to_thread(inbox.put, None)
    written = [await asyncio.to_thread(outbox.get, True, 60) for _ in children]
    for child in children:
        await asyncio.to_thread(child.join)
    assert sum(written) == 600
    assert len(written) == 2  # each child reported (how many batches each took is up to timing)
    assert await O.count_rows(lab.endpoints.pg_dsn, table) == 600
    assert [child.exitcode for child in children] == [0, 0]


async def test_a_child_that_fails_reports_why_and_still_empties_its_inbox(lab: L.Lab) -> None:
    await lab.seed(300)
    inbox: queue.Queue[list[bytes] | None] = queue.Queue()
    outbox: queue.Queue[int | str] = queue.Queue()
    for batch in await raw_batches(lab, 100):
        inbox.put(batch)
    inbox.put(None)
    await asyncio.to_thread(P.write_batches, inbox, outbox, lab.endpoints.pg_dsn, "no_such_table")
    error = outbox.get_nowait()
    assert isinstance(error, str)
    assert "no_such_table" in error
    assert inbox.empty()


def test_a_started_process_sends_its_own_pid() -> None:
    pid = P.start_a_process()
    assert pid != os.getpid()


async def test_the_price_of_a_batch_times_each_step_in_milliseconds(lab: L.Lab) -> None:
    await lab.seed(100)
    price = await P.price_of_a_batch(lab, batch_size=50, repeats=2)
    assert [(s.params["what"], len(s.runs)) for s in price] == [
        ("start", 2),
        ("start", 2),
        ("pickle", 2),
        ("pickle", 2),
        ("transform", 2),
        ("transform", 2),
    ]
    assert price[1].params["method"] in ("forkserver", "spawn")  # the kit's own way
    decoded, raw = price[2], price[3]
    assert 0 < raw.params["bytes"] < decoded.params["bytes"]
    assert "Starting one process" in P.price_note(price, batch_size=50)


async def test_cpu_runs_count_the_cpu_their_worker_processes_used() -> None:
    users = user_documents(40)
    started = time.process_time()
    P.transform_batch(users, L.LESSON_TRANSFORMS[P.HEAVY])
    work_s = time.process_time() - started
    (processes,) = await P.cpu_runs(["multiprocessing"], [1], rows=40, batch_size=10, repeats=1)
    (run,) = processes.runs
    assert run.rows == 40
    assert run.extra["start_s"] > 0
    assert run.extra["cpu_share"] * run.seconds > 0.5 * work_s


async def test_cpu_runs_give_one_spread_per_backend_and_count() -> None:
    spreads = await P.cpu_runs(
        ["asyncio", "threading"], [1, 2], rows=40, transform="validate", batch_size=10, repeats=2
    )
    assert [(s.label, len(s.runs)) for s in spreads] == [
        ("asyncio x1", 2),
        ("asyncio x2", 2),
        ("threading x1", 2),
        ("threading x2", 2),
    ]
    assert all(run.rows == 40 for s in spreads for run in s.runs)


async def test_choice_migrations_run_the_transform_in_process_workers(lab: L.Lab) -> None:
    await lab.seed(400)
    choices = {
        "asyncio x1": L.Choice(workers=1, batch_size=100),
        "processes x2": L.Choice(
            backend="multiprocessing", workers=2, batch_size=100, transform="pseudonymise"
        ),
    }
    spreads = await choice_migrations(lab, choices, repeats=1)
    assert [(s.label, s.params["backend"]) for s in spreads] == [
        ("asyncio x1", "asyncio"),
        ("processes x2", "multiprocessing"),
    ]
    for run in (run for s in spreads for run in s.runs):
        assert run.report is not None
        assert run.rows == run.report.rows_written == 400
        assert run.seconds == run.report.elapsed_s
        assert 0 < run.extra["busy_share"] <= 1.0
        assert P.first_wait_s(spreads[1]) > 0
    emails = await _emails(lab)
    assert all(re.fullmatch("[0-9a-f]{16}", email.partition("@")[0]) for email in emails)


async def _emails(lab: L.Lab) -> list[str]:
    connection = await asyncpg.connect(lab.endpoints.pg_dsn)
    try:
        rows = await connection.fetch(f"SELECT email FROM {lab.settings.pg_table} LIMIT 20")
    finally:
        await connection.close()
    return [row["email"] for row in rows]
