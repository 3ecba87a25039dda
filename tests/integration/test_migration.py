"""Migrations on the real embedded servers: every backend and writer, exactly."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import Int64, ObjectId

from migrationkit import (
    CountingProgress,
    DeadLetterRepository,
    MigrationReport,
    ServerUnavailableError,
    Settings,
    UserMongoRepository,
    WorkerCrashedError,
    WorkerError,
    migrate,
)
from migrationkit._normalize.rows import ROW_COLUMNS, document_to_row, mongo_key
from migrationkit._target.table import UserPostgresRepository
from migrationkit.workshop import seed_users
from tests.integration.transforms import (
    POISON_AGE,
    broken_transform,
    overflowing_age_for_the_old,
)

pytestmark = pytest.mark.integration

BACKENDS = ["asyncio", "threading", "multiprocessing"]
WRITERS = ["copy", "executemany", "insert"]


async def table_rows(target: UserPostgresRepository) -> set[tuple[Any, ...]]:
    records = await target._db.fetch(f"SELECT {', '.join(ROW_COLUMNS)} FROM {target._quoted}")
    return {tuple(record) for record in records}


async def expected_rows(source: UserMongoRepository) -> set[tuple[Any, ...]]:
    return {document_to_row(doc) async for batch in source.iter_batches(1000) for doc in batch}


def assert_exact(report: MigrationReport, count: int) -> None:
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (count, count, 0)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_backend_and_writer_moves_every_user_exactly(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    backend: str,
    writer: str,
) -> None:
    await seed_users(source, 2_100, seed=7)  # not a multiple of the batch size
    report = await migrate(make_settings(backend=backend, writer=writer))
    assert_exact(report, 2_100)
    assert await table_rows(target) == await expected_rows(source)
    assert sum(worker.rows_written for worker in report.per_worker) == 2_100
    assert all(worker.batches > 0 for worker in report.per_worker)


async def test_rerunning_a_migration_gives_the_same_table(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 1_000)
    await migrate(settings)
    first = await table_rows(target)
    assert_exact(await migrate(settings), 1_000)
    assert await table_rows(target) == first


async def test_distinct_ids_of_any_type_stay_distinct_keys(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    oid = ObjectId()
    ids: list[Any] = [
        oid,
        str(oid),
        1,
        "1",
        Int64(2),
        2.5,
        {"a": 1},
        datetime(2020, 1, 1, tzinfo=UTC),
    ]
    user = {"username": "u", "email": "u@example.org", "age": 30}
    await source.insert_many([{"_id": value, **user} for value in ids])
    report = await migrate(settings)
    assert_exact(report, len(ids))
    keys = {row[0] for row in await table_rows(target)}
    assert keys == {mongo_key(value) for value in ids}
    assert len(keys) == len(ids)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_bad_documents_are_rejected_with_reasons_and_the_rest_lands(
    make_settings: Any, source: UserMongoRepository, target: UserPostgresRepository, backend: str
) -> None:
    await seed_users(source, 600)
    bad = [
        {"_id": "nul", "username": "a\x00b", "email": "a@b.org", "age": 3},
        {"_id": "old", "username": "old", "email": "old@b.org", "age": 200},
        {"_id": "no-email", "username": "x", "age": 3},
        {"_id": "text-age", "username": "y", "email": "y@b.org", "age": "42"},
    ]
    await source.insert_many(bad)
    report = await migrate(make_settings(backend=backend, batch_size=250))
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (604, 600, 4)
    assert await target.count() == 600
    reasons = dict(report.rejected_samples)
    assert "NUL" in reasons['"nul"']
    assert "age" in reasons['"old"']
    assert "150" in reasons['"old"']
    assert "email: Field required" in reasons['"no-email"']
    assert "age" in reasons['"text-age"']


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_rows_postgres_refuses_are_set_aside_and_the_rest_of_the_batch_lands(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    backend: str,
    writer: str,
) -> None:
    await seed_users(source, 1_000)
    documents = [doc async for batch in source.iter_batches(1_000) for doc in batch]
    poisoned = {mongo_key(d["_id"]) for d in documents if d["age"] > POISON_AGE}
    assert 0 < len(poisoned) < 1_000
    report = await migrate(
        make_settings(backend=backend, writer=writer), transform=overflowing_age_for_the_old
    )
    assert (report.rows_read, report.rows_rejected) == (1_000, len(poisoned))
    assert report.rows_written == 1_000 - len(poisoned) == await target.count()
    set_aside = {
        r["mongo_id"]: r
        for r in await DeadLetterRepository(target._db, table=target.table).latest(limit=1_000)
    }
    assert set(set_aside) == poisoned
    some = next(iter(set_aside.values()))
    assert "PostgreSQL refused the row" in some["reason"]
    assert json.loads(some["document"])["age"] > POISON_AGE


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_bug_in_the_worker_fails_the_run_with_the_workers_traceback(
    make_settings: Any, source: UserMongoRepository, backend: str
) -> None:
    await seed_users(source, 300)
    with pytest.raises(WorkerError, match="the transform has a bug") as raised:
        await migrate(make_settings(backend=backend), transform=broken_transform)
    assert "Worker traceback" in str(raised.value)
    assert "broken_transform" in raised.value.remote_traceback


async def test_a_killed_worker_process_fails_the_run_within_seconds(
    make_settings: Any, source: UserMongoRepository
) -> None:
    await seed_users(source, 5_000)

    class KillOnFirstBatch(CountingProgress):
        def advance(self, count: int) -> None:
            if self.count == 0:
                os.kill(multiprocessing.active_children()[0].pid or 0, signal.SIGKILL)
            super().advance(count)

    started = time.monotonic()
    with pytest.raises(WorkerCrashedError, match="SIGKILL"):
        await migrate(
            make_settings(backend="multiprocessing", batch_size=100), progress=KillOnFirstBatch()
        )
    assert time.monotonic() - started < 30
    assert multiprocessing.active_children() == []


async def test_a_wrong_password_is_one_clear_error_that_hides_the_password(
    make_settings: Any, servers: Any
) -> None:
    wrong = servers.pg_dsn.replace("://migrationkit:", "://migrationkit:hunter2-wrong@", 1)
    wrong = wrong.split("@", 1)[0] + "@" + servers.pg_dsn.split("@", 1)[1]
    with pytest.raises(ServerUnavailableError, match="PostgreSQL") as raised:
        await migrate(make_settings(pg_dsn=wrong))
    assert "hunter2" not in str(raised.value)


async def test_an_unreachable_mongodb_is_one_clear_error(make_settings: Any) -> None:
    settings = make_settings(mongo_uri="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    with pytest.raises(ServerUnavailableError, match="cannot reach MongoDB"):
        await migrate(settings)


async def test_secrets_never_reach_the_report_or_the_logs(
    settings: Settings,
    source: UserMongoRepository,
    servers: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = servers.pg_dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password
    await seed_users(source, 200)
    with caplog.at_level(logging.DEBUG):
        report = await migrate(settings)
    assert password not in json.dumps(report.to_dict())
    assert password not in repr(report) + repr(settings) + str(settings.redacted())
    assert password not in caplog.text
    assert "***" in report.target


async def test_progress_counts_every_row_against_the_collection_size(
    settings: Settings, source: UserMongoRepository
) -> None:
    await seed_users(source, 1_234)
    progress = CountingProgress()
    await migrate(settings, progress=progress)
    assert (progress.total, progress.count, progress.closed) == (1_234, 1_234, True)


async def test_fixing_a_rejected_document_and_rerunning_picks_it_up(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 100)
    await source.insert_many([{"_id": "typo", "username": "t", "email": "t-at-x.org", "age": 5}])
    first = await migrate(settings)
    assert (first.rows_written, first.rows_rejected) == (100, 1)
    [rejection] = await DeadLetterRepository(target._db, table=target.table).latest()
    assert rejection["mongo_id"] == '"typo"'
    assert "email" in rejection["reason"]
    assert json.loads(rejection["document"])["email"] == "t-at-x.org"

    await source._collection.update_one({"_id": "typo"}, {"$set": {"email": "t@x.org"}})
    second = await migrate(settings)
    assert (second.rows_written, second.rows_rejected) == (101, 0)
    assert await DeadLetterRepository(target._db, table=target.table).count() == 0
