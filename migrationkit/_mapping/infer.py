"""Infer a :class:`TableMapping` from a sample of a collection, and say why.

Two steps, both pure. :class:`FieldStats` walks decoded documents once and keeps,
per path, how often it is present and which BSON types it holds (memory stays
bounded: a capped number of keys per object and of paths overall). Then
:func:`infer_mapping` turns those statistics into a mapping a person reviews, and an
:class:`InferenceReport` with one line per field: presence, types, the column
chosen and the reason, and every warning.

The parts: :mod:`~migrationkit._mapping.field_stats` (the statistics),
:mod:`~migrationkit._mapping.infer_fields` (each field's column, type and warnings),
:mod:`~migrationkit._mapping.infer_assembly` (limits, names, the mapping),
:mod:`~migrationkit._mapping.column_names` and :mod:`~migrationkit._mapping.infer_report`.
This module puts them together and is where callers import from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrationkit._mapping.column_names import assign_names, fold_name, stable_suffix, with_suffix
from migrationkit._mapping.field_stats import (
    ITEMS,
    MAP_KEY_SPREAD,
    MAP_MIN_DISTINCT_KEYS,
    MAP_VALUES,
    FieldStats,
    Path,
    PathStats,
    display_path,
    value_like_kind,
)
from migrationkit._mapping.infer_assembly import assemble, column_comments
from migrationkit._mapping.infer_fields import FieldPlanner, Override
from migrationkit._mapping.infer_report import (
    FieldReport,
    InferenceReport,
    Nested,
    inference_notes,
)
from migrationkit._mapping.spec import TableMapping
from migrationkit._mapping.toml import mapping_to_toml

__all__ = [
    "ITEMS",
    "MAP_KEY_SPREAD",
    "MAP_MIN_DISTINCT_KEYS",
    "MAP_VALUES",
    "FieldReport",
    "FieldStats",
    "Inference",
    "InferenceReport",
    "Nested",
    "Override",
    "Path",
    "PathStats",
    "assign_names",
    "display_path",
    "fold_name",
    "infer_mapping",
    "mapping_from_stats",
    "stable_suffix",
    "value_like_kind",
    "with_suffix",
]


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
    planner = FieldPlanner(
        stats, table=table, nested=nested, overrides=overrides or {}, catch_all=catch_all
    )
    mapping = assemble(planner, collection).validate()
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
        notes=tuple(inference_notes(stats, sampled=sampled, total=total, catch_all=catch_all)),
    )
    comments = column_comments(planner, stats.documents)
    return Inference(mapping=mapping, report=report, stats=stats, comments=comments)
