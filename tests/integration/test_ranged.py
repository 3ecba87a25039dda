"""Range dispatch ("dispatch work, not data") on the real servers, with every range executor.

Each test runs with the ``multiprocessing`` executor (a spawn process pool) and with
``dask`` (in-process workers for speed; worker processes where a process must die).
"Exactly" means what ``test_faults`` means: the table equals the source, row by row.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import re
import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import Decimal128, Int64, MaxKey, MinKey, ObjectId, Timestamp

from migrationkit import (
    ConfigurationError,
    CountingProgress,
    DeadLetterRepository,
    Endpoints,
    MigrationReport,
    Settings,
    UserMongoRepository,
    WorkerError,
)
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.dispatch import LeastLoaded
from migrationkit._executors.ranges import DEFAULT_RETRIES, RangeExecutor, RangeFailedError
from migrationkit._normalize.rows import Row, document_to_row, mongo_key
from migrationkit._observe.observe import NullObserver
from migrationkit._run.migration import RangeOptions, migrate, sends_ranges
from migrationkit._run.range_task import RangeJob
from migrationkit._source.partitioning import IdRange
from migrationkit._target.loader import postgres_job
from migrationkit._target.table import UserPostgresRepository
from migrationkit.workshop import seed_users
from tests.integration.test_faults import assert_target_equals_source
from tests.integration.transforms import broken_transform

pytestmark = pytest.mark.integration

HAS_DISTRIBUTED = importlib.util.find_spec("distributed") is not None
EXECUTORS = [
    "multiprocessing",
    pytest.param(
        "dask", marks=pytest.mark.skipif(not HAS_DISTRIBUTED, reason="pip install distributed")
    ),
]


def executor_named(name: str, *, workers: int = 2, processes: bool = False) -> RangeExecutor:
    """A two-worker executor; Dask's workers are threads here unless a process must die."""
    if name == "dask":
        from migrationkit._executors.dask import DaskRangeExecutor

        return DaskRangeExecutor(workers, processes=processes, retries=2)
    return ClusterMigrationFactory.create_range_executor(name, workers)


async def migrate_ranges(
    settings: Settings,
    *,
    executor: str | RangeExecutor,
    partitions: int | None = None,
    retries: int = DEFAULT_RETRIES,
    scheduler: str | None = None,
    secrets_from_worker_env: bool = False,
    **options: Any,
) -> MigrationReport:
    """``migrate`` sending ``_id`` ranges to ``executor`` (a backend name or a ready one)."""
    ready = executor if isinstance(executor, RangeExecutor) else None
    backend = executor.name if isinstance(executor, RangeExecutor) else executor
    ranges = RangeOptions(partitions, scheduler, secrets_from_worker_env, retries, ready)
    run_settings = settings.model_copy(update={"backend": backend})
    return await migrate(run_settings, ranges=ranges, **options)


def kill_own_process_once(document: Mapping[str, Any], *, at: str, flag: str) -> Row:
    """Kill the process running the task when it meets document ``at``, the first time."""
    if mongo_key(document["_id"]) == at and not os.path.exists(flag):
        Path(flag).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return document_to_row(document)


def mixed_ids() -> list[Any]:
    """Runs of ids of many BSON types, so that range boundaries fall on each of them."""
    runs = [
        [*range(30), 2.5, Int64(10**12), Decimal128("31.5")],
        [f"user-{n:02}" for n in range(30)],
        [{"tenant": n} for n in range(30)],
        [ObjectId() for _ in range(30)],
        [datetime(2020, 1, 1 + n, tzinfo=UTC) for n in range(28)],
    ]
    return [
        MinKey(),
        None,
        *[value for run in runs for value in run],
        True,
        Timestamp(1, 1),
        MaxKey(),
    ]


