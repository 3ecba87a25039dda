"""``migrate --follow`` on the real servers: every change made during or after the load
ends in the target as in the source, through the mapping's child tables and catch-all;
a stopped follower resumes exactly; a position that cannot be resumed fails loudly."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import asyncpg
import pytest
from pymongo import UpdateOne

from migrationkit import MongoConnectionHandler, Settings, TableMapping, verify
from migrationkit._errors import ChangeHistoryLostError, ConfigurationError
from migrationkit._mapping.infer import infer_mapping
from migrationkit._mapping.spec import users_mapping
from migrationkit._run import follow
from migrationkit._run.garbage_collection import FOLLOWER_THRESHOLD
from migrationkit._target.stream_positions import StreamPositionRepository
from migrationkit._target.tables import drop_target
from migrationkit.workshop.samples import CustomerFactory
from migrationkit.workshop.seeding import seed_users
from tests.integration.follow_helpers import followed, random_changes, source_collection

pytestmark = pytest.mark.integration

COUNT = 300


@pytest.fixture
async def customers(settings: Settings) -> list[dict[str, Any]]:
    documents = list(CustomerFactory(seed=5).customers(COUNT))
    for number, document in enumerate(documents):
        document["_id"] = number  # small ids: the random writer picks among them
        document["v"] = 1
    assert settings.mongo_uri is not None
    async with MongoConnectionHandler(settings.mongo_uri.get_secret_value()) as client:
        collection = client[settings.mongo_database][settings.mongo_collection]
        await collection.drop()
        await collection.insert_many(documents)
    return documents


@pytest.fixture
def mapping(settings: Settings, customers: list[dict[str, Any]]) -> TableMapping:
    """Orders as a child table, everything else by inference (catch-all on)."""
    return infer_mapping(
        customers,
        collection=settings.mongo_collection,
        table=settings.pg_table,
        sampled=len(customers),
        total=len(customers),
        nested="child",
    ).mapping


@pytest.fixture
async def db(settings: Settings, mapping: TableMapping) -> Any:
    assert settings.pg_dsn is not None
    connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    yield connection
    await drop_target(connection, mapping)
    await StreamPositionRepository(connection).clear(mapping.table)
    await connection.close()


@pytest.fixture
async def db_users(settings: Settings) -> Any:
    """Drops the users table and its stream position at the end."""
    assert settings.pg_dsn is not None
    connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    yield connection
    await drop_target(connection, users_mapping(settings.pg_table))
    await StreamPositionRepository(connection).clear(settings.pg_table)
    await connection.close()


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
async def test_changes_after_the_load_end_in_the_target_as_in_the_source(
    make_settings: Any, mapping: TableMapping, customers: list[dict[str, Any]], db: Any, driver: str
) -> None:
    settings = make_settings(mongo_driver=driver)
    async with source_collection(settings) as source, followed(settings, mapping) as run:
        await run.following()
        await random_changes(source.collection, list(range(COUNT)), count=300, seed=1)
        status = await run.caught_up(await source.cluster_time())
        await run.stop()
    assert status.events_applied >= 300
    checked = await verify(settings, mapping=mapping)
    assert checked.ok, checked.summary()


async def test_the_follower_collects_garbage_rarely_and_restores_the_threshold(
    settings: Settings, mapping: TableMapping, customers: list[dict[str, Any]], db: Any
) -> None:
    before = gc.get_threshold()
    assert before[0] < FOLLOWER_THRESHOLD  # CPython's default, 700
    async with followed(settings, mapping) as run:
        await run.following()
        assert gc.get_threshold() == (FOLLOWER_THRESHOLD, *before[1:])
        await run.stop()
    assert gc.get_threshold() == before


async def test_changes_racing_the_load_end_as_in_the_source(
    make_settings: Any, mapping: TableMapping, customers: list[dict[str, Any]], db: Any
) -> None:
    settings = make_settings(batch_size=20, workers=2)
    async with source_collection(settings) as source:
        async with followed(settings, mapping) as run:
            # Written while the load reads 20 documents a batch, and after it.
            await random_changes(source.collection, list(range(COUNT)), count=300, seed=2)
            status = await run.caught_up(await source.cluster_time())
        assert status.documents_reread > 0  # some changes were older than what the load read
    checked = await verify(settings, mapping=mapping)
    assert checked.ok, checked.summary()


async def test_a_delete_removes_the_row_and_its_child_rows(
    settings: Settings, mapping: TableMapping, customers: list[dict[str, Any]], db: Any
) -> None:
    child = mapping.children[0].table
    with_orders = next(d["_id"] for d in customers if d["orders"])
    async with source_collection(settings) as source, followed(settings, mapping) as run:
        await run.following()
        assert await db.fetchval(
            f'SELECT count(*) FROM "{child}" WHERE mongo_id = $1', f"{with_orders}"
        )
        await source.collection.delete_one({"_id": with_orders})
        await run.caught_up(await source.cluster_time())
    key = str(with_orders)
    assert (
        await db.fetchval(f'SELECT count(*) FROM "{mapping.table}" WHERE mongo_id = $1', key) == 0
    )
    assert await db.fetchval(f'SELECT count(*) FROM "{child}" WHERE mongo_id = $1', key) == 0


async def test_a_stopped_follower_resumes_after_the_last_change_it_applied(
    settings: Settings, mapping: TableMapping, customers: list[dict[str, Any]], db: Any
) -> None:
    async with source_collection(settings) as source:
        async with followed(settings, mapping) as run:
            await run.following()
            await random_changes(source.collection, list(range(COUNT)), count=100, seed=3)
            first = await run.caught_up(await source.cluster_time())
        # Changes while nobody follows, then a resumed follower.
        await random_changes(source.collection, list(range(COUNT)), count=100, seed=4)
        async with followed(settings, mapping, resume=True) as resumed:
            second = await resumed.caught_up(await source.cluster_time())
        assert resumed.run.follow_status is not None
    assert first.events_applied >= 100
    assert second.events_applied > 50  # some of the writes hit deleted ids: no event
    checked = await verify(settings, mapping=mapping)
    assert checked.ok, checked.summary()


async def test_a_token_the_server_rejects_stops_the_run_naming_the_recovery(
    settings: Settings, mapping: TableMapping, customers: list[dict[str, Any]], db: Any
) -> None:
    async with source_collection(settings) as source, followed(settings, mapping) as run:
        await run.following()
        await run.caught_up(await source.cluster_time())
    positions = StreamPositionRepository(db)
    saved = await positions.load(mapping.table)
    assert saved is not None
    from dataclasses import replace

    await positions.save(replace(saved, token={"_data": "not a token"}))
    with pytest.raises(ChangeHistoryLostError, match="migrationkit migrate --follow"):
        async with followed(settings, mapping, resume=True) as resumed:
            await resumed.following()


async def test_a_recreated_collection_is_not_followed_from_the_old_position(
    settings: Settings, mapping: TableMapping, customers: list[dict[str, Any]], db: Any
) -> None:
    async with source_collection(settings) as source:
        async with followed(settings, mapping) as run:
            await run.following()
        await source.collection.drop()
        await source.collection.insert_many(customers[:10])
    with pytest.raises(ChangeHistoryLostError, match="UUID"):
        async with followed(settings, mapping, resume=True) as resumed:
            await resumed.following()


async def test_resuming_a_follower_that_never_started_says_how_to_start(
    settings: Settings, mapping: TableMapping, customers: list[dict[str, Any]], db: Any
) -> None:
    with pytest.raises(ConfigurationError, match="migrate --follow"):
        async with followed(settings, mapping, resume=True) as resumed:
            await resumed.following()


async def test_the_workshop_users_are_followed_through_their_validation_rules(
    settings: Settings, source: Any, db_users: Any
) -> None:
    await seed_users(source, 200)
    mapping = users_mapping(settings.pg_table)
    async with source_collection(settings) as stream, followed(settings, mapping) as run:
        await run.following()
        users = stream.collection
        await users.update_one({"_id": (await users.find_one())["_id"]}, {"$set": {"age": 41}})
        await users.insert_one({"username": "no email", "age": 3})  # set aside: no email
        await users.delete_one({"username": {"$exists": True}})
        status = await run.caught_up(await stream.cluster_time())
    assert status.documents_rejected == 1
    assert list(status.rejections) == ["email: Field required"]
    checked = await verify(settings)
    assert checked.ok, checked.summary()


@pytest.fixture
def rows_read_back(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key whose document the follower rebuilt from the target (rows or dead letters)."""
    keys: list[str] = []
    real = follow.stored_documents

    async def counting(db: Any, mapping: TableMapping, ids: Any) -> Any:
        keys.extend(ids)
        return await real(db, mapping, ids)

    monkeypatch.setattr(follow, "stored_documents", counting)
    return keys


