"""Infer a :class:`TableMapping` from a sample of a collection, and say why.

Two steps, both pure. :class:`FieldStats` walks decoded documents once and keeps,
per path, how often it is present and which BSON types it holds (memory stays
bounded: a capped number of keys per object and of paths overall). Then
:func:`infer_mapping` turns those statistics into a mapping a person reviews, and an
:class:`InferenceReport` with one line per field: presence, types, the column
chosen and the reason, and every warning.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from migrationkit._mapping.spec import (
    BSON_TYPES,
    KIT_COLUMNS,
    MAX_COLUMNS,
    MAX_IDENTIFIER_BYTES,
    ChildTable,
    Column,
    TableMapping,
    join_path,
)
from migrationkit._mapping.toml import mapping_to_toml
from migrationkit._mapping.types import bson_type, widen

#: Path part for "each element of this array" (BSON keys cannot contain NUL).
ITEMS = "\x00[]"
#: Path part for "the value under any key of this map" (keys that look like values).
MAP_VALUES = "\x00*"

Path = tuple[str, ...]

# Keys that are data, not field names: ids, numbers, dates, hashes.
_VALUE_LIKE_KEYS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ObjectId hex", re.compile(r"[0-9a-fA-F]{24}")),
    ("UUID", re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")),
    ("number", re.compile(r"[+-]?\d+(?:\.\d+)?")),
    (
        "ISO date",
        re.compile(
            r"\d{4}-\d{2}(?:-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?)?"
        ),
    ),
    ("hash", re.compile(r"(?=[a-fA-F]*\d)[0-9a-fA-F]{16,}")),
)


def value_like_kind(key: str) -> str | None:
    """What ``key`` looks like if it is a value (``"ObjectId hex"``, ``"ISO date"``…), else None."""
    for kind, pattern in _VALUE_LIKE_KEYS:
        if pattern.fullmatch(key):
            return kind
    return None


def display_path(path: Path) -> str:
    """``("a", ITEMS, "b")`` as ``a[].b``, map values as ``a.*``; dots in keys escaped."""
    text = ""
    for part in path:
        if part == ITEMS:
            text += "[]"
        else:
            key = "*" if part == MAP_VALUES else join_path((part,))
            text += f".{key}" if text else key
    return text


@dataclass
class PathStats:
    """What one path held across the documents walked (mutable while collecting)."""

    documents: int = 0
    """Documents in which the path occurs at least once."""
    occurrences: int = 0
    """Values seen (more than ``documents`` under arrays)."""
    types: Counter[str] = field(default_factory=Counter)
    """BSON type alias → values of that type (``null`` is a type; missing is absence)."""
    min_length: int | None = None
    max_length: int = 0
    total_length: int = 0
    """Array lengths (``types["array"]`` arrays)."""
    total_keys: int = 0
    """Keys over all objects at this path (``types["object"]`` objects)."""
    keys_overflowed: bool = False
    """More distinct keys than the per-object cap; the rest were counted, not followed."""
    value_like_keys: dict[str, str] = field(default_factory=dict)
    """Distinct keys that look like values (up to the cap) → their kind (``"UUID"``…)."""
    value_like_occurrences: int = 0
    """Keys, over all objects here, that look like values."""
    children: dict[str, PathStats] = field(default_factory=dict)
    """Sub-keys in first-seen order; ``ITEMS`` for array elements, ``MAP_VALUES``."""
    last_document: int = field(default=-1, repr=False)

    @property
    def objects(self) -> int:
        return self.types["object"]

    @property
    def non_null(self) -> Counter[str]:
        """The types seen, without ``null``."""
        return Counter({name: count for name, count in self.types.items() if name != "null"})

    @property
    def distinct_keys(self) -> int:
        """Distinct sub-keys seen (a lower bound when ``keys_overflowed``)."""
        named = len(self.children) - (MAP_VALUES in self.children) - (ITEMS in self.children)
        return named + len(self.value_like_keys)

    @property
    def mean_keys(self) -> float:
        return self.total_keys / self.objects if self.objects else 0.0

    @property
    def elements(self) -> PathStats | None:
        """Statistics of this array's elements (None if every array was empty)."""
        return self.children.get(ITEMS)

    @property
    def mean_length(self) -> float:
        arrays = self.types["array"]
        return self.total_length / arrays if arrays else 0.0


