"""Mappings on real PostgreSQL: every BSON value written, read back, equal to its source."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from bson import Decimal128, Int64, ObjectId

from migrationkit import Endpoints
from migrationkit._mapping.normalize import compile_mapping
from migrationkit._mapping.restore import restore_document
from migrationkit._mapping.spec import ChildTable, Column, TableMapping
from migrationkit._mapping.types import (
    DEFAULT_PG_TYPE,
    bson_type,
    comparable,
    from_jsonb,
    same_bson,
    to_jsonb,
)
from migrationkit._normalize.rows import DocumentRows
from migrationkit._target.fidelity import SAMPLES, format_fidelity_table, measure_fidelity
from migrationkit._target.mapping_sql import (
    create_table_statements,
    drop_table_statements,
    select_statements,
    stage_table_name,
    stage_table_statements,
    truncate_stage_statement,
    upsert_statements,
)
from migrationkit._target.writers import copy_rows, executemany_rows

pytestmark = pytest.mark.integration

_tables = itertools.count()
KINDS = sorted({bson_type(value) for _, value in SAMPLES} - {"null"})
#: Samples PostgreSQL keeps only as the same number: the fidelity test covers them.
SAME_NUMBER_ONLY = {"decimal 1E+5"}
BY_KIND: dict[str, list[Any]] = {}
for label, sample in SAMPLES:
    if label not in SAME_NUMBER_ONLY:
        BY_KIND.setdefault(bson_type(sample), []).append(sample)


def every_type_mapping(table: str) -> TableMapping:
    """A column per BSON type, a flattened object, a child table and the catch-all."""
    columns = [
        Column(f"t_{kind}", f"t_{kind}", DEFAULT_PG_TYPE[kind], (kind, "null"), on_mismatch="extra")
        for kind in KINDS
    ]
    columns += [
        Column("address.city", "address__city", "text", ("string", "null")),
        Column("address.zip", "address__zip", "integer", ("int", "null")),
    ]
    items = ChildTable(
        "items",
        f"{table}__items",
        (
            Column("", "value", "integer", ("int",), on_mismatch="extra"),
            Column("sku", "sku", "text", ("string",)),
            Column("price", "price", "numeric", ("decimal",)),
            Column("tags", "tags", "jsonb", ("array",)),
        ),
    )
    return TableMapping("every_type", table, tuple(columns), children=(items,)).validate()


def documents(count: int) -> list[dict[str, Any]]:
    ids: list[Any] = [ObjectId(), "a string id", 42, Int64(2**40), {"embedded": 1}]
    addresses: list[Any] = [{"city": "Lyon", "zip": 69001}, {"city": "Oslo"}, {}, None, "n/a"]
    items: list[Any] = [
        [1, {"sku": "a", "price": Decimal128("1.50"), "tags": [1, "x"], "note": "kept"}, "s"],
        [],
        None,
        [None, {}, {"sku": "b", "price": Decimal128("NaN")}],
    ]
    out = []
    for number in range(count):
        document: dict[str, Any] = {"_id": ids[number % len(ids)]}
        if number >= len(ids):
            document["_id"] = f"{number}"
        for kind in KINDS:
            values = BY_KIND[kind]
            document[f"t_{kind}"] = values[number % len(values)]
        document["address"] = addresses[number % len(addresses)]
        document["items"] = items[number % len(items)]
        document["Not Mapped"] = {"$key": number, "a.b": [number, None], "": "empty key"}
        if number % 3 == 0:
            del document["t_string"]  # missing, not null
        out.append(document)
    return out


def differing_keys(restored: dict[str, Any], source: dict[str, Any]) -> list[str]:
    """The top-level keys whose values are not the same BSON (for a readable failure)."""
    keys = set(restored) | set(source)
    return sorted(
        key
        for key in keys
        if not same_bson(sorted_keys(restored.get(key)), sorted_keys(source.get(key)))
        or (key in restored) != (key in source)
    )


def sorted_keys(value: Any) -> Any:
    """Documents compared regardless of key order (columns cannot keep it)."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


