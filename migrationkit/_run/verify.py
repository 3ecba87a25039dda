"""``verify``: compare every value of the source with the target, not only counts.

For each range of documents in ``_id`` order, the source says what the target
should hold: the mapping's rows (the parent row and its child tables' rows) or, for a
document the mapping rejects, an entry in the dead-letter table. The target must hold
each ``_id`` exactly once, in one of the two, and a checksum of each range's values
must match — so a changed value in any column, jsonb document or child row is found,
not only a missing row. Values are compared in one form per column type
(:func:`migrationkit._mapping.types.comparable`: doubles by ``repr``, numerics by exact
decimal text, instants in UTC, jsonb by its BSON values). Ranges whose checksums differ
are compared document by document to name the first differences.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from migrationkit._errors import ConfigurationError
from migrationkit._mapping.files import resolve_mapping
from migrationkit._mapping.normalize import transform_for
from migrationkit._mapping.spec import ChildTable, TableMapping
from migrationkit._mapping.types import comparable, from_jsonb, same_bson
from migrationkit._normalize.rows import Row, Transform, mongo_key, prepare_batch
from migrationkit._run.inference import target_table
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.repository import UserMongoRepository
from migrationkit._target.connection import ReconnectingConnection
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.mappings import MappingRecordRepository
from migrationkit._target.table import TableRepository
from migrationkit._target.tables import count_target

RANGE_SIZE = 10_000
MAX_DIFFERENCES = 20


@dataclass
class Difference:
    mongo_id: str
    problem: str

    def __str__(self) -> str:
        return f"_id {self.mongo_id}: {self.problem}"


@dataclass
class VerifyReport:
    """The verdict: ``ok`` when every document is where it should be, with its values."""

    source_documents: int = 0
    table_rows: int = 0
    rejected_rows: int = 0
    ranges: int = 0
    ranges_differing: int = 0
    extra_rows: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ranges_differing == 0 and self.extra_rows == 0

    def summary(self) -> str:
        head = (
            f"{self.source_documents:,} source documents; {self.table_rows:,} rows in the table, "
            f"{self.rejected_rows:,} set aside; {self.ranges:,} ranges of up to "
            f"{RANGE_SIZE:,} checked"
        )
        if self.ok:
            return f"OK: {head}; every _id is there once, every checksum matches."
        lines = [f"MISMATCH: {head}; {self.ranges_differing} ranges differ."]
        if self.extra_rows:
            lines.append(f"{self.extra_rows:,} rows in the table have no source document.")
        lines += [f"  {difference}" for difference in self.differences]
        return "\n".join(lines)


#: A document as the target holds it: its row, then each child table's rows, all in
#: comparable form.
Image = tuple[tuple[Any, ...], tuple[tuple[tuple[Any, ...], ...], ...]]


@dataclass(frozen=True)
class _Shape:
    """The column types of a mapping's tables, to put any value in comparable form."""

    mapping: TableMapping

    def row(self, row: Row) -> tuple[Any, ...]:
        return _comparable_row(self.types(None), row)

    def types(self, child: ChildTable | None) -> list[str]:
        """The column types of the parent table's rows (``None``) or of a child's."""
        columns = self.mapping.columns if child is None else child.columns
        catch_all = self.mapping.catch_all if child is None else child.catch_all
        keys = ["text"] if child is None else ["text", "integer"]
        return [*keys, *(c.pg_type for c in columns), *(["jsonb"] if catch_all else [])]

    def images(self, rows: dict[str, Row], children: dict[str, list[Row]]) -> dict[str, Image]:
        """Each document's comparable image, by key."""
        child_rows: list[dict[str, list[tuple[Any, ...]]]] = []
        for child in self.mapping.children:
            by_key: dict[str, list[tuple[Any, ...]]] = {}
            types = self.types(child)
            for row in children.get(child.table, ()):
                by_key.setdefault(row[0], []).append(_comparable_row(types, row))
            child_rows.append(by_key)
        return {
            key: (self.row(row), tuple(tuple(sorted(c.get(key, ()), key=repr)) for c in child_rows))
            for key, row in rows.items()
        }


