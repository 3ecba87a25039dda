"""One document → its parent row, its child rows, and what was dropped or kept aside.

:func:`compile_mapping` turns a mapping into a plan once: for each object level, the
keys it names and what to do with each. A document then costs one dictionary lookup
per named key, and a scan of its keys only when it holds keys the mapping does not
name. The rules:

- a named field goes to its column, converted (:mod:`.types`); a value of another type,
  or one the column cannot hold exactly, rejects the document or goes to the catch-all
  (the column NULL), as the column's ``on_mismatch`` says;
- a field the mapping does not name goes to the catch-all, or, with the catch-all off,
  is dropped and named in ``dropped`` (as are the paths listed in ``drop``);
- the catch-all also records what a NULL column or an empty child table would blur: an
  explicit ``null``, an empty object at a flattened path, an empty array at a child path.
  So null and missing stay distinct whenever the mapping has a catch-all.

A child table's catch-all holds, per element, the object of its unnamed fields, or the
element itself when it is not an object and no column (path ``""``) takes it.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from bson import ObjectId
from pydantic import ValidationError

from migrationkit._mapping.fast_rows import AVAILABLE as FAST_ROWS_BUILT
from migrationkit._mapping.fast_rows import (
    ChildRowsPlan,
    FastRows,
    LevelPlan,
    PlanColumn,
    RawPlan,
    fast_rows,
    users_from_raw,
)
from migrationkit._mapping.spec import (
    VALIDATORS,
    ChildTable,
    Column,
    TableMapping,
    is_users_mapping,
    split_path,
)
from migrationkit._mapping.types import (
    _TYPE_NAMES,
    PLAIN_PG_TYPES,
    UnfitValue,
    bson_type,
    column_converter,
    to_jsonb,
)
from migrationkit._normalize.rows import (
    DocumentRows,
    Row,
    Transform,
    describe_errors,
    mongo_key,
    users_rows,
)

_NONE: tuple[str, ...] = ()
_MISSING: Any = object()


class DocumentRejected(ValueError):
    """The document cannot be written as the mapping says; the message says why, by field."""

    @property
    def reason(self) -> str:
        return str(self)


@dataclass(slots=True)
class _ColumnStep:
    index: int
    label: str  # the field's path, for reasons and reports
    writes: frozenset[str]  # the accepted BSON types other than null
    takes_null: bool
    expected: str
    pg_type: str
    convert: Callable[[Any, str], Any]
    keep_aside: bool


@dataclass(slots=True)
class _Level:
    """One object level of the plan: the keys it names, and what becomes of each."""

    prefix: str
    catch_all: bool
    columns: list[tuple[str, int, frozenset[str], Callable[[Any, str], Any] | None, _ColumnStep]]
    objects: list[tuple[str, _Level]]
    children: list[tuple[str, _ChildPlan]]
    drops: list[tuple[str, str]]
    named: frozenset[str]


@dataclass(slots=True)
class _ChildPlan:
    table: str
    label: str
    level: _Level
    element: _ColumnStep | None  # the column for scalar elements (path "")
    width: int
    catch_all: bool
    required: tuple[tuple[int, str], ...]


class _State(NamedTuple):
    """One document's key, its child rows so far, and what it dropped or kept aside."""

    key: str
    children: dict[str, list[Row]]
    dropped: list[str]
    kept_aside: list[str]


# NamedTuple's own constructor is a Python function; the tuple's is not (a third faster).
_new_tuple = tuple.__new__


# -- compiling -----------------------------------------------------------------------------

_Entry = tuple[tuple[str, ...], str, Any]  # (keys relative to the level, kind, payload)


def _column_step(column: Column, index: int, label: str) -> _ColumnStep:
    return _ColumnStep(
        index=index,
        label=label,
        writes=frozenset(column.bson_types) - {"null"},
        takes_null="null" in column.bson_types,
        expected=" or ".join(column.bson_types),
        pg_type=column.pg_type,
        convert=column_converter(column.pg_type),
        keep_aside=column.on_mismatch == "extra",
    )