async def documents_in_order(source: UserMongoRepository) -> list[dict[str, Any]]:
    return [document async for batch in source.iter_batches(1_000) for document in batch]


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_every_user_lands_exactly_once(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    executor: str,
) -> None:
    await seed_users(source, 3_000)
    progress = CountingProgress()
    report = await migrate_ranges(
        make_settings(batch_size=250),
        executor=executor_named(executor),
        partitions=5,
        progress=progress,
    )
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (3_000, 3_000, 0)
    assert (progress.total, progress.count, progress.closed) == (3_000, 3_000, True)
    assert sum(worker.rows_written for worker in report.per_worker) == 3_000
    assert sum(worker.batches for worker in report.per_worker) >= 3_000 // 250
    await assert_target_equals_source(source, target)


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_a_worker_killed_mid_range_is_retried_and_the_table_is_exact(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    executor: str,
    tmp_path: Path,
) -> None:
    from functools import partial

    await seed_users(source, 3_000)
    victim = (await documents_in_order(source))[1_800]  # batches of its range landed before
    flag = tmp_path / "killed"
    transform = partial(kill_own_process_once, at=mongo_key(victim["_id"]), flag=str(flag))
    report = await migrate_ranges(
        make_settings(batch_size=100),
        executor=executor_named(executor, processes=True),
        partitions=4,
        transform=transform,
    )
    assert flag.exists(), "the fault did not happen"
    assert (report.rows_read, report.rows_written) == (3_000, 3_000)
    await assert_target_equals_source(source, target)


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_bad_documents_go_to_the_dead_letter_table_and_the_rest_lands(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    dead_letters: DeadLetterRepository,
    executor: str,
) -> None:
    await seed_users(source, 1_000)
    bad = [
        {"_id": "nul", "username": "a\x00b", "email": "a@b.org", "age": 3},
        {"_id": "old", "username": "old", "email": "old@b.org", "age": 200},
        {"_id": 7, "username": "x", "age": 3},
    ]
    await source.insert_many(bad)
    report = await migrate_ranges(
        make_settings(batch_size=100), executor=executor_named(executor), partitions=3
    )
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (1_003, 1_000, 3)
    reasons = dict(report.rejected_samples)
    assert "NUL" in reasons['"nul"']
    assert "150" in reasons['"old"']
    assert "email: Field required" in reasons["7"]
    set_aside = {record["mongo_id"] for record in await dead_letters.latest(limit=10)}
    assert set_aside == {'"nul"', '"old"', "7"}
    assert await target.count() == 1_000
    assert await dead_letters.count_also_written() == 0


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_ranges_over_mixed_id_types_migrate_exactly(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    executor: str,
) -> None:
    ids = mixed_ids()
    await source.insert_many(
        [
            {"_id": value, "username": f"u{n}", "email": f"u{n}@example.org", "age": 30}
            for n, value in enumerate(ids)
        ]
    )
    report = await migrate_ranges(
        make_settings(batch_size=16), executor=executor_named(executor), partitions=9
    )
    assert (report.rows_read, report.rows_written) == (len(ids), len(ids))
    await assert_target_equals_source(source, target)


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_a_bug_in_the_transform_fails_the_run_with_the_tasks_traceback(
    make_settings: Any, source: UserMongoRepository, executor: str
) -> None:
    await seed_users(source, 300)
    with pytest.raises(WorkerError, match="the transform has a bug") as raised:
        await migrate_ranges(
            make_settings(),
            executor=executor_named(executor),
            transform=broken_transform,
            retries=1,
        )
    assert isinstance(raised.value, RangeFailedError)
    assert "broken_transform" in raised.value.remote_traceback


async def test_a_range_run_starts_from_an_empty_target(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 500)
    await migrate_ranges(settings, executor="multiprocessing")
    await target._db.execute(
        f"INSERT INTO {target._quoted} (mongo_id, username, email, age) "
        "VALUES ('stale', 's', 's@example.org', 1)"
    )
    await migrate_ranges(settings, executor="multiprocessing", partitions=3)
    await assert_target_equals_source(source, target)


