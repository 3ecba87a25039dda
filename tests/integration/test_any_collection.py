"""Any collection, by a mapping: nested documents as jsonb, child tables or flattened
columns, on every backend; verify checks every value; a resumed run doubles nothing."""

from __future__ import annotations

from typing import Any

import pytest

from migrationkit import (
    MongoConnectionHandler,
    RangeOptions,
    Settings,
    TableMapping,
    TableRepository,
    migrate,
    verify,
)
from migrationkit._errors import ConfigurationError
from migrationkit._mapping.infer import infer_mapping
from migrationkit.workshop.samples import CustomerFactory

pytestmark = pytest.mark.integration

COUNT = 600


@pytest.fixture
async def customers(settings: Settings) -> list[dict[str, Any]]:
    """A nested collection like MongoDB's sample customers, in the test's collection."""
    documents = list(CustomerFactory(seed=3).customers(COUNT))
    assert settings.mongo_uri is not None
    async with MongoConnectionHandler(settings.mongo_uri.get_secret_value()) as client:
        collection = client[settings.mongo_database][settings.mongo_collection]
        await collection.drop()
        await collection.insert_many(documents)
    return documents


def inferred(settings: Settings, documents: list[dict[str, Any]], nested: str) -> TableMapping:
    return infer_mapping(
        documents,
        collection=settings.mongo_collection,
        table=settings.pg_table,
        sampled=len(documents),
        total=len(documents),
        nested=nested,  # type: ignore[arg-type]
    ).mapping


async def tables_of(settings: Settings, mapping: TableMapping) -> dict[str, int]:
    import asyncpg

    assert settings.pg_dsn is not None
    connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        counts = {}
        for table in TableRepository(connection, mapping=mapping).tables:
            counts[table] = await connection.fetchval(f'SELECT count(*) FROM "{table}"')
        return counts
    finally:
        await connection.close()


async def drop(settings: Settings, mapping: TableMapping) -> None:
    import asyncpg

    from migrationkit._target.tables import drop_target

    assert settings.pg_dsn is not None
    connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        await drop_target(connection, mapping)
    finally:
        await connection.close()


@pytest.mark.parametrize("nested", ["jsonb", "child", "flatten"])
@pytest.mark.parametrize("backend", ["asyncio", "multiprocessing"])
async def test_a_nested_collection_lands_whole_and_verifies(
    make_settings: Any, customers: list[dict[str, Any]], backend: str, nested: str
) -> None:
    settings = make_settings(backend=backend, batch_size=100)
    mapping = inferred(settings, customers, nested)
    try:
        report = await migrate(settings, mapping=mapping)
        assert (report.rows_read, report.rows_written, report.rows_rejected) == (COUNT, COUNT, 0)
        checked = await verify(settings, mapping=mapping, range_size=250)
        assert checked.ok, checked.summary()
        counts = await tables_of(settings, mapping)
        assert counts[mapping.table] == COUNT
        if nested == "child":
            orders = sum(len(document["orders"]) for document in customers)
            assert counts[f"{mapping.table}__orders"] == orders
    finally:
        await drop(settings, mapping)


async def test_a_range_run_writes_child_tables_too(
    make_settings: Any, customers: list[dict[str, Any]]
) -> None:
    settings = make_settings(backend="multiprocessing", batch_size=100)
    mapping = inferred(settings, customers, "child")
    try:
        report = await migrate(settings, mapping=mapping, ranges=RangeOptions(partitions=3))
        assert report.rows_written == COUNT
        assert (await verify(settings, mapping=mapping)).ok
    finally:
        await drop(settings, mapping)


