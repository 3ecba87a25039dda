"""Rows back into the document they came from: how ``verify`` can check every value.

:func:`restore_document` undoes :func:`.normalize.normalize` on rows as asyncpg reads
them back: columns are turned back into BSON values (:func:`.types.column_reader`), the
catch-all is merged in, child rows become the array again. The result equals the source
document, value for value and type for type, except for what the mapping declared it
would not keep: ``_id`` (compare the key instead), dropped fields, the BSON type of
a widened column (its values come back as the widest type), and the order of the keys
that became columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from migrationkit._mapping.spec import ChildTable, Column, TableMapping, split_path
from migrationkit._mapping.types import column_reader, from_jsonb

_ABSENT: Any = object()

#: The type a widened column's values come back as.
_WIDEST = ("decimal", "long", "int")


def _column_kind(column: Column) -> str:
    kinds = [kind for kind in column.bson_types if kind != "null"]
    for widest in _WIDEST:
        if widest in kinds and len(kinds) > 1:
            return widest
    return kinds[0] if kinds else "null"


def _put(target: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    for key in keys[:-1]:
        inner = target.get(key)
        if not isinstance(inner, dict):
            inner = target[key] = {}
        target = inner
    target[keys[-1]] = value


def _merge(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


#: Per column: where its value goes in the document, and how it becomes BSON again.
_ColumnPlan = tuple[tuple[str, ...], Callable[[Any], Any]]
#: Plans by the identity of a mapping's (or child table's) column tuple, which lives as
#: long as the mapping: restoring is per value, so nothing is worked out twice.
_PLANS: dict[int, tuple[Sequence[Column], list[_ColumnPlan | None]]] = {}
_MAX_PLANS = 256


def _plans(columns: Sequence[Column]) -> list[_ColumnPlan | None]:
    """Each column's plan (``None``: the column holds no path of the document)."""
    cached = _PLANS.get(id(columns))
    if cached is not None and cached[0] is columns:
        return cached[1]
    plans: list[_ColumnPlan | None] = [
        (tuple(split_path(column.path)), column_reader(column.pg_type, _column_kind(column)))
        if column.path
        else None
        for column in columns
    ]
    if len(_PLANS) >= _MAX_PLANS:  # many mappings come and go in tests: start again
        _PLANS.clear()
    _PLANS[id(columns)] = (columns, plans)  # holding ``columns`` keeps its id unique
    return plans


def _fill(columns: Sequence[Column], values: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for plan, value in zip(_plans(columns), values, strict=True):
        if value is not None and plan is not None:
            keys, read = plan
            if len(keys) == 1:
                out[keys[0]] = read(value)
            else:
                _put(out, keys, read(value))
    return out


def _element(child: ChildTable, row: Sequence[Any]) -> Any:
    values = row[2 : 2 + len(child.columns)]
    for column, value in zip(child.columns, values, strict=True):
        if column.path == "" and value is not None:
            return column_reader(column.pg_type, _column_kind(column))(value)
    extra = from_jsonb(row[-1]) if child.catch_all and row[-1] is not None else _ABSENT
    if extra is not _ABSENT and not isinstance(extra, dict):
        return extra  # a scalar (or null) element no column took
    element = _fill(child.columns, values)
    if extra is not _ABSENT:
        _merge(element, extra)
    return element


def restore_document(
    mapping: TableMapping,
    row: Sequence[Any],
    children: Mapping[str, Sequence[Sequence[Any]]] | None = None,
) -> dict[str, Any]:
    """The document (without ``_id``) from its parent row and its child rows.

    ``row`` is in ``mapping.column_names`` order; ``children`` maps each child table to
    its rows for this document, ``(mongo_id, position, …)``, in any order.
    """
    children = children or {}
    values = row[1 : 1 + len(mapping.columns)]
    document = _fill(mapping.columns, values)
    for child in mapping.children:
        rows = sorted(children.get(child.table, ()), key=lambda r: r[1])
        if rows:
            _put(document, split_path(child.path), [_element(child, r) for r in rows])
    if mapping.catch_all and row[-1] is not None:
        _merge(document, from_jsonb(row[-1]))
    return document