class FieldStats:
    """Per-path statistics over a stream of documents, in one pass and bounded memory.

    ``max_keys`` caps the distinct keys followed per nested object (a map keyed by
    ids would otherwise grow a path per id); ``max_paths`` caps paths overall.
    Keys that look like values are never followed one by one: their values are
    pooled under one ``MAP_VALUES`` path.
    """

    def __init__(self, *, max_keys: int = 256, max_paths: int = 20_000) -> None:
        self.root = PathStats()
        self.max_keys = max_keys
        self.max_paths = max_paths
        self.paths = 0
        self.untracked_values = 0
        """Values not examined because their path was new after ``max_paths`` paths."""

    @property
    def documents(self) -> int:
        return self.root.documents

    @classmethod
    def collect(cls, documents: Iterable[Mapping[str, Any]], **limits: int) -> FieldStats:
        stats = cls(**limits)
        for document in documents:
            stats.add(document)
        return stats

    def add(self, document: Mapping[str, Any]) -> None:
        number = self.root.documents
        self._record(self.root, document, number)

    def get(self, path: Path) -> PathStats | None:
        node: PathStats | None = self.root
        for part in path:
            if node is None:
                return None
            node = node.children.get(part)
        return node

    def _record(self, node: PathStats, value: Any, number: int) -> None:
        if node.last_document != number:
            node.last_document = number
            node.documents += 1
        node.occurrences += 1
        kind = bson_type(value)
        node.types[kind] += 1
        if kind == "object":
            self._record_object(
                node, value if isinstance(value, Mapping) else value.as_doc(), number
            )
        elif kind == "array":
            self._record_array(node, value, number)

    def _record_object(self, node: PathStats, value: Mapping[str, Any], number: int) -> None:
        node.total_keys += len(value)
        is_root = node is self.root
        for key, item in value.items():
            child = node.children.get(key)
            if child is None:
                child = self._new_child(node, key, is_root=is_root)
                if child is None:
                    continue
            self._record(child, item, number)

    def _record_array(self, node: PathStats, value: list[Any], number: int) -> None:
        length = len(value)
        node.total_length += length
        node.max_length = max(node.max_length, length)
        node.min_length = length if node.min_length is None else min(node.min_length, length)
        if not value:
            return
        elements = node.children.get(ITEMS) or self._adopt(node, ITEMS)
        if elements is None:
            return
        for item in value:
            self._record(elements, item, number)

    def _new_child(self, node: PathStats, key: str, *, is_root: bool) -> PathStats | None:
        # A key seen for the first time: follow it, pool it with the map's values,
        # or (past a cap) only count it.
        kind = node.value_like_keys.get(key) or value_like_kind(key)
        if kind is not None:
            node.value_like_occurrences += 1
            if len(node.value_like_keys) < self.max_keys:
                node.value_like_keys[key] = kind
            else:
                node.keys_overflowed = True
            return node.children.get(MAP_VALUES) or self._adopt(node, MAP_VALUES)
        if not is_root and len(node.children) >= self.max_keys:
            node.keys_overflowed = True
            return None
        return self._adopt(node, key)

    def _adopt(self, node: PathStats, key: str) -> PathStats | None:
        if self.paths >= self.max_paths:
            self.untracked_values += 1
            return None
        self.paths += 1
        child = node.children[key] = PathStats()
        return child


# --- column names ---------------------------------------------------------------------


def fold_name(text: str) -> str:
    """A lower-case identifier from a field name: runs of anything but letters, digits
    and ``_`` become one ``_``; a leading digit gets a ``_`` in front."""
    folded = re.sub(r"\W+", "_", text.casefold())
    # Trim only the underscores this made; a field's own leading "_" is part of its name.
    folded = folded.rstrip("_") if not text.endswith("_") else folded
    if not text.startswith("_"):
        folded = folded.lstrip("_")
    if not folded:
        return "field"
    return f"_{folded}" if folded[0].isdigit() else folded


def stable_suffix(seed: str) -> str:
    """Six hex digits that depend only on ``seed``: the same path always gets the same name."""
    return hashlib.blake2b(seed.encode("utf-8", "surrogatepass"), digest_size=3).hexdigest()


def with_suffix(name: str, seed: str) -> str:
    """``name_<hash>``, its stem cut (at a character boundary) to fit 63 bytes."""
    suffix = f"_{stable_suffix(seed)}"
    room = MAX_IDENTIFIER_BYTES - len(suffix)
    stem = name.encode("utf-8")[:room].decode("utf-8", "ignore")
    return stem + suffix