def _comparable_row(types: Sequence[str], row: Row) -> tuple[Any, ...]:
    return tuple(comparable(pg_type, value) for pg_type, value in zip(types, row, strict=True))


def checksum(images: Sequence[Image]) -> str:
    """Order-independent digest of documents' images: equal sets, equal digests."""
    digest = hashlib.sha256()
    for text in sorted(repr(image) for image in images):
        digest.update(text.encode())
    return digest.hexdigest()


async def verify(
    settings: Settings,
    *,
    endpoints: Endpoints | None = None,
    mapping: TableMapping | None = None,
    transform: Transform | None = None,
    range_size: int = RANGE_SIZE,
) -> VerifyReport:
    """Check the target against the source, range by range; see the module docstring."""
    if endpoints is None:
        endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    report = VerifyReport()
    async with (
        MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client,
        ReconnectingConnection(endpoints.pg_dsn, policy=settings.retry_policy) as postgres,
    ):
        if mapping is None:
            mapping = await postgres.run(
                lambda db: _mapping_to_verify(db, settings), what="reading the mapping"
            )
        transform = transform or transform_for(mapping)
        shape = _Shape(mapping)
        source = UserMongoRepository(client[settings.mongo_database][settings.mongo_collection])
        found_in_table = 0
        async for batch in source.iter_batches(range_size):
            prepared = prepare_batch(batch, transform)
            expected = shape.images({row[0]: row for row in prepared.rows}, prepared.children)
            expected_rejected = {r.mongo_id for r in prepared.rejections}
            keys = [*expected, *expected_rejected]
            actual, rejected, set_aside = await postgres.run(
                lambda db, keys=keys: _target_range(db, shape, keys),  # type: ignore[misc]
                what="reading the target",
            )
            report.source_documents += len(batch)
            report.ranges += 1
            found_in_table += len(actual)
            # A valid row that PostgreSQL refused is rightly set aside, not missing.
            refused = (set(rejected) & expected.keys()) - actual.keys()
            wanted = [image for key, image in expected.items() if key not in refused]
            altered = _altered_dead_letters(prepared.documents, set_aside)
            if (
                checksum(list(actual.values())) == checksum(wanted)
                and set(rejected) - refused == expected_rejected
                and not altered
            ):
                continue
            report.ranges_differing += 1
            _describe(report, mapping, expected, expected_rejected, actual, set(rejected))
            room = MAX_DIFFERENCES - len(report.differences)
            report.differences.extend(altered[: max(room, 0)])
        report.table_rows, report.rejected_rows = await postgres.run(
            lambda db: _counts(db, mapping), what="counting the target"
        )
        report.extra_rows = report.table_rows - found_in_table
    return report


async def _mapping_to_verify(db: asyncpg.Connection, settings: Settings) -> TableMapping:
    """The declared mapping, else the one recorded when the table was written."""
    choice = resolve_mapping(settings, config_mappings={})
    if choice.mapping is not None:
        return choice.mapping
    table = target_table(settings)
    recorded = await MappingRecordRepository(db).load(table)
    if recorded is None:
        raise ConfigurationError(
            f"no mapping is declared for {settings.mongo_collection} and none is recorded for "
            f"table {table}: pass --mapping (the file `migrationkit infer` wrote)"
        )
    return recorded


async def _target_range(
    db: asyncpg.Connection, shape: _Shape, keys: list[str]
) -> tuple[dict[str, Image], list[str], dict[str, Any]]:
    """The range's rows as images, the keys set aside, and the documents set aside."""
    table = TableRepository(db, mapping=shape.mapping)
    images = shape.images(await table.rows_for(keys), await table.child_rows_for(keys))
    set_aside = await DeadLetterRepository(db, table=shape.mapping.table).documents_for(keys)
    return images, list(set_aside), set_aside


