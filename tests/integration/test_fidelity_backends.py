"""Every BSON sample through a real migration, on every backend and with every writer.

:mod:`migrationkit._target.fidelity` writes each sample of :data:`SAMPLES` through each
writer on one connection and says, per sample, whether its default column keeps it
exactly or sets it aside (the catch-all keeps it). Here the samples go the whole way:
seeded into a collection of the embedded MongoDB-wire server, each in a document of its
own (in a top-level field named after its BSON type), then all of them in a sub-document,
in an array and in an array of sub-documents, under ``_id``s of six BSON types; a mapping
inferred from every document, as ``migrationkit infer --all`` does; a migration on every
backend with every writer; ``verify``; and every document read back from PostgreSQL,
restored and compared with its source. Each sample must come back as the fidelity table
says, on every backend alike.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import bson
import pytest
from bson import Int64, ObjectId
from bson.raw_bson import RawBSONDocument
from pydantic import SecretStr
from pymongo.errors import OperationFailure

from migrationkit import (
    Endpoints,
    MongoConnectionHandler,
    RangeOptions,
    Settings,
    TableMapping,
    TableRepository,
    migrate,
    mongo_key,
    verify,
)
from migrationkit._mapping.infer import Nested
from migrationkit._mapping.restore import restore_document
from migrationkit._mapping.types import MAPPING_BSON_OPTIONS, bson_type, from_jsonb, same_bson
from migrationkit._run.inference import infer_collection
from migrationkit._target.fidelity import SAMPLES, Fidelity, measure_fidelity
from migrationkit._target.tables import drop_target
from migrationkit._target.writers import quote_identifier

pytestmark = pytest.mark.integration

COLLECTION = "fidelity_samples"
VALUES = dict(SAMPLES)

#: Samples SecantusDB refuses to store: it decodes each inserted document with Python's
#: defaults, so no date outside years 1-9999 and no invalid UTF-8. Real MongoDB stores
#: them; there they are seeded and checked like every other sample.
EMBEDDED_SERVER_REFUSES = frozenset(
    {"date year -29719", "date year 10000", "string lone surrogate"}
)

#: Every way a run sends work out: ``(backend, ranges)``.
BACKENDS: dict[str, tuple[str, RangeOptions | None]] = {
    "asyncio": ("asyncio", None),
    "threading": ("threading", None),
    "multiprocessing": ("multiprocessing", None),
    "multiprocessing ranges": ("multiprocessing", RangeOptions(partitions=2)),
    "dask": ("dask", RangeOptions(partitions=2)),
}
WRITERS = ("copy", "executemany", "insert")

#: The documents that hold every sample at once, by role: where each sample sits.
NESTED_ROLES = ("sub-document", "array", "array of sub-documents")

_tables = itertools.count()
_ABSENT: Any = object()


# -- the collection -------------------------------------------------------------------------


def id_of(number: int) -> Any:
    """Six BSON types of ``_id`` in turn (an int and a long never the same number)."""
    kinds = (
        lambda: ObjectId(f"{number:024x}"),
        lambda: f"id {number}",
        lambda: number,
        lambda: Int64(2**40 + number),
        lambda: uuid.UUID(int=number),
        lambda: {"embedded": number, "kind": "document"},
    )
    return kinds[number % len(kinds)]()


def field_of(label: str) -> str:
    """The top-level field that holds a sample in its own document: one per BSON type."""
    return f"t_{bson_type(VALUES[label])}"


def path_of(role: str, label: str, index: int) -> tuple[str | int, ...]:
    """Where a document of ``role`` holds the sample (``index``: its place among them)."""
    paths: dict[str, tuple[str | int, ...]] = {
        "sub-document": ("samples", label),
        "array": ("sample_list", index),
        "array of sub-documents": ("entries", index, "value"),
    }
    return paths.get(role, (field_of(label),))


def nested_documents(kept: Sequence[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        "sub-document": {"samples": dict(kept)},
        "array": {"sample_list": [value for _, value in kept]},
        "array of sub-documents": {
            "entries": [{"label": label, "value": value} for label, value in kept]
        },
    }


_SURROGATE = "bad \udcff byte"
_SURROGATE_STAND_IN = "bad ? byte"  # as many bytes as the invalid one's: lengths stay right


def encode(document: Mapping[str, Any]) -> RawBSONDocument:
    """The document's BSON, a lone surrogate written as the invalid UTF-8 byte it stands for."""

    def stand_in(value: Any) -> Any:
        if type(value) is str and value == _SURROGATE:
            return _SURROGATE_STAND_IN
        if isinstance(value, dict):
            return {key: stand_in(item) for key, item in value.items()}
        if isinstance(value, list):
            return [stand_in(item) for item in value]
        return value

    raw = bson.encode(stand_in(document), codec_options=MAPPING_BSON_OPTIONS)
    return RawBSONDocument(raw.replace(_SURROGATE_STAND_IN.encode(), b"bad \xff byte"))