def _build_level(
    entries: list[_Entry], *, catch_all: bool, prefix: str, extra_named: tuple[str, ...] = ()
) -> _Level:
    level = _Level(prefix, catch_all, [], [], [], [], frozenset())
    nested: dict[str, list[_Entry]] = {}
    for keys, kind, payload in entries:
        head, rest = keys[0], keys[1:]
        if rest:
            nested.setdefault(head, []).append((rest, kind, payload))
        elif kind == "column":
            convert = None if payload.pg_type in PLAIN_PG_TYPES else payload.convert
            level.columns.append((head, payload.index, payload.writes, convert, payload))
        elif kind == "child":
            level.children.append((head, payload))
        else:
            level.drops.append((head, payload))
    for head, inner in nested.items():
        sub = _build_level(inner, catch_all=catch_all, prefix=f"{prefix}{head}.")
        level.objects.append((head, sub))
    named = [c[0] for c in level.columns] + [k for k, _ in level.objects]
    named += [k for k, _ in level.children] + [k for k, _ in level.drops]
    level.named = frozenset((*named, *extra_named))
    return level


def _fill_columns(
    level: _Level, obj: Mapping[str, Any], row: list[Any], state: _State
) -> tuple[int, dict[str, Any] | None]:
    """Write one level's columns; how many of their keys ``obj`` has, and the catch-all.

    The innermost loop, per column of every document: a value of a type the column
    writes is written here (plain types without even a call); anything else (a null,
    a mismatch, an unfit value) goes to :func:`_column_fallback`.
    """
    found = 0
    extra: dict[str, Any] | None = None
    get = obj.get
    type_name = _TYPE_NAMES.get
    for key, index, writes, convert, step in level.columns:
        value = get(key, _MISSING)
        if value is _MISSING:
            continue
        found += 1
        kind = type_name(type(value)) or _kind(value, step.label)
        if kind not in writes:
            extra = _column_fallback(step, key, value, kind, None, state, extra, level.catch_all)
        elif convert is None:
            row[index] = value
        else:
            try:
                row[index] = convert(value, kind)
            except UnfitValue as exc:
                reason = str(exc)
                extra = _column_fallback(
                    step, key, value, kind, reason, state, extra, level.catch_all
                )
    return found, extra


def _column_fallback(
    step: _ColumnStep,
    key: str,
    value: Any,
    kind: str,
    reason: str | None,
    state: _State,
    extra: dict[str, Any] | None,
    catch_all: bool,
) -> dict[str, Any] | None:
    """A value that is not plainly written: an accepted null, a mismatch, an unfit value."""
    if reason is None:
        if kind == "null" and step.takes_null:
            if catch_all:  # recorded, so that null and missing stay distinct
                extra = {} if extra is None else extra
                extra[key] = None
            return extra
        reason = _mismatch(step.expected, value, kind)
    if not step.keep_aside:
        raise DocumentRejected(f"field {step.label}: {reason}")
    extra = {} if extra is None else extra
    extra[key] = value
    state.kept_aside.append(step.label)
    return extra


def _child_plan(child: ChildTable) -> _ChildPlan:
    entries: list[_Entry] = []
    element = None
    required = []
    for index, column in enumerate(child.columns, start=2):
        keys = split_path(column.path)
        label = f"{child.path}[].{column.path}" if keys else f"{child.path}[]"
        step = _column_step(column, index, label)
        if keys:
            entries.append((keys, "column", step))
        else:
            element = step
        if not column.nullable:
            required.append((index, label))
    catch_all = child.catch_all is not None
    return _ChildPlan(
        table=child.table,
        label=child.path,
        level=_build_level(entries, catch_all=catch_all, prefix=f"{child.path}[]."),
        element=element,
        width=len(child.column_names),
        catch_all=catch_all,
        required=tuple(required),
    )


def _nested(level: _Level) -> bool:
    return bool(level.objects or level.children or level.drops)


def _for_c(level: _Level, *, children: bool) -> bool:
    """Whether the C path writes this level: columns and flattened objects (and, where
    ``children``, child tables), nothing dropped."""
    if level.drops or (level.children and not children):
        return False
    return all(_for_c(sub, children=False) for _, sub in level.objects)


