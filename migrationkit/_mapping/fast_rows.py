"""Rows straight from raw BSON, in C, for mappings of columns, flattened objects and
child tables fed by top-level arrays of documents.

The default mapping (nested values as jsonb) spends most of a migration's client time
decoding each document into dicts and lists and then walking them again to write the
jsonb text. :mod:`._fastrows` reads the bytes once and writes the same row. Where it
cannot be sure to write exactly what :class:`~migrationkit._mapping.normalize.Normalizer`
writes (a mismatch, a rejection, a type or key it does not handle) it answers ``None``
for that document, and the Python path decides. ``tests/unit/test_fast_rows.py``
checks, document by document, that both give the same rows.

Built by ``setup.py`` where a C compiler is found; without it, :data:`AVAILABLE` is
``False`` and every document takes the Python path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from migrationkit._normalize.rows import DocumentRows

try:
    from migrationkit._mapping import _fastrows  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a build without a C compiler
    _fastrows = None

#: Whether the compiled module is here (``migrationkit doctor`` reports it).
AVAILABLE = _fastrows is not None

#: BSON type codes of the kinds the C path writes (others fall back to Python).
_TYPE_CODES = {
    "double": 0x01,
    "string": 0x02,
    "object": 0x03,
    "array": 0x04,
    "objectId": 0x07,
    "bool": 0x08,
    "date": 0x09,
    "int": 0x10,
    "long": 0x12,
    "decimal": 0x13,
}
#: How each column type's value is made (_fastrows.c's CONV_*); absent: Python only.
_CONVERSIONS = {
    "integer": 0,
    "bigint": 0,
    "double precision": 0,
    "boolean": 0,
    "jsonb": 1,
    "numeric": 2,
    "text": 3,
    "timestamptz": 4,
}

Row = tuple[Any, ...]

#: (field, column index, BSON types written, null accepted, PostgreSQL type)
PlanColumn = tuple[str, int, frozenset[str], bool, str]
#: A column as the C path takes it: (index, BSON types mask, null accepted, conversion).
_Conversion = tuple[int, int, bool, int]
#: A level as the C path takes it: (columns, catch-all, flattened objects' levels).
_LevelArgs = tuple[dict[str, _Conversion], bool, tuple[tuple[str, Any], ...]]


class LevelPlan(NamedTuple):
    """One object level: its fields' columns, and the objects flattened under it."""

    columns: tuple[PlanColumn, ...]
    catch_all: bool
    objects: tuple[tuple[str, LevelPlan], ...] = ()


class ChildRowsPlan(NamedTuple):
    """A child table fed by a top-level array: ``level`` for its document elements,
    ``scalar`` for its scalar ones."""

    field: str
    table: str
    level: LevelPlan
    width: int
    required: tuple[int, ...]
    #: The column of scalar elements (its path is ""), if the table has one.
    scalar: PlanColumn | None = None


class RawPlan(NamedTuple):
    """What the C path needs of a mapping (``Normalizer.raw_plan``)."""

    level: LevelPlan
    width: int
    required: tuple[int, ...]
    children: tuple[ChildRowsPlan, ...] = ()


class FastRows:
    """``fast(documents)`` → each raw document's row (with child tables, its
    :class:`DocumentRows`), or ``None`` where Python decides."""

    def __init__(
        self,
        level: _LevelArgs,
        width: int,
        required: tuple[int, ...],
        children: tuple[tuple[str, _LevelArgs, int, tuple[int, ...], _Conversion | None], ...],
        tables: tuple[str, ...],
    ) -> None:
        self._args = (level, width, required, children)
        self._tables = tables

    def __call__(self, documents: Sequence[bytes]) -> list[Row | DocumentRows | None]:
        assert _fastrows is not None
        made: list[Any] = _fastrows.rows(*self._args, documents)
        if not self._tables:
            return made
        tables = self._tables
        return [
            None
            if pair is None
            else DocumentRows(pair[0][0], pair[0], dict(zip(tables, pair[1], strict=True)))
            for pair in made
        ]


def users_from_raw(documents: Sequence[bytes]) -> list[Row | None]:
    """The users table's rows from raw BSON; ``None`` where the users rules must decide.

    A row only for a document that the rules (``rows.User``) take as it is: ObjectId,
    int32 or plain text ``_id``; username and email text of 1 to 254 characters; an
    e-mail address; an age from 0 to 150 (int32 or a whole double); a date or null, or
    nothing, for ``registered_at``; and no other field (those are named as dropped).
    """
    assert _fastrows is not None
    rows: list[Row | None] = _fastrows.users(documents)
    return rows


def fast_rows(plan: RawPlan | None) -> FastRows | None:
    """The C path for a mapping's plan, or ``None`` when it does not apply.

    A plan exists for mappings with no validator whose columns are fields of the
    document or of objects flattened into it (the default jsonb layout, and most
    declared ones), and whose child tables are top-level arrays (of such documents, or
    of scalars): no drops, no child tables inside others.
    """
    if _fastrows is None or plan is None:
        return None
    try:
        level = _level_args(plan.level, key_written=True)
        children = tuple(
            (
                child.field,
                _level_args(child.level, key_written=False),
                child.width,
                child.required,
                None if child.scalar is None else _conversion(child.scalar),
            )
            for child in plan.children
        )
    except _Unsupported:
        return None
    tables = tuple(child.table for child in plan.children)
    return FastRows(level, plan.width, plan.required, children, tables)


class _Unsupported(Exception):
    """A column the C path leaves to Python."""


def _level_args(level: LevelPlan, *, key_written: bool) -> _LevelArgs:
    """A level as the C path takes it.

    A column on ``_id`` of the document (the C path writes the key itself) is left to
    Python.
    """
    found: dict[str, _Conversion] = {}
    for column in level.columns:
        if column[0] == "" or (key_written and column[0] == "_id"):
            raise _Unsupported(column[0])
        found[column[0]] = _conversion(column)
    objects = tuple((name, _level_args(inner, key_written=False)) for name, inner in level.objects)
    return found, level.catch_all, objects


def _conversion(column: PlanColumn) -> _Conversion:
    """(index, the BSON types it writes as a mask, null accepted, how it is made);
    a column type the C path does not make writes nothing there (mask 0)."""
    _, index, kinds, takes_null, pg_type = column
    mask = sum(1 << _TYPE_CODES[kind] for kind in kinds if kind in _TYPE_CODES)
    conversion = _CONVERSIONS.get(pg_type)
    return (index, mask if conversion is not None else 0, takes_null, conversion or 0)