@dataclass(frozen=True)
class Seeded:
    """The collection as seeded: documents by role (a sample's label, or a nested role)."""

    documents: dict[str, dict[str, Any]]
    refused: frozenset[str]  # the labels the server would not store

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in SAMPLES if label not in self.refused]

    def key(self, role: str) -> str:
        return mongo_key(self.documents[role]["_id"])


async def seed(collection: Any) -> Seeded:
    """Each sample in a document of its own; then the nested documents, of those stored."""
    await collection.drop()
    documents: dict[str, dict[str, Any]] = {}
    refused = set()
    numbers = itertools.count()
    for label, value in SAMPLES:
        document = {"_id": id_of(next(numbers)), field_of(label): value}
        try:
            await collection.insert_one(encode(document))
        except OperationFailure:
            refused.add(label)
        else:
            documents[label] = document
    kept = [(label, value) for label, value in SAMPLES if label not in refused]
    for role, fields in nested_documents(kept).items():
        document = {"_id": id_of(next(numbers)), **fields}
        await collection.insert_one(encode(document))
        documents[role] = document
    return Seeded(documents, frozenset(refused))


@pytest.fixture(scope="module")
async def seeded(servers: Endpoints) -> AsyncIterator[Seeded]:
    async with MongoConnectionHandler(servers.mongo_uri) as client:
        collection = client["migrationkit"].get_collection(
            COLLECTION, codec_options=MAPPING_BSON_OPTIONS
        )
        yield await seed(collection)
        await collection.drop()


@pytest.fixture(scope="module")
async def fidelity(servers: Endpoints) -> dict[str, Fidelity]:
    """The fidelity table, on one connection: what each sample's column should give back."""
    connection = await asyncpg.connect(servers.pg_dsn)
    try:
        results = await measure_fidelity(connection, table="mk_fidelity_backends")
    finally:
        await connection.close()
    return {result.label: result for result in results}


# -- a run, and what it left ----------------------------------------------------------------


def settings_for(servers: Endpoints, *, backend: str = "asyncio", writer: str = "copy") -> Settings:
    return Settings(
        mongo_uri=SecretStr(servers.mongo_uri),
        pg_dsn=SecretStr(servers.pg_dsn),
        mongo_collection=COLLECTION,
        pg_table=f"fidelity_{next(_tables)}",
        backend=backend,
        writer=writer,
        workers=2,
        batch_size=8,  # several batches: every worker writes some
    )


async def inferred(settings: Settings, *, nested: Nested = "jsonb") -> TableMapping:
    """The mapping ``migrationkit infer --all`` writes for the collection."""
    assert settings.mongo_uri is not None
    inference = await infer_collection(
        settings, settings.mongo_uri.get_secret_value(), sample=None, nested=nested
    )
    return inference.mapping


@dataclass(frozen=True)
class Landed:
    """One document as PostgreSQL holds it: restored, and its catch-all decoded."""

    restored: dict[str, Any]
    catch_all: dict[str, Any]


async def read_back(settings: Settings, mapping: TableMapping, seeded: Seeded) -> dict[str, Landed]:
    """Every seeded document, by role, restored from its rows."""
    keys = {role: seeded.key(role) for role in seeded.documents}
    assert settings.pg_dsn is not None
    connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        table = TableRepository(connection, mapping=mapping)
        rows = await table.rows_for(list(keys.values()))
        children = await table.child_rows_for(list(keys.values()))
    finally:
        await connection.close()
    landed = {}
    for role, key in keys.items():
        row = rows[key]
        own = {name: [r for r in found if r[0] == key] for name, found in children.items()}
        catch_all: Any = row[-1] if mapping.catch_all else None  # jsonb text
        extra = from_jsonb(catch_all) if catch_all is not None else {}
        landed[role] = Landed(restore_document(mapping, row, own), extra)
    return landed


