"""Big documents: memory bounded in bytes, a 16 MB document, refused rows still isolated."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from migrationkit import (
    DeadLetterRepository,
    Endpoints,
    MongoConnectionHandler,
    Settings,
    UserMongoRepository,
    UserPostgresRepository,
)
from migrationkit._run.migration import migrate
from migrationkit._source.byte_batches import run_memory_bound
from migrationkit.workshop import UserFactory
from migrationkit.workshop.bench.scaling import TreeSampler, child_environment
from tests.integration.transforms import POISON_AGE, overflowing_age_for_the_old

pytestmark = pytest.mark.integration

MB = 1_000_000
BIG_COLLECTION = "big_documents_1mb"
BIG_COUNT = 200  # 200 MB: held whole, as before byte limits, it passes the bound


def users_with_bio(count: int, size: int, *, start: int = 0) -> list[dict[str, Any]]:
    """Valid users of about ``size`` bytes each; the bulk is a field the users mapping ignores."""
    return [
        dict(user, bio="x" * max(0, size - 150))
        for user in UserFactory(7).users(count, start=start)
    ]


async def insert(source: UserMongoRepository, documents: list[dict[str, Any]]) -> None:
    for start in range(0, len(documents), 8):  # a few MB per insert
        await source.insert_many(documents[start : start + 8])


@pytest.fixture(scope="module")
async def big_collection(servers: Endpoints) -> AsyncIterator[str]:
    async with MongoConnectionHandler(servers.mongo_uri) as client:
        source = UserMongoRepository(client["migrationkit"][BIG_COLLECTION])
        await source.drop()
        for start in range(0, BIG_COUNT, 20):
            await insert(source, users_with_bio(20, MB, start=start))
        yield BIG_COLLECTION
        await source.drop()


@pytest.mark.parametrize(
    ("backend", "flags"),
    [
        ("asyncio", []),
        ("multiprocessing", []),
        ("multiprocessing", ["--partitions", "2"]),
    ],
)
async def test_1_mb_documents_migrate_within_the_documented_memory_bound(
    servers: Endpoints, big_collection: str, backend: str, flags: list[str]
) -> None:
    env = child_environment(servers, collection=big_collection, table=big_collection) | {
        "MIGRATIONKIT_WORKERS": "2",
        "MIGRATIONKIT_BATCH_BYTES": str(4 << 20),
    }
    command = [sys.executable, "-m", "migrationkit", "migrate", "--json", "--quiet"]
    process = await asyncio.create_subprocess_exec(
        *command, "--backend", backend, *flags,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    sampler = TreeSampler(process.pid)
    sampling = asyncio.create_task(sampler.run(process))
    stdout, stderr = await process.communicate()
    await sampling
    assert process.returncode == 0, stderr.decode()
    assert json.loads(stdout.decode().splitlines()[-1])["rows_written"] == BIG_COUNT

    settings = Settings(backend=backend, workers=2, batch_bytes=4 << 20)
    bound = run_memory_bound(settings, ranges=bool(flags))
    peak = sampler.peak_kib * 1024
    assert peak < bound, f"peak {peak >> 20} MiB, bound {bound >> 20} MiB"


@pytest.mark.parametrize("backend", ["asyncio", "multiprocessing"])
async def test_a_16_mb_document_lands_alone_in_its_batch(
    settings: Settings,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    backend: str,
) -> None:
    small = users_with_bio(5, 1_000)
    huge = users_with_bio(1, 16 * MB, start=5)
    await source.insert_many(small[:2] + huge + small[2:])
    report = await migrate(with_options(settings, backend=backend, batch_bytes=1 << 20))
    assert (report.rows_written, report.rows_rejected) == (6, 0)
    assert await target.count() == 6


async def test_a_16_mb_document_set_aside_keeps_all_of_it_in_the_dead_letter_table(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    (huge,) = users_with_bio(1, 16 * MB)
    await source.insert_many([{**huge, "age": -1}])  # rejected: age must be >= 0
    report = await migrate(settings)
    assert (report.rows_written, report.rows_rejected) == (0, 1)
    (rejected,) = await DeadLetterRepository(target._db, table=target.table).latest()
    assert len(rejected["document"]) > 16 * MB


async def test_rows_postgresql_refuses_in_byte_bounded_batches_are_still_isolated(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    documents = users_with_bio(60, 100_000)
    poisoned = sum(1 for document in documents if document["age"] > POISON_AGE)
    assert 0 < poisoned < len(documents)
    await insert(source, documents)
    bounded = with_options(settings, batch_bytes=1 << 20, batch_size=10_000)
    report = await migrate(bounded, transform=overflowing_age_for_the_old)
    dead_letters = DeadLetterRepository(target._db, table=target.table)
    assert report.rows_rejected == await dead_letters.count() == poisoned
    assert report.rows_written == await target.count() == len(documents) - poisoned
    assert sum(worker.batches for worker in report.per_worker) >= 6  # about 10 a batch
    for record in await dead_letters.latest(limit=100):
        assert record["reason"].startswith("PostgreSQL refused the row")


async def test_process_workers_take_documents_the_driver_hands_out_as_memoryviews(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    # PyMongo gives a large reply's raw documents as memoryviews: they must become bytes.
    await insert(source, users_with_bio(300, 100_000))
    report = await migrate(with_options(settings, backend="multiprocessing", batch_size=10_000))
    assert report.rows_written == await target.count() == 300


def with_options(settings: Settings, **options: Any) -> Settings:
    """The same collection and table, other settings."""
    return settings.model_copy(update=options)