async def test_with_worker_env_the_tasks_carry_no_password(
    settings: Settings,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.mongo_uri is not None
    assert settings.pg_dsn is not None
    monkeypatch.setenv("MIGRATIONKIT_MONGO_URI", settings.mongo_uri.get_secret_value())
    monkeypatch.setenv("MIGRATIONKIT_PG_DSN", settings.pg_dsn.get_secret_value())
    await seed_users(source, 500)
    report = await migrate_ranges(
        settings, executor="multiprocessing", secrets_from_worker_env=True
    )
    assert report.rows_written == 500
    await assert_target_equals_source(source, target)


async def test_query_operators_stop_at_type_brackets_index_bounds_do_not(
    source: UserMongoRepository,
) -> None:
    # Why ranges use find(min=, max=): {"$gt": 1, "$lte": "b"} compares within one
    # type bracket, so it matches nothing though 2 and "a" lie between 1 and "b".
    await source.insert_many([{"_id": value} for value in (1, 2, "a", "b")])
    collection = source._collection
    by_operators = await collection.find({"_id": {"$gt": 1, "$lte": "b"}}).to_list(None)
    by_bounds = await collection.find({}, **IdRange(lower=2, upper="b").find_options()).to_list(
        None
    )
    assert by_operators == []
    assert [document["_id"] for document in by_bounds] == [2, "a"]


# -- without servers -------------------------------------------------------------


def a_job(password: str = "s3cret") -> RangeJob:
    endpoints = Endpoints(
        f"mongodb://kit:{password}@db.example:27017/", f"postgresql://kit:{password}@pg/kit"
    )
    return RangeJob(endpoints, "migrationkit", "users", 1_000, postgres_job(""))


def test_a_task_carries_bounds_and_settings_not_documents() -> None:
    task = pickle.dumps((a_job(), IdRange(3, lower=ObjectId(), upper=ObjectId(), size=10**6)))
    assert len(task) < 2_000


def test_a_job_never_shows_its_password() -> None:
    assert "s3cret" not in repr(a_job())
    assert "s3cret" not in str(a_job())


def test_a_failed_range_crosses_a_process_boundary_with_its_traceback() -> None:
    error = pickle.loads(pickle.dumps(RangeFailedError(4, "ValueError: boom", "Traceback …")))
    assert (error.range_index, error.message, error.remote_traceback) == (
        4,
        "ValueError: boom",
        "Traceback …",
    )
    assert str(error).startswith("range 4 failed: ValueError: boom")


def test_partitions_or_a_range_only_backend_choose_range_dispatch() -> None:
    assert not sends_ranges("asyncio", None)
    assert not sends_ranges("multiprocessing", RangeOptions())
    assert sends_ranges("multiprocessing", RangeOptions(partitions=8))
    assert sends_ranges("dask", None)
    assert sends_ranges("multiprocessing", RangeOptions(secrets_from_worker_env=True))
    with pytest.raises(ConfigurationError, match="cannot dispatch ranges"):
        sends_ranges("threading", RangeOptions(partitions=8))


def test_a_scheduler_address_with_another_backend_is_an_error_not_ignored() -> None:
    with pytest.raises(ConfigurationError, match="--scheduler is for the dask backend"):
        sends_ranges("asyncio", RangeOptions(scheduler="tcp://h:8786"))


async def test_a_scheduler_address_is_only_for_dask() -> None:
    endpoints = Endpoints("mongodb://nowhere.invalid/", "postgresql://nowhere.invalid/kit")
    with pytest.raises(ConfigurationError, match="--scheduler is for the dask backend"):
        await migrate_ranges(
            Settings(mongo_uri=endpoints.mongo_uri, pg_dsn=endpoints.pg_dsn),
            executor="multiprocessing",
            scheduler="tcp://h:8786",
            endpoints=endpoints,
        )


def test_an_unknown_executor_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown backend 'spark'"):
        ClusterMigrationFactory.create_range_executor("spark", 2)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"resume": True}, "--resume"),
        ({"dispatcher": LeastLoaded()}, "a dispatcher"),
        ({"observer": NullObserver()}, "an observer (metrics)"),
    ],
)
async def test_a_range_run_refuses_what_it_cannot_use(options: dict[str, Any], named: str) -> None:
    settings = Settings(
        backend="multiprocessing",
        mongo_uri="mongodb://nowhere.invalid/",
        pg_dsn="postgresql://nowhere.invalid/kit",
    )
    with pytest.raises(ConfigurationError, match=f"range run takes no {re.escape(named)}"):
        await migrate(settings, ranges=RangeOptions(partitions=4), **options)


async def test_range_options_leave_a_batch_backend_alone_unless_asked() -> None:
    settings = Settings(backend="threading")
    with pytest.raises(ConfigurationError, match="cannot dispatch ranges"):
        await migrate(settings, ranges=RangeOptions(partitions=4))


async def test_migrate_with_partitions_dispatches_ranges_and_moves_every_user(
    make_settings: Any, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 700)
    settings = make_settings(backend="multiprocessing", workers=2, batch_size=100)
    report = await migrate(settings, ranges=RangeOptions(partitions=3))
    assert (report.backend, report.rows_written) == ("mp-ranges", 700)
    await assert_target_equals_source(source, target)