def at(value: Any, path: Sequence[str | int]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _ABSENT
            value = value[step]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return _ABSENT
    return value


def outcome(
    landed: Landed, path: Sequence[str | int], source: Any, *, key_order: bool = True
) -> str:
    """The fidelity table's words: ``exact`` (in its column), ``set aside`` (its column
    NULL, the catch-all exact), or ``differs``. Without ``key_order``, objects compare
    regardless of it (flattened objects' keys become columns, which do not keep it)."""
    restored = at(landed.restored, path)
    if restored is _ABSENT:
        return "missing"
    if not same_value(restored, source, key_order=key_order):
        return "differs"
    kept = at(landed.catch_all, path)  # the whole value, not the nulls a flattened one records
    if source is not None and kept is not _ABSENT and same_value(kept, source, key_order=key_order):
        return "set aside"
    return "exact"


def outcomes(
    seeded: Seeded, landed: dict[str, Landed], role: str | None, *, key_order: bool = True
) -> dict[str, str]:
    """Each sample's outcome: in its own document (``role=None``), or in a nested one."""
    return {
        label: outcome(
            landed[role or label],
            path_of(role or label, label, index),
            VALUES[label],
            key_order=key_order,
        )
        for index, label in enumerate(seeded.labels)
    }


def column_outcomes(fidelity: dict[str, Fidelity], seeded: Seeded, writer: str) -> dict[str, str]:
    """What the fidelity table says each sample's default column gives back."""
    return {label: fidelity[label].column[writer] for label in seeded.labels}


def differing_fields(
    landed: dict[str, Landed], seeded: Seeded, *, key_order: bool = True
) -> dict[str, list[str]]:
    """By role, the top-level fields whose restored value is not the source's."""
    found = {}
    for role, document in seeded.documents.items():
        restored = landed[role].restored
        fields = sorted(
            key
            for key in (set(document) - {"_id"}) | set(restored)
            if key not in restored
            or key not in document
            or not same_value(restored[key], document[key], key_order=key_order)
        )
        if fields:
            found[role] = fields
    return found


def same_value(left: Any, right: Any, *, key_order: bool) -> bool:
    if key_order:
        return same_bson(left, right)
    return same_bson(sorted_keys(left), sorted_keys(right))


def sorted_keys(value: Any) -> Any:
    """Objects compared regardless of key order (keys that became columns lose it)."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


async def drop(settings: Settings, mapping: TableMapping) -> None:
    assert settings.pg_dsn is not None
    connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        await drop_target(connection, mapping)
    finally:
        await connection.close()


async def migrate_and_verify(
    settings: Settings, mapping: TableMapping, ranges: RangeOptions | None, count: int
) -> None:
    report = await migrate(settings, mapping=mapping, ranges=ranges)
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (count, count, 0)
    checked = await verify(settings, mapping=mapping)
    assert checked.ok, checked.summary()
    assert checked.table_rows == count


# -- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table() -> Any:
    """Each run's outcomes, printed at the end as one table (``pytest -s`` shows it)."""
    found: dict[str, dict[str, str]] = {}
    yield found
    if found:
        print("\n" + format_runs(found))


def format_runs(found: Mapping[str, Mapping[str, str]]) -> str:
    """Markdown: a line per sample, each outcome and the runs (backend, writer) that gave it."""
    labels = list(next(iter(found.values())))
    lines = [f"| sample | outcome in {len(found)} runs |", "|---|---|"]
    for label in labels:
        runs: dict[str, list[str]] = {}
        for run, outcomes in found.items():
            runs.setdefault(outcomes[label], []).append(run)
        cells = [
            f"{outcome}: {'every run' if len(names) == len(found) else ', '.join(names)}"
            for outcome, names in runs.items()
        ]
        lines.append(f"| {label} | {'; '.join(cells)} |")
    return "\n".join(lines)


def test_the_embedded_server_refuses_only_the_samples_it_cannot_decode(seeded: Seeded) -> None:
    assert seeded.refused <= EMBEDDED_SERVER_REFUSES
    assert len(seeded.documents) == len(SAMPLES) - len(seeded.refused) + len(NESTED_ROLES)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("way", list(BACKENDS))
async def test_every_sample_lands_as_the_fidelity_table_says(
    servers: Endpoints,
    seeded: Seeded,
    fidelity: dict[str, Fidelity],
    table: dict[str, dict[str, str]],
    way: str,
    writer: str,
) -> None:
    backend, ranges = BACKENDS[way]
    settings = settings_for(servers, backend=backend, writer=writer)
    mapping = await inferred(settings)  # objects and arrays: jsonb, the default
    try:
        await migrate_and_verify(settings, mapping, ranges, len(seeded.documents))
        landed = await read_back(settings, mapping, seeded)
    finally:
        await drop(settings, mapping)
    own = outcomes(seeded, landed, None)
    table[f"{way} {writer}"] = own
    assert own == column_outcomes(fidelity, seeded, writer)
    for role in NESTED_ROLES:  # jsonb keeps every sample, key order included
        assert set(outcomes(seeded, landed, role).values()) == {"exact"}, role
    differs = [label for label, found in own.items() if found == "differs"]
    assert differing_fields(landed, seeded) == {label: [field_of(label)] for label in differs}


#: Flattened objects and child tables: every backend with ``copy``, every writer on asyncio.
CHILD_RUNS = [(way, "copy") for way in BACKENDS] + [("asyncio", w) for w in WRITERS[1:]]


@pytest.mark.parametrize(("way", "writer"), CHILD_RUNS)
async def test_flattened_samples_and_child_tables_land_as_the_fidelity_table_says(
    servers: Endpoints, seeded: Seeded, fidelity: dict[str, Fidelity], way: str, writer: str
) -> None:
    backend, ranges = BACKENDS[way]
    settings = settings_for(servers, backend=backend, writer=writer)
    mapping = await inferred(settings, nested="child")  # sub-documents flattened, arrays rows
    assert mapping.children, "the arrays of the collection become child tables"
    try:
        await migrate_and_verify(settings, mapping, ranges, len(seeded.documents))
        landed = await read_back(settings, mapping, seeded)
    finally:
        await drop(settings, mapping)
    expected = column_outcomes(fidelity, seeded, writer)  # each sample in a column of its type
    assert outcomes(seeded, landed, None, key_order=False) == expected
    assert outcomes(seeded, landed, "sub-document", key_order=False) == expected
    for role in ("array", "array of sub-documents"):
        assert set(outcomes(seeded, landed, role).values()) == {"exact"}, role
    differs = [label for label, found in expected.items() if found == "differs"]
    assert differing_fields(landed, seeded, key_order=False) == {
        **{label: [field_of(label)] for label in differs},
        **({"sub-document": ["samples"]} if differs else {}),
    }


#: One value changed in the target, where ``verify`` must still see it: ``(the document's
#: role, the column by its source path (None: the catch-all), the new value in SQL, what
#: the difference is said to be in, after the column's name: inside jsonb, the path)``.
EDITS = {
    "-0.0 becomes 0.0": ("double -0.0", "t_double", "0", ""),
    "1.50 becomes 1.5, the same number": ("decimal 1.50", "t_decimal", "1.5", ""),
    "a date a millisecond later": ("date ms", "t_date", "{column} + interval '1 millisecond'", ""),
    "a value set aside in the catch-all": (
        "string NUL",
        None,
        """jsonb_set({column}, '{t_string,$escaped}', '"a\\\\x00c"')""",
        ".t_string",
    ),
    "a long deep in a jsonb sub-document": (
        "sub-document",
        "samples",
        """jsonb_set({column}, '{long max,$numberLong}', '"9223372036854775806"')""",
        ".long max",
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
async def test_verify_names_the_document_and_column_of_one_changed_value(
    servers: Endpoints, seeded: Seeded, edit: str
) -> None:
    role, path, value, inside = EDITS[edit]
    settings = settings_for(servers)
    mapping = await inferred(settings)
    column = next(c.name for c in mapping.columns if c.path == path) if path else "_extra"
    key = seeded.key(role)
    assert settings.pg_dsn is not None
    try:
        await migrate_and_verify(settings, mapping, None, len(seeded.documents))
        connection = await asyncpg.connect(settings.pg_dsn.get_secret_value())
        try:
            quoted = quote_identifier(column)
            new = value.replace("{column}", quoted)
            changed = await connection.execute(  # SQL's = says -0.0 = 0.0: compare the text
                f"UPDATE {quote_identifier(mapping.table)} SET {quoted} = {new} "
                f"WHERE mongo_id = $1 AND {quoted}::text IS DISTINCT FROM ({new})::text",
                key,
            )
        finally:
            await connection.close()
        assert changed == "UPDATE 1"
        report = await verify(settings, mapping=mapping)
    finally:
        await drop(settings, mapping)
    assert not report.ok
    assert [difference.mongo_id for difference in report.differences] == [key]
    assert report.differences[0].problem.startswith(f"{column}{inside} is ")