@pytest.fixture
async def connection(servers: Endpoints) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(servers.pg_dsn)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def mapping(connection: asyncpg.Connection) -> AsyncIterator[TableMapping]:
    mapping = every_type_mapping(f"mk_roundtrip_{next(_tables)}")
    for statement in create_table_statements(mapping):
        await connection.execute(statement)
    yield mapping
    for statement in drop_table_statements(mapping):
        await connection.execute(statement)


WRITERS = {"copy": copy_rows, "executemany": executemany_rows}


async def write(
    connection: asyncpg.Connection,
    mapping: TableMapping,
    normalized: list[DocumentRows],
    writer: str,
) -> None:
    write_rows = WRITERS[writer]
    async with connection.transaction():
        await write_rows(
            connection, mapping.table, [n.row for n in normalized], mapping.column_names
        )
        for child in mapping.children:
            rows = [row for n in normalized for row in n.children[child.table]]
            await write_rows(connection, child.table, rows, child.column_names)


async def read_back(
    connection: asyncpg.Connection, mapping: TableMapping, keys: list[str]
) -> tuple[dict[str, asyncpg.Record], dict[str, dict[str, list[asyncpg.Record]]]]:
    statements = select_statements(mapping)
    parents = {r["mongo_id"]: r for r in await connection.fetch(statements[mapping.table], keys)}
    children: dict[str, dict[str, list[asyncpg.Record]]] = {}
    for child in mapping.children:
        for record in await connection.fetch(statements[child.table], keys):
            children.setdefault(record["mongo_id"], {}).setdefault(child.table, []).append(record)
    return parents, children


@pytest.mark.parametrize("writer", ["copy", "executemany"])
async def test_every_column_reads_back_as_written(
    connection: asyncpg.Connection, mapping: TableMapping, writer: str
) -> None:
    normalizer = compile_mapping(mapping)
    normalized = [normalizer(document) for document in documents(24)]
    await write(connection, mapping, normalized, writer)
    parents, children = await read_back(connection, mapping, [n.key for n in normalized])
    types = ["text", *(c.pg_type for c in mapping.columns), "jsonb"]
    for rows in normalized:
        record = parents[rows.key]
        for name, pg_type, written, read in zip(
            mapping.column_names, types, rows.row, record, strict=True
        ):
            assert comparable(pg_type, read) == comparable(pg_type, written), (rows.key, name)
    child = mapping.children[0]
    child_types = ["text", "integer", *(c.pg_type for c in child.columns), "jsonb"]
    for rows in normalized:
        read_rows = children.get(rows.key, {}).get(child.table, [])
        assert len(read_rows) == len(rows.children[child.table])
        for written_row, read_row in zip(rows.children[child.table], read_rows, strict=True):
            for pg_type, written, read in zip(child_types, written_row, read_row, strict=True):
                assert comparable(pg_type, read) == comparable(pg_type, written)


@pytest.mark.parametrize("writer", ["copy", "executemany"])
async def test_documents_restored_from_postgresql_equal_their_source(
    connection: asyncpg.Connection, mapping: TableMapping, writer: str
) -> None:
    sources = documents(24)
    normalizer = compile_mapping(mapping)
    normalized = [normalizer(document) for document in sources]
    await write(connection, mapping, normalized, writer)
    parents, children = await read_back(connection, mapping, [n.key for n in normalized])
    for source, rows in zip(sources, normalized, strict=True):
        restored = restore_document(mapping, parents[rows.key], children.get(rows.key, {}))
        expected = {key: value for key, value in source.items() if key != "_id"}
        assert differing_keys(restored, expected) == [], rows.key


