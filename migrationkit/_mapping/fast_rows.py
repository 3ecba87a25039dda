"""Rows straight from raw BSON, in C, for mappings whose columns are all top-level fields.

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


class TopLevelPlan(NamedTuple):
    """A mapping's columns when all are top-level fields (``Normalizer.top_level_plan``)."""

    #: (field, column index, BSON types written, null accepted, PostgreSQL type)
    columns: tuple[tuple[str, int, frozenset[str], bool, str], ...]
    width: int
    catch_all: bool
    required: tuple[int, ...]


class FastRows:
    """``fast(documents)`` → each raw document's row, or ``None`` where Python decides."""

    def __init__(
        self,
        columns: dict[str, tuple[int, int, bool, int]],
        width: int,
        catch_all: bool,
        required: tuple[int, ...],
    ) -> None:
        self._args = (columns, width, catch_all, required)

    def __call__(self, documents: Sequence[bytes]) -> list[Row | None]:
        assert _fastrows is not None
        rows: list[Row | None] = _fastrows.rows(*self._args, documents)
        return rows


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


def fast_rows(plan: TopLevelPlan | None) -> FastRows | None:
    """The C path for a mapping's plan, or ``None`` when it does not apply.

    A plan exists for mappings with only top-level columns and no validator (the
    default jsonb layout, and most declared ones): no flattened objects, child tables
    or drops.
    """
    if _fastrows is None or plan is None:
        return None
    columns: dict[str, tuple[int, int, bool, int]] = {}
    for field, index, kinds, takes_null, pg_type in plan.columns:
        if field == "_id":  # the key is written by the C path itself: leave this to Python
            return None
        mask = sum(1 << _TYPE_CODES[kind] for kind in kinds if kind in _TYPE_CODES)
        conversion = _CONVERSIONS.get(pg_type)
        columns[field] = (index, mask if conversion is not None else 0, takes_null, conversion or 0)
    return FastRows(columns, plan.width, plan.catch_all, plan.required)
