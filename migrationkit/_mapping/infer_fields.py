"""How each sampled field becomes a column, a flattened object, a child table or jsonb.

:class:`FieldPlanner` walks the statistics' paths and decides per field: the
PostgreSQL type its BSON types widen to, NOT NULL or not, and the warnings a person
should read (mixed types, maps, overrides that do not fit). It drafts tables and
columns; :mod:`migrationkit._mapping.infer_assembly` fits them to PostgreSQL's limits,
names them and makes the :class:`~migrationkit._mapping.spec.TableMapping`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from migrationkit._mapping.column_names import fold_path
from migrationkit._mapping.field_stats import (
    ITEMS,
    MAP_VALUES,
    FieldStats,
    Path,
    PathStats,
    display_path,
    value_like_summary,
    why_a_map,
)
from migrationkit._mapping.infer_report import FieldReport, Nested
from migrationkit._mapping.spec import BSON_TYPES, KIT_COLUMNS, MAX_COLUMNS, join_path
from migrationkit._mapping.types import widen

Override = Literal["jsonb", "flatten", "child", "drop"]


# The mutable form of a report line while planning (names are given at the end).
@dataclass
class FieldLine:
    path: str
    node: PathStats
    table: TableDraft
    store: str = "jsonb"
    column: ColumnDraft | None = None
    child: TableDraft | None = None
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
class ColumnDraft:
    keys: Path
    pg_type: str
    bson_types: tuple[str, ...]
    nullable: bool
    flattened_from: Path | None
    presence: int
    name: str = ""


@dataclass
class TableDraft:
    name: str
    rows: int
    base: Path
    keys: Path = ()
    columns: list[ColumnDraft] = field(default_factory=list)
    children: list[TableDraft] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    line: FieldLine | None = None


def _ordered(types: Iterable[str]) -> tuple[str, ...]:
    # MongoDB's type order, null last: ("int", "long", "null").
    return tuple(sorted(set(types), key=lambda name: (name == "null", BSON_TYPES.index(name))))


def _counts(types: Mapping[str, int]) -> str:
    return ", ".join(
        f"{name} {count:,}" for name, count in sorted(types.items(), key=lambda item: -item[1])
    )


class FieldPlanner:
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
        self.lines: list[FieldLine] = []
        self.used_overrides: set[str] = set()

    def all_warnings(self) -> Iterator[str]:
        yield from self.global_warnings
        for line in self.lines:
            yield from (f"{line.path}: {warning}" for warning in line.warnings)
        for path in sorted(set(self.overrides) - self.used_overrides):
            yield f"override {path!r}: no such field in the documents read"

    # -- fields ------------------------------------------------------------------------

    def plan(self) -> TableDraft:
        self.lines = []
        self.used_overrides = set()
        root = self.stats.root
        main = TableDraft(name=self.table_name, rows=self.stats.documents, base=())
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

    def _line(self, table: TableDraft, keys: Path, node: PathStats) -> FieldLine:
        line = FieldLine(path=display_path(table.base + keys), node=node, table=table)
        self.lines.append(line)
        return line

    def _override(self, path: str) -> Override | None:
        choice = self.overrides.get(path)
        if choice is not None:
            self.used_overrides.add(path)
        return choice

    def _value_like_top_level(self, main: TableDraft, node: PathStats) -> None:
        line = self._line(main, (MAP_VALUES,), node)
        root = self.stats.root
        line.store = "extra"
        line.reason = "top-level keys that look like values: no column per key"
        where = f"land in {self.catch_all!r}" if self.catch_all else "are dropped (counted at load)"
        line.warnings.append(f"{value_like_summary(root)}: not a column each; they {where}")

    def _field(
        self, table: TableDraft, keys: Path, node: PathStats, *, flattened_from: Path | None
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
        table: TableDraft,
        keys: Path,
        node: PathStats,
        line: FieldLine,
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
        draft = ColumnDraft(
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
        table: TableDraft,
        keys: Path,
        node: PathStats,
        line: FieldLine,
        choice: Override | None,
        flattened_from: Path | None,
    ) -> None:
        map_reason = why_a_map(node, max_keys=self.stats.max_keys)
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
        table: TableDraft,
        keys: Path,
        node: PathStats,
        line: FieldLine,
        fields: list[tuple[str, PathStats]],
        flattened_from: Path,
    ) -> None:
        line.store = "flatten"
        line.reason = (
            f"object flattened: its {len(fields):,} fields are {fold_path(keys)}__* columns"
        )
        if node.value_like_keys:
            where = f"land in {self.catch_all!r}" if self.catch_all else "are dropped (counted)"
            line.warnings.append(f"{value_like_summary(node)}: not columns; they {where}")
        for key, child in fields:
            self._field(table, (*keys, key), child, flattened_from=flattened_from)

    def _array(
        self,
        table: TableDraft,
        keys: Path,
        node: PathStats,
        line: FieldLine,
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

    def _child_problem(self, table: TableDraft, elements: PathStats | None) -> str | None:
        if table.base:
            return "one level of child tables: an array inside an element stays jsonb"
        if elements is None:
            return "every array was empty: no element to infer columns from"
        kinds = set(elements.non_null)
        if kinds == {"object"} and not elements.types["null"]:
            reason = why_a_map(elements, max_keys=self.stats.max_keys)
            return None if reason is None else f"the elements are maps ({reason})"
        if kinds and not kinds & {"object", "array"}:
            return None
        return f"elements are {_counts(elements.types)}: a child table needs objects, or scalars"

    def _child(self, table: TableDraft, keys: Path, elements: PathStats, line: FieldLine) -> None:
        child = TableDraft(
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