async def test_jsonb_round_trip_keeps_every_value_type_and_key_order(
    connection: asyncpg.Connection,
) -> None:
    values = [value for _, value in SAMPLES]
    values.append({"zz": 1, "a": 2, "$": 3, "$$": 4, "$keys": 5, "é": 6, "e": 7, "": 8})
    values.append({"\udcff key": "lone surrogate in a key", "a\x00": "NUL in a key"})
    texts = await connection.fetch(
        "SELECT value::text AS text FROM unnest($1::jsonb[]) AS value",
        [to_jsonb(value) for value in values],
    )
    for value, record in zip(values, texts, strict=True):
        assert same_bson(from_jsonb(record["text"]), value), record["text"]


async def test_jsonb_values_stay_queryable_as_plain_json(connection: asyncpg.Connection) -> None:
    document = {"city": "Lyon", "zip": 69001, "open": True, "ratio": 0.5, "tags": ["a"]}
    row = await connection.fetchrow(
        "SELECT $1::jsonb ->> 'city' AS city, ($1::jsonb ->> 'zip')::int AS zip, "
        "($1::jsonb -> 'open')::boolean AS open, ($1::jsonb ->> 'ratio')::float8 AS ratio, "
        "$1::jsonb -> 'tags' ->> 0 AS tag",
        to_jsonb(document),
    )
    assert tuple(row) == ("Lyon", 69001, True, 0.5, "a")


async def stage_and_upsert(
    connection: asyncpg.Connection, mapping: TableMapping, normalized: list[DocumentRows]
) -> None:
    async with connection.transaction():
        for statement in stage_table_statements(mapping):
            await connection.execute(statement)
        await connection.execute(truncate_stage_statement(mapping))
        await copy_rows(
            connection,
            stage_table_name(mapping.table),
            [n.row for n in normalized],
            mapping.column_names,
        )
        for child in mapping.children:
            rows = [row for n in normalized for row in n.children[child.table]]
            await copy_rows(connection, stage_table_name(child.table), rows, child.column_names)
        for statement in upsert_statements(mapping):
            await connection.execute(statement)


async def test_rewritten_documents_leave_no_stale_or_doubled_child_row(
    connection: asyncpg.Connection, mapping: TableMapping
) -> None:
    normalizer = compile_mapping(mapping)
    sources = documents(8)
    first = [normalizer(document) for document in sources]
    await stage_and_upsert(connection, mapping, first)
    await stage_and_upsert(connection, mapping, first)  # a resumed run writes them again
    changed_sources = copy.deepcopy(sources)
    for document in changed_sources:
        document["items"] = [7] if document["_id"] == 42 else []
        document["t_int"] = 123
    changed = [normalizer(document) for document in changed_sources]
    await stage_and_upsert(connection, mapping, changed)
    child = mapping.children[0].table
    counts = await connection.fetch(
        f'SELECT "mongo_id", count(*) AS n FROM "{child}" GROUP BY "mongo_id"'
    )
    assert {r["mongo_id"]: r["n"] for r in counts} == {"42": 1}
    parents, children = await read_back(connection, mapping, [n.key for n in changed])
    assert len(parents) == 8
    assert {record["t_int"] for record in parents.values()} == {123}
    for source, rows in zip(changed_sources, changed, strict=True):
        restored = restore_document(mapping, parents[rows.key], children.get(rows.key, {}))
        expected = {key: value for key, value in source.items() if key != "_id"}
        assert differing_keys(restored, expected) == [], rows.key


async def row_versions(
    connection: asyncpg.Connection, table: str, order: str = '"mongo_id"'
) -> list[tuple[Any, ...]]:
    """Each row's physical place and writing transaction: they change when a row is written."""
    return [
        tuple(record)
        for record in await connection.fetch(
            f'SELECT ctid::text, xmin::text FROM "{table}" ORDER BY {order}'
        )
    ]