async def update_one_batch_at_a_time(run: Any, stream: Any, key: Any, updates: list[Any]) -> None:
    for update in updates:
        await stream.collection.update_one({"_id": key}, update)
        await run.caught_up(await stream.cluster_time())


@pytest.mark.parametrize(("cache_bytes", "reads"), [(2**20, 1), (0, 4)])
async def test_updates_apply_to_the_document_the_follower_wrote_without_reading_it_back(
    settings: Settings,
    mapping: TableMapping,
    customers: list[dict[str, Any]],
    db: Any,
    rows_read_back: list[str],
    cache_bytes: int,
    reads: int,
) -> None:
    updates = [{"$inc": {"v": 1}, "$set": {"address.city": f"city {n}"}} for n in range(4)]
    async with (
        source_collection(settings) as stream,
        followed(settings, mapping, cache_bytes=cache_bytes) as run,
    ):
        await run.following()
        await update_one_batch_at_a_time(run, stream, 7, updates)
    assert rows_read_back == ["7"] * reads  # with a cache: only the first, written by the load
    checked = await verify(settings, mapping=mapping)
    assert checked.ok, checked.summary()


@pytest.fixture
def postgres_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The follower's reads back and commits, in order; each commit made 0.3 s slower."""
    steps: list[str] = []
    read, apply = follow.stored_documents, follow.apply_changes

    async def reading(db: Any, mapping: TableMapping, ids: Any) -> Any:
        steps.extend(f"read {key}" for key in ids)
        return await read(db, mapping, ids)

    async def applying(db: Any, **batch: Any) -> Any:
        steps.append("commit")
        await asyncio.sleep(0.3)
        try:
            return await apply(db, **batch)
        finally:
            steps.append("committed")

    monkeypatch.setattr(follow, "stored_documents", reading)
    monkeypatch.setattr(follow, "apply_changes", applying)
    return steps