def _altered_dead_letters(
    documents: Sequence[Mapping[str, Any]], set_aside: dict[str, Any]
) -> list[Difference]:
    """Documents set aside that are not, value for value, the source document."""
    return [
        Difference(key, "set aside, but the stored document differs from the source")
        for document in documents
        if (key := mongo_key(document.get("_id"))) in set_aside
        and not same_bson(set_aside[key], dict(document))
    ]


async def _counts(db: asyncpg.Connection, mapping: TableMapping) -> tuple[int, int]:
    counts = await count_target(db, mapping)
    return counts.written, counts.rejected


def _describe(
    report: VerifyReport,
    mapping: TableMapping,
    expected: dict[str, Image],
    expected_rejected: set[str],
    actual: dict[str, Image],
    rejected: set[str],
) -> None:
    """Name the differences in one range (a valid row PostgreSQL refused is fine)."""
    names, types = mapping.column_names, _Shape(mapping).types(None)
    found: list[Difference] = []
    for key, image in expected.items():
        if key in actual and key in rejected:
            found.append(Difference(key, "both in the table and set aside"))
        elif key in actual and actual[key] != image:
            (got_row, got_children), (want_row, want_children) = actual[key], image
            changed = [
                _changed(column, pg_type, got, want)
                for column, pg_type, got, want in zip(names, types, got_row, want_row, strict=True)
                if got != want
            ]
            changed += [
                f"{child.table}: {len(got)} rows, source says {len(want)} (or values differ)"
                for child, got, want in zip(
                    mapping.children, got_children, want_children, strict=True
                )
                if got != want
            ]
            found.append(Difference(key, "; ".join(changed)))
        elif key not in actual and key not in rejected:
            found.append(Difference(key, "missing from the table"))
    for key in expected_rejected:
        if key in actual:
            found.append(Difference(key, "in the table, but the source document is invalid"))
        elif key not in rejected:
            found.append(Difference(key, "invalid in the source, but not set aside"))
    room = MAX_DIFFERENCES - len(report.differences)
    report.differences.extend(found[: max(room, 0)])


#: How much of a value a difference shows.
SHOWN_CHARACTERS = 80
_ABSENT: Any = object()


def _changed(column: str, pg_type: str, got: Any, want: Any) -> str:
    """One column's difference; inside a jsonb value, the first path that differs."""
    if pg_type == "jsonb" and got is not None and want is not None:
        found = first_difference(from_jsonb(got), from_jsonb(want))
        if found is not None:
            path, inner_got, inner_want = found
            return f"{column}{path} is {_shown(inner_got)}, source says {_shown(inner_want)}"
    return f"{column} is {_shown(got)}, source says {_shown(want)}"


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "missing"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


def first_difference(got: Any, want: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first place two BSON values differ: ``(path, got, want)``, or ``None``.

    Paths read ``.key`` and ``[index]``; a key one side lacks is ``missing`` there; the
    same keys in another order (BSON keeps order) differ at the object itself.
    """
    if isinstance(got, Mapping) and isinstance(want, Mapping):
        for key, value in want.items():
            inner = first_difference(got.get(key, _ABSENT), value, f"{path}.{key}")
            if inner is not None:
                return inner
        extra = next((key for key in got if key not in want), None)
        if extra is not None:
            return f"{path}.{extra}", got[extra], _ABSENT
        return None if list(got) == list(want) else (path, list(got), list(want))
    if isinstance(got, list) and isinstance(want, list):
        for index, (left, right) in enumerate(zip(got, want, strict=False)):
            inner = first_difference(left, right, f"{path}[{index}]")
            if inner is not None:
                return inner
        if len(got) != len(want):
            return f"{path}.length", len(got), len(want)
        return None
    if got is _ABSENT or want is _ABSENT:
        return path, got, want
    return None if same_bson(got, want) else (path, got, want)


def run_verify(settings: Settings, **options: Any) -> VerifyReport:
    """Synchronous :func:`verify`, for scripts."""
    return asyncio.run(verify(settings, **options))