async def test_a_rewrite_writes_only_the_rows_that_differ_byte_for_byte(
    connection: asyncpg.Connection, mapping: TableMapping
) -> None:
    normalizer = compile_mapping(mapping)
    child = mapping.children[0].table
    by_place = '"mongo_id", "position"'
    line = {"sku": "a", "price": Decimal128("1.5"), "tags": [1]}
    first = [
        {"_id": 1, "t_double": 0.0, "items": [line, {**line, "sku": "b"}, {**line, "sku": "c"}]},
        {"_id": 2, "t_double": 1.0, "items": [line, 7, 8]},
    ]
    await stage_and_upsert(connection, mapping, [normalizer(d) for d in first])
    parents_before = await row_versions(connection, mapping.table)
    children_before = await row_versions(connection, child, by_place)

    await stage_and_upsert(connection, mapping, [normalizer(d) for d in first])
    assert await row_versions(connection, mapping.table) == parents_before
    assert await row_versions(connection, child, by_place) == children_before

    second = copy.deepcopy(first)
    second[0]["t_double"] = -0.0  # equal as a number, not the same value
    second[0]["items"][1]["price"] = Decimal128("1.50")  # equal numerics, another scale
    second[0]["items"].append({**line, "sku": "d"})  # appended
    second[1]["items"] = [line]  # two removed from the end
    await stage_and_upsert(connection, mapping, [normalizer(d) for d in second])
    parents_after = await row_versions(connection, mapping.table)
    assert parents_after[0] != parents_before[0]
    assert parents_after[1] == parents_before[1]
    children_after = await row_versions(connection, child, by_place)
    assert len(children_after) == 5  # document 1: 0, 1, 2, 3; document 2: 0
    assert children_after[0] == children_before[0]
    assert children_after[1] != children_before[1]
    assert children_after[2] == children_before[2]
    assert children_after[4] == children_before[3]

    keys = [normalizer(document).key for document in second]
    parents, children = await read_back(connection, mapping, keys)
    for key, source in zip(keys, second, strict=True):
        restored = restore_document(mapping, parents[key], children.get(key, {}))
        expected = {name: value for name, value in source.items() if name != "_id"}
        assert differing_keys(restored, expected) == [], key
    assert math.copysign(1.0, parents[keys[0]]["t_double"]) == -1.0
    assert str(children[keys[0]][child][1]["price"]) == "1.50"


async def test_kept_aside_values_are_exact_in_the_catch_all(
    connection: asyncpg.Connection, mapping: TableMapping
) -> None:
    source = {"_id": 1, "t_int": "not an int", "t_string": "NUL \x00 inside", "t_date": None}
    rows = compile_mapping(mapping)(source)
    assert rows.kept_aside == ("t_int", "t_string")
    await write(connection, mapping, [rows], "copy")
    parents, _ = await read_back(connection, mapping, [rows.key])
    assert parents[rows.key]["t_int"] is None
    kept = from_jsonb(parents[rows.key]["_extra"])
    expected = {key: value for key, value in source.items() if key != "_id"}
    assert same_bson(sorted_keys(kept), sorted_keys(expected))


async def test_fidelity_table_every_type_through_every_writer(
    connection: asyncpg.Connection,
) -> None:
    results = await measure_fidelity(connection, table=f"mk_fidelity_{next(_tables)}")
    print("\n" + format_fidelity_table(results))
    assert {r.label for r in results} == {label for label, _ in SAMPLES}
    for result in results:
        assert set(result.jsonb.values()) == {"exact"}, result
        assert len(set(result.column.values())) == 1, result  # every writer alike
    differing = {r.label for r in results if r.column["copy"] != "exact"}
    assert differing == {
        "decimal 1E+5",
        "decimal -0",
        "decimal -NaN",
        "decimal sNaN",
        "string NUL",
        "string lone surrogate",
        "date year -29719",
        "date year 10000",
        "date year 1",
        "binData subtype 3",
        "binData subtype 5",
        "binData subtype 0x80",
    }