@pytest.mark.parametrize(
    ("cache_bytes", "keys", "overlap"),
    [
        (2**20, (7, 8), True),  # key 8 is not in the batch committing: read meanwhile
        (0, (7, 7), False),  # no memory: key 7 is read back again, after its own commit
    ],
)
async def test_rows_are_read_back_while_the_batch_before_commits_unless_it_touches_them(
    settings: Settings,
    mapping: TableMapping,
    customers: list[dict[str, Any]],
    db: Any,
    postgres_steps: list[str],
    cache_bytes: int,
    keys: tuple[int, int],
    overlap: bool,
) -> None:
    async with (
        source_collection(settings) as stream,
        followed(settings, mapping, cache_bytes=cache_bytes, max_events=1) as run,
    ):
        await run.following()
        postgres_steps.clear()
        await stream.collection.bulk_write(
            [UpdateOne({"_id": key}, {"$inc": {"v": 1}}) for key in keys]
        )
        await run.caught_up(await stream.cluster_time())
    first, second = (f"read {key}" for key in keys)
    assert postgres_steps.count("commit") == postgres_steps.count("committed") == 2
    assert postgres_steps.index(first) < postgres_steps.index("commit")
    second_read = len(postgres_steps) - 1 - postgres_steps[::-1].index(second)
    assert (second_read < postgres_steps.index("committed")) is overlap, postgres_steps
    checked = await verify(settings, mapping=mapping)
    assert checked.ok, checked.summary()


async def test_a_document_set_aside_is_patched_from_the_dead_letters_not_from_memory(
    settings: Settings, source: Any, db_users: Any, rows_read_back: list[str]
) -> None:
    await seed_users(source, 50)
    mapping = users_mapping(settings.pg_table)
    async with source_collection(settings) as stream, followed(settings, mapping) as run:
        await run.following()
        key = (await stream.collection.find_one())["_id"]
        updates = [
            {"$set": {"age": 40}},  # read back from its row, then kept
            {"$unset": {"email": ""}},  # from memory; set aside: no email
            {"$set": {"email": "back@example.com"}},  # from the dead letters: fits again
            {"$set": {"age": 42}},  # from memory
        ]
        await update_one_batch_at_a_time(run, stream, key, updates)
    assert rows_read_back == [str(key), str(key)]
    assert (
        await db_users.fetchval(
            f'SELECT age FROM "{settings.pg_table}" WHERE mongo_id = $1', str(key)
        )
        == 42
    )
    checked = await verify(settings)
    assert checked.ok, checked.summary()