async def test_verify_names_the_document_whose_child_row_or_jsonb_changed(
    make_settings: Any, customers: list[dict[str, Any]]
) -> None:
    import asyncpg

    settings = make_settings(batch_size=100)
    mapping = inferred(settings, customers, "child")
    try:
        await migrate(settings, mapping=mapping)
        assert settings.pg_dsn is not None
        connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
        try:
            orders = f'"{mapping.table}__orders"'
            key = await connection.fetchval(f"SELECT mongo_id FROM {orders} LIMIT 1")
            await connection.execute(
                f"UPDATE {orders} SET position = position + 100 WHERE mongo_id = $1", key
            )
            tiers = next(c.name for c in mapping.columns if c.name == "tier_and_details")
            other = await connection.fetchval(
                f'SELECT mongo_id FROM "{mapping.table}" WHERE mongo_id <> $1 LIMIT 1', key
            )
            await connection.execute(
                f'UPDATE "{mapping.table}" SET "{tiers}" = \'{{}}\'::jsonb WHERE mongo_id = $1',
                other,
            )
        finally:
            await connection.close()
        report = await verify(settings, mapping=mapping)
        assert not report.ok
        problems = {difference.mongo_id: difference.problem for difference in report.differences}
        assert f"{mapping.table}__orders" in problems[key]
        assert "tier_and_details" in problems[other]
    finally:
        await drop(settings, mapping)


async def test_running_again_keeps_every_child_row_once(
    make_settings: Any, customers: list[dict[str, Any]]
) -> None:
    settings = make_settings(batch_size=100)
    mapping = inferred(settings, customers, "child")
    try:
        await migrate(settings, mapping=mapping)
        first = await tables_of(settings, mapping)
        await migrate(settings, mapping=mapping, resume=True)  # completed: nothing left to do
        report = await migrate(settings, mapping=mapping)  # a fresh run over the same tables
        assert report.rows_written == COUNT
        assert await tables_of(settings, mapping) == first
        assert (await verify(settings, mapping=mapping)).ok
    finally:
        await drop(settings, mapping)


async def test_a_fresh_run_with_another_mapping_replaces_the_tables_of_the_first(
    make_settings: Any, customers: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    import asyncpg

    settings = make_settings(batch_size=100)
    child, jsonb = (inferred(settings, customers, nested) for nested in ("child", "jsonb"))
    try:
        await migrate(settings, mapping=child)
        with pytest.raises(ConfigurationError, match="written with another mapping"):
            await migrate(settings, mapping=jsonb, resume=True)
        assert (await verify(settings, mapping=child)).ok, "a refused resume changes nothing"

        report = await migrate(settings, mapping=jsonb)
        assert report.rows_written == COUNT
        assert (await verify(settings, mapping=jsonb)).ok
        assert f"{child.table}__orders" in caplog.text, "the tables dropped are named"
        assert settings.pg_dsn is not None
        connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
        try:
            left = await connection.fetchval("SELECT to_regclass($1)", f"{child.table}__orders")
        finally:
            await connection.close()
        assert left is None, "the first mapping's child table is gone"
    finally:
        await drop(settings, jsonb)
        await drop(settings, child)


@pytest.mark.parametrize("backend", ["asyncio", "multiprocessing"])
async def test_the_c_row_writer_and_the_python_path_write_the_same_tables(
    make_settings: Any, customers: list[dict[str, Any]], backend: str
) -> None:
    """The jsonb mapping takes the C path (raw BSON); the same mapping through a plain
    function takes Python's: both tables must hold the same rows, value for value."""
    import functools

    import asyncpg

    from migrationkit._mapping.normalize import normalize, transform_for
    from migrationkit._normalize.rows import raw_path

    settings = make_settings(backend=backend, batch_size=100)
    fast = inferred(settings, customers, "jsonb")
    slow = TableMapping(collection=fast.collection, table=f"{fast.table}_py", columns=fast.columns)
    assert raw_path(transform_for(fast)) is not None
    assert settings.pg_dsn is not None
    try:
        await migrate(settings, mapping=fast)
        await migrate(settings, mapping=slow, transform=functools.partial(normalize, slow))
        assert (await verify(settings, mapping=fast)).ok
        connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
        try:
            columns = ", ".join(f'"{name}"' for name in fast.column_names)
            tables = [
                await connection.fetch(f'SELECT {columns} FROM "{table}" ORDER BY mongo_id')
                for table in (fast.table, slow.table)
            ]
        finally:
            await connection.close()
        assert len(tables[0]) == COUNT
        assert [tuple(row) for row in tables[0]] == [tuple(row) for row in tables[1]]
    finally:
        await drop(settings, fast)
        await drop(settings, slow)