def assign_names(
    wanted: Iterable[tuple[Path, str, str]], *, reserved: Iterable[str]
) -> dict[Path, tuple[str, str | None]]:
    """Unique, safe column names: ``(path, raw name, folded name)`` → ``(name, warning)``.

    A name that folds to one already taken — by the kit's own columns, or by another
    field — gets a stable hash suffix, and so does one longer than 63 bytes. When several
    fields fold to one name, the field spelt exactly so keeps it (``name`` over ``Name``).
    """
    items = list(wanted)
    taken = set(reserved)
    claims: dict[str, list[tuple[Path, str]]] = {}
    for path, raw, folded in items:
        claims.setdefault(folded, []).append((path, raw))
    keeper: dict[str, Path] = {}
    for folded, claimants in claims.items():
        if folded in taken or len(folded.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            continue
        exact = [path for path, raw in claimants if raw == folded]
        keeper[folded] = exact[0] if exact else claimants[0][0]
    names: dict[Path, tuple[str, str | None]] = {}
    for path, raw, folded in items:
        seed = "\x00".join(path)
        if keeper.get(folded) == path:
            names[path] = (folded, None)
            taken.add(folded)
            continue
        name = with_suffix(folded, seed)
        while name in taken:  # a hash collision: vanishingly rare, still never a duplicate
            seed += "\x00"
            name = with_suffix(folded, seed)
        taken.add(name)
        names[path] = (
            name,
            _rename_reason(raw, folded, name, reserved=set(reserved), claims=claims),
        )
    return names


def _rename_reason(
    raw: str, folded: str, name: str, *, reserved: set[str], claims: Mapping[str, list[Any]]
) -> str:
    if folded in reserved:
        return f"{raw!r} would be {folded!r}, one of the kit's own columns: renamed {name!r}"
    if len(folded.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        size = len(folded.encode("utf-8"))
        return f"{raw!r} is {size} bytes, over PostgreSQL's 63: truncated to {name!r}"
    others = " and ".join(repr(other) for _, other in claims[folded] if other != raw)
    return f"{raw!r} folds to {folded!r}, as {others} does: renamed {name!r}"


# --- inference ------------------------------------------------------------------------

Nested = Literal["jsonb", "flatten", "child"]
Override = Literal["jsonb", "flatten", "child", "drop"]

#: An object whose distinct keys number more than this, and ``MAP_KEY_SPREAD`` times the
#: keys of one object on average, has a key set that varies: a map, not a record.
MAP_MIN_DISTINCT_KEYS = 20
MAP_KEY_SPREAD = 3


@dataclass(frozen=True, slots=True)
class FieldReport:
    """One line of the report: a field, what the sample held, and what it became.

    ``store`` is ``column`` (typed), ``jsonb``, ``flatten`` (its sub-fields are
    columns), ``child`` (a child table), ``drop``, ``key`` (``_id``) or ``extra`` (no
    column: it lands in the catch-all).
    """

    path: str
    table: str
    present: int
    presence: float
    types: Mapping[str, int]
    store: str
    column: str | None
    pg_type: str | None
    nullable: bool
    reason: str
    warnings: tuple[str, ...]
    details: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "table": self.table,
            "present": self.present,
            "presence": round(self.presence, 2),
            "types": dict(self.types),
            "store": self.store,
            "column": self.column,
            "pg_type": self.pg_type,
            "nullable": self.nullable,
            "reason": self.reason,
            "warnings": list(self.warnings),
            **({"details": dict(self.details)} if self.details else {}),
        }


@dataclass(frozen=True, slots=True)
class InferenceReport:
    """What the sample held, field by field, what each became and why, and the warnings."""

    collection: str
    table: str
    documents: int
    sampled: int | None
    total: int | None
    nested: Nested
    catch_all: str | None
    fields: tuple[FieldReport, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def scope(self) -> str:
        """``500 of 29,000 documents (1.7%), a sample of up to 500``, or every document."""
        of = "" if self.total is None else f" of {self.total:,}"
        share = f" ({100 * self.documents / self.total:.1f}%)" if self.total else ""
        how = "every document" if self.sampled is None else f"a sample of up to {self.sampled:,}"
        return f"{self.documents:,}{of} documents{share}, {how}"

    def format(self) -> str:
        """The report as text: a header, one line per field (warnings under it), a footer."""
        lines = [
            f"Inferred mapping: collection {self.collection!r} -> table {self.table!r}",
            f"Read: {self.scope}; nested={self.nested!r}, catch-all {self.catch_all!r}",
            "",
        ]
        rows = [("path", "present", "BSON types", "column", "store", "why")]
        rows += [_format_row(line, main=self.table) for line in self.fields]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for number, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
            lines.append("  ".join([*cells, row[5]]).rstrip())
            if number:
                lines += [f"    ! {warning}" for warning in self.fields[number - 1].warnings]
        lines += ["", f"Warnings ({len(self.warnings)}):"]
        lines += [f"  - {warning}" for warning in self.warnings] or ["  (none)"]
        lines += ["", "Notes:", *(f"  - {note}" for note in self.notes)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (``migrationkit infer --json``)."""
        return {
            "collection": self.collection,
            "table": self.table,
            "documents": self.documents,
            "sampled": self.sampled,
            "total": self.total,
            "nested": self.nested,
            "catch_all": self.catch_all,
            "fields": [line.to_dict() for line in self.fields],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def _format_row(line: FieldReport, *, main: str) -> tuple[str, str, str, str, str, str]:
    present = f"{line.presence:5.1f}% {line.present:,}"
    types = ", ".join(f"{name} {count:,}" for name, count in line.types.items())
    if line.store == "child":
        column = f"table {line.table}"
    elif line.column is None:
        column = "-"
    else:
        where = "" if line.table == main else f"{line.table}."
        column = f"{where}{line.column} {line.pg_type}" + ("" if line.nullable else " NOT NULL")
    return (_clip(line.path), present, _clip(types), _clip(column, 56), line.store, line.reason)


def _clip(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True, slots=True)
class Inference:
    """An inferred mapping to review, the report that explains it, and the statistics."""

    mapping: TableMapping
    report: InferenceReport
    stats: FieldStats
    comments: Mapping[str, str] = field(default_factory=dict)
    """Per column (``path``, a child's ``orders[].price``): what the sample held there."""

    def to_toml(self) -> str:
        """The mapping as a ``migrationkit.toml`` table to review, each column annotated."""
        header = (
            f"Inferred by migrationkit from {self.report.scope}; "
            f"{len(self.report.warnings)} warning(s). Review before migrating."
        )
        return mapping_to_toml(self.mapping, comments=self.comments, header=header)


def infer_mapping(
    documents: Iterable[Mapping[str, Any]],
    *,
    collection: str,
    table: str,
    sampled: int | None,
    total: int | None,
    nested: Nested = "jsonb",
    overrides: Mapping[str, Override] | None = None,
    catch_all: str | None = "_extra",
    max_keys: int = 256,
    max_paths: int = 20_000,
) -> Inference:
    """Infer how ``collection``'s documents become rows of ``table``, and report why.

    ``documents`` is the sample (``sampled`` its bound, ``None`` for every document;
    ``total`` the collection's count, if known). Objects and arrays are ``jsonb`` unless
    ``nested`` says ``"flatten"`` (objects become ``a__b`` columns) or ``"child"``
    (flatten, and arrays become child tables); ``overrides`` choose per path
    (``{"address": "flatten", "orders": "child", "password": "drop"}``; elements of an
    array are ``orders[]``). A map keyed by ids, dates or hashes always stays one jsonb
    column. Raises :class:`MappingError` if the mapping is not valid (a table name too
    long, for one).
    """
    stats = FieldStats.collect(documents, max_keys=max_keys, max_paths=max_paths)
    return mapping_from_stats(
        stats,
        collection=collection,
        table=table,
        sampled=sampled,
        total=total,
        nested=nested,
        overrides=overrides,
        catch_all=catch_all,
    )


def mapping_from_stats(
    stats: FieldStats,
    *,
    collection: str,
    table: str,
    sampled: int | None,
    total: int | None,
    nested: Nested = "jsonb",
    overrides: Mapping[str, Override] | None = None,
    catch_all: str | None = "_extra",
) -> Inference:
    """:func:`infer_mapping` on statistics already collected."""
    planner = _Planner(
        stats, table=table, nested=nested, overrides=overrides or {}, catch_all=catch_all
    )
    mapping = planner.mapping(collection).validate()
    report = InferenceReport(
        collection=collection,
        table=table,
        documents=stats.documents,
        sampled=sampled,
        total=total,
        nested=nested,
        catch_all=catch_all,
        fields=tuple(line.freeze(stats.documents) for line in planner.lines),
        warnings=tuple(planner.all_warnings()),
        notes=tuple(_notes(stats, sampled=sampled, total=total, catch_all=catch_all)),
    )
    comments = planner.comments(stats.documents)
    return Inference(mapping=mapping, report=report, stats=stats, comments=comments)


def _notes(
    stats: FieldStats, *, sampled: int | None, total: int | None, catch_all: str | None
) -> Iterator[str]:
    if catch_all is None:
        yield (
            "catch-all off: fields the mapping does not name are dropped at load time, "
            "counted and named in the run's report"
        )
    else:
        yield (
            f"fields the sample did not see (and keys that are not columns) land in the "
            f"catch-all jsonb column {catch_all!r} at load time: nothing is dropped"
        )
    if total is None or stats.documents < total:
        aside = (
            f"goes to {catch_all!r} (the column NULL)" if catch_all else "sets the document aside"
        )
        yield (
            f"types and NOT NULL come from the {stats.documents:,} documents read, not the whole "
            f"collection: at load time a value of another type in a nullable column {aside}; "
            "in a NOT NULL column, or a NOT NULL field missing, it sets the document aside "
            "(a dead-letter row with the reason)"
        )


# The mutable form of a report line while planning (names are given at the end).
@dataclass
class _Line:
    path: str
    node: PathStats
    table: _Table
    store: str = "jsonb"
    column: _ColumnDraft | None = None
    child: _Table | None = None
    reason: str = ""
    warnings: list[str] = field(default_factory=list)

    def freeze(self, documents: int) -> FieldReport:
        column = self.column
        return FieldReport(
            path=self.path,
            table=(self.child or self.table).name,
            present=self.node.documents,
            presence=100 * self.node.documents / documents if documents else 0.0,
            types=dict(self.node.types.most_common()),
            store=self.store,
            column=column.name if column else None,
            pg_type=column.pg_type if column else None,
            nullable=column.nullable if column else True,
            reason=self.reason,
            warnings=tuple(self.warnings),
            details=_details(self.node),
        )


def _details(node: PathStats) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if node.types["array"]:
        elements = node.elements
        details["lengths"] = {
            "min": node.min_length,
            "max": node.max_length,
            "mean": round(node.mean_length, 2),
        }
        details["element_types"] = dict(elements.types.most_common()) if elements else {}
    if node.objects:
        details["keys"] = {
            "distinct": node.distinct_keys,
            "mean": round(node.mean_keys, 2),
            "value_like": len(node.value_like_keys),
            "overflowed": node.keys_overflowed,
        }
    return details


@dataclass(eq=False)
class _ColumnDraft:
    keys: Path
    pg_type: str
    bson_types: tuple[str, ...]
    nullable: bool
    flattened_from: Path | None
    presence: int
    name: str = ""


@dataclass
class _Table:
    name: str
    rows: int
    base: Path
    keys: Path = ()
    columns: list[_ColumnDraft] = field(default_factory=list)
    children: list[_Table] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    line: _Line | None = None


def _ordered(types: Iterable[str]) -> tuple[str, ...]:
    # MongoDB's type order, null last: ("int", "long", "null").
    return tuple(sorted(set(types), key=lambda name: (name == "null", BSON_TYPES.index(name))))


def _counts(types: Mapping[str, int]) -> str:
    return ", ".join(
        f"{name} {count:,}" for name, count in sorted(types.items(), key=lambda item: -item[1])
    )


class _Planner:
    """Decides, field by field, how the sampled shape becomes columns and child tables."""

    def __init__(
        self,
        stats: FieldStats,
        *,
        table: str,
        nested: Nested,
        overrides: Mapping[str, Override],
        catch_all: str | None,
    ) -> None:
        self.stats = stats
        self.table_name = table
        self.nested = nested
        self.overrides = overrides
        self.catch_all = catch_all
        self.reserved = {*KIT_COLUMNS, *((catch_all.casefold(),) if catch_all else ())}
        self.forced_jsonb: set[Path] = set()
        self.global_warnings: list[str] = []
        self.lines: list[_Line] = []
        self.used_overrides: set[str] = set()

    # -- the whole mapping -----------------------------------------------------------

    def mapping(self, collection: str) -> TableMapping:
        main = self._plan_within_column_limit()
        self._name(main)
        return TableMapping(
            collection=collection,
            table=main.name,
            columns=tuple(self._column(draft) for draft in main.columns),
            children=tuple(
                ChildTable(
                    path=join_path(child.keys),
                    table=child.name,
                    columns=tuple(self._column(draft) for draft in child.columns),
                    catch_all=self.catch_all,
                )
                for child in main.children
            ),
            drop=tuple(main.drop),
            catch_all=self.catch_all,
        )

    def all_warnings(self) -> Iterator[str]:
        yield from self.global_warnings
        for line in self.lines:
            yield from (f"{line.path}: {warning}" for warning in line.warnings)
        for path in sorted(set(self.overrides) - self.used_overrides):
            yield f"override {path!r}: no such field in the documents read"

    def comments(self, documents: int) -> dict[str, str]:
        """What each column saw, keyed as :func:`mapping_to_toml` looks comments up."""
        comments = {}
        for line in self.lines:
            draft = line.column
            if draft is None:
                continue
            path = join_path(draft.keys)
            if line.table.base:
                path = f"{join_path(line.table.keys)}[].{path}"
            seen = line.freeze(documents)
            types = ", ".join(f"{name} {count:,}" for name, count in seen.types.items())
            flags = "".join(f"; ! {warning}" for warning in seen.warnings)
            comments[path] = f"{seen.presence:.1f}% present: {types}{flags}"
        return comments

    def _column(self, draft: _ColumnDraft) -> Column:
        return Column(
            path=join_path(draft.keys),
            name=draft.name,
            pg_type=draft.pg_type,
            bson_types=draft.bson_types,
            nullable=draft.nullable,
            on_mismatch="extra" if draft.nullable and self.catch_all else "reject",
        )

    def _plan_within_column_limit(self) -> _Table:
        # Flattening can exceed PostgreSQL's 1,600 columns: fold the widest flattened
        # object back into one jsonb column until every table fits.
        while True:
            main = self._plan()
            widest = self._widest_flattened(main)
            if widest is None:
                break
            path, width = widest
            self.forced_jsonb.add(path)
            self.global_warnings.append(
                f"over PostgreSQL's {MAX_COLUMNS:,} columns: {display_path(path)} "
                f"({width:,} flattened columns) kept as one jsonb column instead"
            )
        for table in (main, *main.children):
            self._trim_to_column_limit(table)
        return main

    def _widest_flattened(self, main: _Table) -> tuple[Path, int] | None:
        best: tuple[Path, int] | None = None
        for table in (main, *main.children):
            if _width(table, self.catch_all) <= MAX_COLUMNS:
                continue
            roots = Counter(c.flattened_from for c in table.columns if c.flattened_from is not None)
            for root, width in roots.items():
                if best is None or width > best[1]:
                    best = (table.base + root, width)
        return best

    def _trim_to_column_limit(self, table: _Table) -> None:
        excess = _width(table, self.catch_all) - MAX_COLUMNS
        if excess <= 0:
            return
        by_presence = sorted(table.columns, key=lambda c: -c.presence)
        dropped = {id(draft) for draft in by_presence[len(table.columns) - excess :]}
        table.columns = [c for c in table.columns if id(c) not in dropped]
        where = f"lands in {self.catch_all!r}" if self.catch_all else "is dropped (counted at load)"
        for line in self.lines:
            if id(line.column) in dropped:
                line.column, line.store = None, "extra"
                line.warnings.append(
                    f"past PostgreSQL's {MAX_COLUMNS:,} columns (among the least present): {where}"
                )
        self.global_warnings.append(
            f"table {table.name!r}: {len(dropped):,} fields over PostgreSQL's {MAX_COLUMNS:,} "
            f"columns are not columns; each {where}"
        )

    # -- fields ------------------------------------------------------------------------

    def _plan(self) -> _Table:
        self.lines = []
        self.used_overrides = set()
        root = self.stats.root
        main = _Table(name=self.table_name, rows=self.stats.documents, base=())
        for key, node in root.children.items():
            if key == MAP_VALUES:
                self._value_like_top_level(main, node)
            elif key == "_id":
                line = self._line(main, ("_id",), node)
                line.store, line.reason = "key", "the document key: column mongo_id (text, unique)"
            else:
                self._field(main, (key,), node, flattened_from=None)
        if self.stats.untracked_values:
            self.global_warnings.append(
                f"{self.stats.untracked_values:,} values under paths beyond the first "
                f"{self.stats.max_paths:,} were not examined; they are not columns"
            )
        return main

    def _line(self, table: _Table, keys: Path, node: PathStats) -> _Line:
        line = _Line(path=display_path(table.base + keys), node=node, table=table)
        self.lines.append(line)
        return line

    def _override(self, path: str) -> Override | None:
        choice = self.overrides.get(path)
        if choice is not None:
            self.used_overrides.add(path)
        return choice

    def _value_like_top_level(self, main: _Table, node: PathStats) -> None:
        line = self._line(main, (MAP_VALUES,), node)
        root = self.stats.root
        line.store = "extra"
        line.reason = "top-level keys that look like values: no column per key"
        where = f"land in {self.catch_all!r}" if self.catch_all else "are dropped (counted at load)"
        line.warnings.append(f"{_value_like_summary(root)}: not a column each; they {where}")

    def _field(
        self, table: _Table, keys: Path, node: PathStats, *, flattened_from: Path | None
    ) -> None:
        line = self._line(table, keys, node)
        choice = self._override(line.path)
        kinds = set(node.non_null)
        if choice == "drop":
            if not table.base:
                table.drop.append(join_path(keys))
                line.store, line.reason = (
                    "drop",
                    "dropped, as the overrides say (counted and named at load)",
                )
                return
            line.warnings.append("'drop' applies to the parent table's fields only: kept")
            choice = None
        if kinds == {"object"}:
            self._object(table, keys, node, line, choice, flattened_from)
        elif kinds == {"array"}:
            self._array(table, keys, node, line, choice, flattened_from)
        else:
            if choice in ("flatten", "child"):
                line.warnings.append(
                    f"{choice!r} needs {'objects' if choice == 'flatten' else 'arrays'}; "
                    f"seen {_counts(node.types)}"
                )
            self._add_column(table, keys, node, line, flattened_from)

    def _add_column(
        self,
        table: _Table,
        keys: Path,
        node: PathStats,
        line: _Line,
        flattened_from: Path | None,
        *,
        why: str = "",
    ) -> None:
        kinds = node.non_null
        widening = widen(kinds)
        if len(kinds) > 1:
            line.warnings.append(f"mixed types ({_counts(kinds)}): {widening.pg_type}")
        nulls = node.types["null"]
        missing = table.rows - node.occurrences
        nullable = bool(nulls or missing)
        draft = _ColumnDraft(
            keys=keys,
            pg_type=widening.pg_type,
            bson_types=_ordered([*kinds, *(["null"] if nulls or not kinds else [])]),
            nullable=nullable,
            flattened_from=flattened_from,
            presence=node.occurrences - nulls,
        )
        table.columns.append(draft)
        line.column = draft
        line.store = "jsonb" if widening.pg_type == "jsonb" else "column"
        rows = "element" if table.base else "document"
        if not nullable:
            presence = f"NOT NULL: in every {rows} read"
        else:
            parts = [
                f"missing in {missing:,}" if missing else "",
                f"null in {nulls:,}" if nulls else "",
            ]
            presence = "nullable: " + ", ".join(part for part in parts if part)
        line.reason = "; ".join(part for part in (why or widening.reason, presence) if part)

    def _object(
        self,
        table: _Table,
        keys: Path,
        node: PathStats,
        line: _Line,
        choice: Override | None,
        flattened_from: Path | None,
    ) -> None:
        map_reason = _map_reason(node, max_keys=self.stats.max_keys)
        if map_reason is not None:
            line.warnings.append(f"{map_reason}: one jsonb column, never a column per key")
            self._add_column(
                table, keys, node, line, flattened_from, why="a map (keys are data): jsonb"
            )
            return
        want = choice or ("flatten" if self.nested in ("flatten", "child") else "jsonb")
        fields = [(key, child) for key, child in node.children.items() if key != MAP_VALUES]
        if choice == "jsonb":
            how = "jsonb, as the overrides say"
        elif want == "child":
            how = "'child' is for arrays: kept as jsonb"
            line.warnings.append(how)
        elif want == "jsonb":
            how = "objects are jsonb by default (nested='flatten' or an override to flatten)"
        elif (table.base + keys) in self.forced_jsonb:
            how = f"flattening it would pass PostgreSQL's {MAX_COLUMNS:,} columns: jsonb"
            line.warnings.append(how)
        elif not fields:
            how = "no field to flatten (always empty): jsonb"
        else:
            self._flatten(table, keys, node, line, fields, flattened_from or keys)
            return
        why = f"object with {node.mean_keys:.1f} keys on average; {how}"
        self._add_column(table, keys, node, line, flattened_from, why=why)

    def _flatten(
        self,
        table: _Table,
        keys: Path,
        node: PathStats,
        line: _Line,
        fields: list[tuple[str, PathStats]],
        flattened_from: Path,
    ) -> None:
        line.store = "flatten"
        line.reason = f"object flattened: its {len(fields):,} fields are {_folded(keys)}__* columns"
        if node.value_like_keys:
            where = f"land in {self.catch_all!r}" if self.catch_all else "are dropped (counted)"
            line.warnings.append(f"{_value_like_summary(node)}: not columns; they {where}")
        for key, child in fields:
            self._field(table, (*keys, key), child, flattened_from=flattened_from)

    def _array(
        self,
        table: _Table,
        keys: Path,
        node: PathStats,
        line: _Line,
        choice: Override | None,
        flattened_from: Path | None,
    ) -> None:
        want = choice or ("child" if self.nested == "child" else "jsonb")
        if want == "flatten":
            line.warnings.append("'flatten' is for objects; an array is jsonb or a child table")
            want = "jsonb"
        elements = node.elements
        if want == "child":
            problem = self._child_problem(table, elements)
            if problem is None and elements is not None:
                self._child(table, keys, elements, line)
                return
            how = f"not a child table: {problem}"
            if choice == "child" or not table.base:  # asked for by name, or a shape to look at
                line.warnings.append(how)
        elif choice == "jsonb":
            how = "jsonb, as the overrides say"
        else:
            how = "arrays are jsonb by default (nested='child' or an override for a child table)"
        content = f"elements {_counts(elements.types)}" if elements else "always empty"
        lengths = f"length {node.min_length}-{node.max_length}"
        why = f"array ({lengths}, {content}); {how}"
        self._add_column(table, keys, node, line, flattened_from, why=why)

    def _child_problem(self, table: _Table, elements: PathStats | None) -> str | None:
        if table.base:
            return "one level of child tables: an array inside an element stays jsonb"
        if elements is None:
            return "every array was empty: no element to infer columns from"
        kinds = set(elements.non_null)
        if kinds == {"object"} and not elements.types["null"]:
            reason = _map_reason(elements, max_keys=self.stats.max_keys)
            return None if reason is None else f"the elements are maps ({reason})"
        if kinds and not kinds & {"object", "array"}:
            return None
        return f"elements are {_counts(elements.types)}: a child table needs objects, or scalars"

    def _child(self, table: _Table, keys: Path, elements: PathStats, line: _Line) -> None:
        child = _Table(
            name="", rows=elements.occurrences, base=(*keys, ITEMS), keys=keys, line=line
        )
        table.children.append(child)
        line.store, line.child = "child", child
        if elements.objects:
            line.reason = (
                f"array of objects: a row per element ({elements.occurrences:,} read), "
                "its fields as columns"
            )
            for key, node in elements.children.items():
                if key != MAP_VALUES:
                    self._field(child, (key,), node, flattened_from=None)
        else:
            line.reason = (
                f"array of scalars: a row per element ({elements.occurrences:,} read), "
                "in a value column"
            )
            self._add_column(child, (), elements, self._line(child, (), elements), None)

    # -- names -------------------------------------------------------------------------

    def _name(self, main: _Table) -> None:
        tables = [
            (child.keys, join_path(child.keys), f"{main.name}__{_folded(child.keys)}")
            for child in main.children
        ]
        names = assign_names(tables, reserved={main.name.casefold()})
        for child in main.children:
            child.name, warning = names[child.keys]
            if warning and child.line is not None:
                child.line.warnings.append(f"table name: {warning}")
        for table in (main, *main.children):
            self._name_columns(table)

    def _name_columns(self, table: _Table) -> None:
        wanted = [(c.keys, join_path(c.keys) or "value", _folded(c.keys)) for c in table.columns]
        names = assign_names(wanted, reserved=self.reserved)
        lines = {id(line.column): line for line in self.lines if line.column is not None}
        for draft in table.columns:
            draft.name, warning = names[draft.keys]
            if warning:
                lines[id(draft)].warnings.append(warning)


def _folded(keys: Path) -> str:
    return "__".join(fold_name(key) for key in keys) or "value"


def _width(table: _Table, catch_all: str | None) -> int:
    return 2 + len(table.columns) + (1 if catch_all else 0)


def _value_like_summary(node: PathStats) -> str:
    kinds = Counter(node.value_like_keys.values())
    more = "+" if node.keys_overflowed else ""
    described = ", ".join(f"{count:,}{more} {kind}" for kind, count in kinds.most_common())
    examples = ", ".join(repr(key) for key in list(node.value_like_keys)[:2])
    return f"keys look like values ({described} keys, e.g. {examples})"


def _map_reason(node: PathStats, *, max_keys: int) -> str | None:
    """Why the object at ``node`` is a map whose keys are data, or None if it is a record."""
    if node.value_like_occurrences * 2 > node.total_keys:
        return _value_like_summary(node)
    distinct = node.distinct_keys
    if node.keys_overflowed:
        return f"more than {max_keys:,} distinct keys (only the first were followed)"
    if distinct > MAP_MIN_DISTINCT_KEYS and distinct >= MAP_KEY_SPREAD * node.mean_keys:
        return (
            f"the key set varies across documents: {distinct:,} distinct keys, "
            f"{node.mean_keys:.1f} per object on average"
        )
    return None