def _level_plan(level: _Level) -> LevelPlan:
    """A level as the C path takes it (:class:`.fast_rows.LevelPlan`)."""
    columns = tuple(_plan_column(key, step) for key, _, _, _, step in level.columns)
    objects = tuple((key, _level_plan(sub)) for key, sub in level.objects)
    return LevelPlan(columns, level.catch_all, objects)


def _plan_column(key: str, step: _ColumnStep) -> PlanColumn:
    return (key, step.index, step.writes, step.takes_null, step.pg_type)


# -- normalizing ---------------------------------------------------------------------------


class Normalizer:
    """A compiled mapping: ``normalizer(document)`` → :class:`DocumentRows`."""

    def __init__(self, mapping: TableMapping) -> None:
        mapping.validate()
        self.mapping = mapping
        self._width = len(mapping.column_names)
        self._catch_all = mapping.catch_all is not None
        entries: list[_Entry] = []
        required = []
        for index, column in enumerate(mapping.columns, start=1):
            entries.append(
                (split_path(column.path), "column", _column_step(column, index, column.path))
            )
            if not column.nullable:
                required.append((index, column.path))
        self._children = tuple(_child_plan(child) for child in mapping.children)
        for child, plan in zip(mapping.children, self._children, strict=True):
            entries.append((split_path(child.path), "child", plan))
        entries += [(split_path(path), "drop", path) for path in mapping.drop]
        self._top = _build_level(
            entries, catch_all=self._catch_all, prefix="", extra_named=("_id",)
        )
        self._flat = not _nested(self._top)
        self._required = tuple(required)
        # The required columns' values in one C call; the key (row[0], never None) twice
        # on the end so that itemgetter always returns a tuple, also for one column.
        self._required_values = operator.itemgetter(*(i for i, _ in required), 0, 0)
        self._validator = VALIDATORS.get(mapping.validator) if mapping.validator else None
        #: Rows straight from raw BSON in C, where the mapping allows (:mod:`.fast_rows`).
        self.from_raw = fast_rows(self.raw_plan())

    def raw_plan(self) -> RawPlan | None:
        """What the C path needs, when nothing validates first and nothing is dropped;
        child tables only as top-level arrays whose elements hold no child table."""
        top = self._top
        if self._validator is not None or not _for_c(top, children=True):
            return None
        if not all(_for_c(plan.level, children=False) for _, plan in top.children):
            return None
        children = tuple(
            ChildRowsPlan(key, plan.table, _level_plan(plan.level), plan.width,
                          tuple(index for index, _ in plan.required),
                          None if plan.element is None else _plan_column("", plan.element))
            for key, plan in top.children
        )  # fmt: skip
        required = tuple(index for index, _ in self._required)
        return RawPlan(_level_plan(top), self._width, required, children)

    def __call__(self, document: Mapping[str, Any]) -> DocumentRows:
        if self._validator is not None:
            document = self._validate(document)
        document_id = document.get("_id", _MISSING)
        if document_id is _MISSING:
            raise DocumentRejected("the document has no _id")
        key = str(document_id) if type(document_id) is ObjectId else document_key(document_id)
        row: list[Any] = [None] * self._width
        row[0] = key
        children: dict[str, list[Row]] = (
            {plan.table: [] for plan in self._children} if self._children else {}
        )
        state = _new_tuple(_State, (key, children, [], []))
        top = self._top
        if self._flat:  # only columns at the top: skip the general walk (USERS)
            found, extra = _fill_columns(top, document, row, state)
            if found + 1 != len(document):
                extra = self._unnamed(top, document, state, extra)
        else:
            extra = self._walk(top, document, row, state, found=1)
        if self._required and None in self._required_values(row):
            self._reject_missing(row)
        if self._catch_all and extra:
            row[-1] = to_jsonb(extra)
        dropped = tuple(state.dropped) if state.dropped else _NONE
        kept_aside = tuple(state.kept_aside) if state.kept_aside else _NONE
        return _new_tuple(DocumentRows, (key, tuple(row), children, dropped, kept_aside))

    def _reject_missing(self, row: list[Any]) -> None:
        for index, path in self._required:
            if row[index] is None:
                raise DocumentRejected(f"field {path}: required, missing")

    def _validate(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        assert self._validator is not None
        try:
            coerced = self._validator(document)
        except ValidationError as exc:
            raise DocumentRejected(describe_errors(exc)) from exc
        except ValueError as exc:
            raise DocumentRejected(str(exc)) from exc
        return document if coerced is None else coerced

    def _walk(
        self, level: _Level, obj: Mapping[str, Any], row: list[Any], state: _State, *, found: int
    ) -> dict[str, Any] | None:
        """Fill ``row`` from one object level; return what it leaves for the catch-all."""
        found_here, extra = _fill_columns(level, obj, row, state)
        found += found_here
        if level.objects or level.children or level.drops:
            extra, found = self._walk_nested(level, obj, row, state, extra, found)
        if found != len(obj):
            extra = self._unnamed(level, obj, state, extra)
        return extra

    def _walk_nested(
        self,
        level: _Level,
        obj: Mapping[str, Any],
        row: list[Any],
        state: _State,
        extra: dict[str, Any] | None,
        found: int,
    ) -> tuple[dict[str, Any] | None, int]:
        kept: Any
        for key, sub in level.objects:
            value = obj.get(key, _MISSING)
            if value is _MISSING:
                continue
            found += 1
            kept = self._flattened(sub, value, row, state)
            if kept is not _MISSING:
                extra = {} if extra is None else extra
                extra[key] = kept
        for key, plan in level.children:
            value = obj.get(key, _MISSING)
            if value is _MISSING:
                continue
            found += 1
            kept = self._child_rows(plan, value, state)
            if kept is not _MISSING:
                extra = {} if extra is None else extra
                extra[key] = kept
        for key, path in level.drops:
            if key in obj:
                found += 1
                state.dropped.append(path)
        return extra, found

    def _unnamed(
        self,
        level: _Level,
        obj: Mapping[str, Any],
        state: _State,
        extra: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        named = level.named
        for key, value in obj.items():
            if key not in named:
                if level.catch_all:
                    extra = {} if extra is None else extra
                    extra[key] = value
                else:
                    state.dropped.append(level.prefix + key)
        return extra

    def _flattened(self, level: _Level, value: Any, row: list[Any], state: _State) -> Any:
        """Columns from a flattened object; what the catch-all keeps of it, or ``_MISSING``."""
        path = level.prefix[:-1]
        if isinstance(value, dict):
            inner = self._walk(level, value, row, state, found=0)
            if inner:
                return inner
            return {} if not value and level.catch_all else _MISSING
        if value is None:
            return None if level.catch_all else _MISSING
        kind = _kind(value, path)
        if not level.catch_all:
            raise DocumentRejected(
                f"field {path}: {_mismatch('object (its fields are columns)', value, kind)}"
            )
        state.kept_aside.append(path)
        return value

    def _child_rows(self, plan: _ChildPlan, value: Any, state: _State) -> Any:
        """Rows for the array's elements; what the parent's catch-all keeps, or ``_MISSING``."""
        if type(value) is not list:
            if value is None:
                return None if self._catch_all else _MISSING
            kind = _kind(value, plan.label)
            if not self._catch_all:
                expected = f"array (child table {plan.table})"
                raise DocumentRejected(f"field {plan.label}: {_mismatch(expected, value, kind)}")
            state.kept_aside.append(plan.label)
            return value
        if not value:
            return [] if self._catch_all else _MISSING
        rows = state.children[plan.table]
        for position, element in enumerate(value):
            try:
                rows.append(self._element_row(plan, element, position, state))
            except DocumentRejected as exc:
                raise DocumentRejected(f"{exc} (element {position})") from None
        return _MISSING

    def _element_row(self, plan: _ChildPlan, element: Any, position: int, state: _State) -> Row:
        row: list[Any] = [None] * plan.width
        row[0] = state.key
        row[1] = position
        extra = self._element(plan, element, row, state)
        for index, label in plan.required:
            if row[index] is None:
                raise DocumentRejected(f"field {label}: required, missing")
        if plan.catch_all and extra is not _MISSING:
            row[-1] = to_jsonb(extra)
        return tuple(row)

    def _element(self, plan: _ChildPlan, element: Any, row: list[Any], state: _State) -> Any:
        """Fill a child row from one element; return what its catch-all keeps, or ``_MISSING``."""
        if isinstance(element, dict):
            found = self._walk(plan.level, element, row, state, found=0)
            if found:
                return found
            return {} if not element else _MISSING
        step = plan.element
        if step is None:
            if plan.catch_all:
                return element
            state.dropped.append(f"{plan.label}[]")
            return _MISSING
        kind = _TYPE_NAMES.get(type(element)) or _kind(element, step.label)
        if kind in step.writes:
            try:
                row[step.index] = step.convert(element, kind)
                return _MISSING
            except UnfitValue as exc:
                reason = str(exc)
        elif kind == "null" and step.takes_null:
            return None if plan.catch_all else _MISSING
        else:
            reason = _mismatch(step.expected, element, kind)
        if not step.keep_aside:
            raise DocumentRejected(f"field {step.label}: {reason}")
        state.kept_aside.append(step.label)
        return element


#: The key of an ``_id``: one function for the whole kit.
document_key = mongo_key


def _kind(value: Any, path: str) -> str:
    try:
        return bson_type(value)
    except UnfitValue as exc:
        raise DocumentRejected(f"field {path}: {exc}") from None


def _mismatch(expected: str, value: Any, kind: str) -> str:
    if kind == "null":
        return f"expected {expected}, got null"
    try:
        text = json.dumps(value[:60]) if kind == "string" else to_jsonb(value)
    except (UnfitValue, TypeError, ValueError):
        text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"expected {expected}, got {kind} {text}"


def compile_mapping(mapping: TableMapping) -> Normalizer:
    """The mapping's plan, validated once: call it with each document."""
    return Normalizer(mapping)


@functools.lru_cache(maxsize=64)
def _cached(mapping: TableMapping) -> Normalizer:
    return Normalizer(mapping)


def normalize(mapping: TableMapping, document: Mapping[str, Any]) -> DocumentRows:
    """The rows of one document (the compiled plan is cached per mapping)."""
    return _cached(mapping)(document)


class MappingTransform:
    """``normalize(mapping, document)``, picklable (process workers compile it again).

    :meth:`from_raw` is the C path for raw BSON batches (:mod:`.fast_rows`), ``None``
    where it does not apply; :func:`~migrationkit._normalize.rows.prepare_batch` uses it.
    """

    def __init__(self, mapping: TableMapping) -> None:
        self.mapping = mapping
        self._compiled: Normalizer | None = None

    def __call__(self, document: Mapping[str, Any]) -> DocumentRows:
        return (self._compiled or self._compile())(document)

    @property
    def from_raw(self) -> FastRows | None:
        return (self._compiled or self._compile()).from_raw

    def _compile(self) -> Normalizer:
        self._compiled = _cached(self.mapping)
        return self._compiled

    def __getstate__(self) -> dict[str, Any]:
        return {"mapping": self.mapping, "_compiled": None}  # compiled again where it runs


class UsersTransform:
    """:func:`users_rows`, with its C path for raw batches (:func:`.fast_rows.users_from_raw`)."""

    def __call__(self, document: Mapping[str, Any]) -> Row | DocumentRows:
        return users_rows(document)

    @property
    def from_raw(self) -> Callable[[Sequence[bytes]], list[Row | None]] | None:
        return users_from_raw if FAST_ROWS_BUILT else None


def transform_for(mapping: TableMapping) -> Transform:
    """The transform that writes ``mapping``'s rows (picklable, for process workers).

    The built-in users mapping keeps its fast path, :func:`users_rows` (same rows and
    reasons as the general normalizer, about 2.5 µs a document less), and its C path.
    """
    if is_users_mapping(mapping):
        return UsersTransform()
    return MappingTransform(mapping)
