"""Repositories against the real servers: paging, seeding, writers."""

from __future__ import annotations

import pytest
from bson import ObjectId

from migrationkit import BatchLoader, UserMongoRepository
from migrationkit._target.table import UserPostgresRepository
from migrationkit._target.tables import create_target
from migrationkit.workshop import UserFactory, seed_users

pytestmark = pytest.mark.integration


async def test_keyset_batches_read_every_document_once_in_id_order(
    source: UserMongoRepository,
) -> None:
    await seed_users(source, 2_345)
    batches = [batch async for batch in source.iter_batches(500)]
    ids = [doc["_id"] for batch in batches for doc in batch]
    assert [len(batch) for batch in batches] == [500, 500, 500, 500, 345]
    assert ids == sorted(ids)
    assert len(set(ids)) == 2_345


async def test_keyset_batches_resume_after_a_given_id(source: UserMongoRepository) -> None:
    await seed_users(source, 1_000)
    everything = [doc["_id"] async for batch in source.iter_batches(300) for doc in batch]
    resumed = [
        doc["_id"]
        async for batch in source.iter_batches(300, after=everything[399])
        for doc in batch
    ]
    assert resumed == everything[400:]


async def test_keyset_batches_resume_into_later_id_types(source: UserMongoRepository) -> None:
    # {"_id": {"$gt": 1}} matches numbers only: a resume must not skip "a" and the ObjectId.
    oid = ObjectId()
    await source.insert_many([{"_id": value} for value in (1, 2, "a", oid)])
    read = [
        document["_id"] async for batch in source.iter_batches(10, after=1) for document in batch
    ]
    assert read == [2, "a", oid]


async def test_the_skip_limit_baseline_also_reads_every_document_once(
    source: UserMongoRepository,
) -> None:
    await seed_users(source, 1_050)
    ids = [doc["_id"] async for batch in source.iter_batches_skip_limit(200) for doc in batch]
    assert len(ids) == len(set(ids)) == 1_050


async def test_seeded_users_are_unique_and_reproducible(source: UserMongoRepository) -> None:
    assert await seed_users(source, 3_000, seed=42) == 3_000
    stored = [doc async for batch in source.iter_batches(1_000) for doc in batch]
    assert len({doc["username"] for doc in stored}) == 3_000
    assert len({doc["email"] for doc in stored}) == 3_000
    expected = list(UserFactory(42).users(3_000))
    assert sorted(d["username"] for d in stored) == sorted(d["username"] for d in expected)


async def test_seeding_with_append_keeps_users_unique(source: UserMongoRepository) -> None:
    await seed_users(source, 500, seed=1)
    await seed_users(source, 500, seed=1, append=True)
    stored = [doc async for batch in source.iter_batches(1_000) for doc in batch]
    assert len({doc["username"] for doc in stored}) == 1_000


@pytest.mark.parametrize("writer", ["copy", "executemany", "insert"])
async def test_a_failing_batch_leaves_no_row_behind(
    target: UserPostgresRepository, writer: str
) -> None:
    async with target._db.acquire() as connection:
        await create_target(connection, target.mapping)
    rows = [(f"id{n}", "u", "u@x.org", 1, None) for n in range(10)]
    rows.append(("id3", "dup", "dup@x.org", 1, None))  # duplicate mongo_id: unique violation
    async with target._db.acquire() as connection:
        with pytest.raises(Exception, match="duplicate key"):
            await BatchLoader(connection, mapping=target.mapping, writer=writer).write(rows)
    assert await target.count() == 0
