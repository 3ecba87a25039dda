"""What a mapping is: how one MongoDB collection becomes one table (and its child tables).

A :class:`TableMapping` names the target table and its :class:`Column` s (a source
path, a column name, a PostgreSQL type, the BSON types it takes); every nested path is
stored one of four ways:

- ``jsonb``: a column whose ``pg_type`` is ``"jsonb"`` (the default for objects and arrays);
- flattened: columns whose paths go inside the object (named ``a__b`` by convention);
- a :class:`ChildTable`: one row per element of the array, keyed by the parent's
  ``mongo_id`` and the element's ``position``;
- ``drop``: listed explicitly, counted and named in the report.

Every other field lands in the catch-all ``jsonb`` column (``_extra``); turn it off
(``catch_all=None``) and every such field is dropped, but counted and named.

Paths are dotted (``address.city``); a key that itself holds a dot or a backslash is
written with a backslash before it (``"a\\.b"`` is the single key ``a.b``). In a child
table the path ``""`` is the element itself (how scalar elements reach a ``value`` column).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from migrationkit._errors import ConfigurationError
from migrationkit._normalize.rows import USER
from migrationkit._registry import Registry

#: BSON type names as MongoDB's ``$type`` spells them, plus ``uuid`` (binary subtype 4).
BSON_TYPES: tuple[str, ...] = (
    "double",
    "string",
    "object",
    "array",
    "binData",
    "uuid",
    "objectId",
    "bool",
    "date",
    "null",
    "regex",
    "javascript",
    "javascriptWithScope",
    "int",
    "timestamp",
    "long",
    "decimal",
    "minKey",
    "maxKey",
)

#: The BSON types each PostgreSQL column type holds; ``null`` fits every column (NULL).
#: A wider set than one type is a declared widening (``int`` in ``bigint``), see
#: :mod:`migrationkit._mapping.types` for what each choice keeps.
PG_TYPE_HOLDS: dict[str, frozenset[str]] = {
    "integer": frozenset({"int", "null"}),
    "bigint": frozenset({"int", "long", "null"}),
    "numeric": frozenset({"int", "long", "decimal", "null"}),
    "double precision": frozenset({"double", "null"}),
    "text": frozenset({"string", "objectId", "javascript", "null"}),
    "boolean": frozenset({"bool", "null"}),
    "timestamptz": frozenset({"date", "null"}),
    "bytea": frozenset({"binData", "null"}),
    "uuid": frozenset({"uuid", "null"}),
    "jsonb": frozenset(BSON_TYPES),
}

#: ``text`` renders these as the same kind of string: one column takes only one of them.
_TEXT_KINDS = frozenset({"string", "objectId", "javascript"})

#: Columns the kit itself adds; a mapped column must not take one of these names.
KIT_COLUMNS: tuple[str, ...] = ("mongo_id", "position", "_extra", "id")

#: PostgreSQL's limits: identifier length in bytes (NAMEDATALEN - 1), columns per table.
MAX_IDENTIFIER_BYTES = 63
MAX_COLUMNS = 1600

OnMismatch = Literal["reject", "extra"]

#: A per-document check: raises ``ValueError`` (the reason); it may return the document
#: with values coerced (``42.0`` → ``42``) to normalize instead, or ``None`` to keep it.
Validator = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]

VALIDATORS: Registry[Validator] = Registry("validator")


class MappingError(ConfigurationError, ValueError):
    """A mapping PostgreSQL could not hold, or that contradicts itself: every problem, listed."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("the mapping has problems:\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass(frozen=True, slots=True)
class Column:
    """One column: the value at ``path`` (relative to the document, or to the element).

    ``bson_types`` are the types it takes; a value of another type (or one the column
    type cannot hold exactly, e.g. a string with a NUL) either rejects the document
    (``on_mismatch="reject"``) or is kept in the catch-all with the column NULL
    (``"extra"``), counted as kept aside.
    """

    path: str
    name: str
    pg_type: str
    bson_types: tuple[str, ...]
    nullable: bool = True
    on_mismatch: OnMismatch = "reject"


@dataclass(frozen=True, slots=True)
class ChildTable:
    """One row per element of the array at ``path``.

    Rows are ``(mongo_id, position, …columns, catch-all)``; arrays inside an element
    are ``jsonb`` (one level of child tables).
    """

    path: str
    table: str
    columns: tuple[Column, ...]
    catch_all: str | None = "_extra"

    @property
    def column_names(self) -> tuple[str, ...]:
        extra = (self.catch_all,) if self.catch_all else ()
        return ("mongo_id", "position", *(c.name for c in self.columns), *extra)


@dataclass(frozen=True, slots=True)
class TableMapping:
    """How documents of ``collection`` become rows of ``table`` (see the module docstring).

    The key is always ``_id``, stored as ``mongo_id text`` by
    :func:`migrationkit._normalize.rows.mongo_key`. ``validator`` names a registered
    per-document check (:data:`VALIDATORS`), e.g. ``"users"``.
    """

    collection: str
    table: str
    columns: tuple[Column, ...]
    children: tuple[ChildTable, ...] = ()
    drop: tuple[str, ...] = ()
    catch_all: str | None = "_extra"
    validator: str | None = None
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        extra = (self.catch_all,) if self.catch_all else ()
        names = ("mongo_id", *(c.name for c in self.columns), *extra)
        object.__setattr__(self, "_names", names)

    @property
    def column_names(self) -> tuple[str, ...]:
        """The parent row's columns in order: ``mongo_id``, the columns, the catch-all."""
        return self._names

    def problems(self) -> list[str]:
        """Every reason PostgreSQL (or the normalizer) could not use this mapping."""
        return _Checker(self).run()

    def validate(self) -> TableMapping:
        """Return the mapping itself, or raise :class:`MappingError` listing every problem."""
        if found := self.problems():
            raise MappingError(found)
        return self


def split_path(path: str) -> tuple[str, ...]:
    """The keys of a dotted path: ``"a.b\\.c"`` → ``("a", "b.c")``; ``""`` → ``()``."""
    if path == "":
        return ()
    if "\\" not in path:
        return tuple(path.split("."))
    keys, current, chars = [], [], iter(path)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ".":
            keys.append("".join(current))
            current = []
        else:
            current.append(char)
    keys.append("".join(current))
    return tuple(keys)


def join_path(keys: Iterable[str]) -> str:
    """The dotted path of ``keys``, escaping dots and backslashes inside a key."""
    return ".".join(key.replace("\\", "\\\\").replace(".", "\\.") for key in keys)


def _byte_length(name: str) -> int:
    return len(name.encode("utf-8", "surrogatepass"))


class _Checker:
    """Collects the problems of one mapping (every one, not just the first)."""

    def __init__(self, mapping: TableMapping) -> None:
        self.mapping = mapping
        self.found: list[str] = []

    def run(self) -> list[str]:
        m = self.mapping
        if not m.collection:
            self.found.append("the collection name is empty")
        if m.validator is not None and m.validator not in VALIDATORS and ":" not in m.validator:
            self.found.append(
                f"validator {m.validator!r} is not registered "
                f"(known: {', '.join(VALIDATORS.names())})"
            )
        tables = [m.table, *(child.table for child in m.children)]
        for table in tables:
            self._identifier(table, "table name")
        self._unique(tables, "table names")
        self._table(m.table, m.columns, m.catch_all, key_columns=("id", "mongo_id"), child=False)
        for child in m.children:
            self._table(
                child.table,
                child.columns,
                child.catch_all,
                key_columns=("mongo_id", "position"),
                child=True,
            )
        self._paths()
        return self.found

    def _table(
        self,
        table: str,
        columns: tuple[Column, ...],
        catch_all: str | None,
        *,
        key_columns: tuple[str, ...],
        child: bool,
    ) -> None:
        where = f"table {table!r}"
        names = [c.name for c in columns]
        total = len(key_columns) + len(names) + (1 if catch_all else 0)
        if total > MAX_COLUMNS:
            self.found.append(f"{where} has {total} columns; PostgreSQL allows {MAX_COLUMNS}")
        for column in columns:
            self._column(column, where, catch_all=catch_all, child=child)
        if catch_all is not None:
            self._identifier(catch_all, f"{where} catch-all column name")
            if catch_all in key_columns or (catch_all in KIT_COLUMNS and catch_all != "_extra"):
                self.found.append(f"{where}: catch-all {catch_all!r} clashes with a kit column")
        extra = [catch_all] if catch_all else []
        self._unique([*key_columns, *names, *extra], f"{where} column names")

    def _column(self, column: Column, where: str, *, catch_all: str | None, child: bool) -> None:
        label = f"{where} column {column.name!r} (path {column.path!r})"
        self._identifier(column.name, f"{where} column name")
        if column.name in KIT_COLUMNS or column.name.casefold() in KIT_COLUMNS:
            self.found.append(
                f"{label}: the name clashes with the kit's own columns {', '.join(KIT_COLUMNS)}"
            )
        if column.path == "" and not child:
            self.found.append(f"{label}: an empty path names the element, only in a child table")
        holds = PG_TYPE_HOLDS.get(column.pg_type)
        if holds is None:
            self.found.append(
                f"{label}: unknown pg_type {column.pg_type!r} (one of {', '.join(PG_TYPE_HOLDS)})"
            )
            return
        if not column.bson_types:
            self.found.append(f"{label}: no bson_types")
        for bson_type in column.bson_types:
            if bson_type not in BSON_TYPES:
                self.found.append(f"{label}: unknown BSON type {bson_type!r}")
            elif bson_type not in holds:
                self.found.append(f"{label}: {column.pg_type} cannot hold BSON {bson_type}")
        blurred = sorted(_TEXT_KINDS.intersection(column.bson_types))
        if column.pg_type == "text" and len(blurred) > 1:
            self.found.append(
                f"{label}: text would blur {', '.join(blurred)}; "
                "give each its own column or use jsonb"
            )
        if column.on_mismatch not in ("reject", "extra"):
            self.found.append(f"{label}: on_mismatch must be 'reject' or 'extra'")
        if column.on_mismatch == "extra" and catch_all is None:
            self.found.append(f"{label}: on_mismatch='extra' needs a catch-all column")
        if not column.nullable and column.on_mismatch == "extra":
            self.found.append(f"{label}: a NOT NULL column cannot keep mismatches aside")
        if not column.nullable and "null" in column.bson_types:
            self.found.append(f"{label}: a NOT NULL column cannot take BSON null")

    def _paths(self) -> None:
        m = self.mapping
        claims: list[tuple[tuple[str, ...], str]] = [(("_id",), "the key _id")]
        claims += [(split_path(c.path), f"column {c.name!r}") for c in m.columns]
        claims += [(split_path(c.path), f"child table {c.table!r}") for c in m.children]
        claims += [(split_path(p), f"drop {p!r}") for p in m.drop]
        for index, (path, owner) in enumerate(claims):
            if path == ():
                if not owner.startswith("column"):  # columns say so in _column
                    self.found.append(f"{owner}: the path is empty")
                continue
            for other_path, other in claims[:index]:
                shorter = min(len(path), len(other_path))
                if other_path and path[:shorter] == other_path[:shorter]:
                    self.found.append(
                        f"{owner} (path {join_path(path)!r}) overlaps {other} "
                        f"(path {join_path(other_path)!r})"
                    )
        for child in m.children:
            seen: list[tuple[str, ...]] = []
            for column in child.columns:
                keys = split_path(column.path)
                for other_keys in seen:
                    shorter = min(len(keys), len(other_keys))
                    # The element itself ("") and its fields do not overlap: scalars vs objects.
                    if bool(keys) == bool(other_keys) and keys[:shorter] == other_keys[:shorter]:
                        self.found.append(
                            f"child table {child.table!r}: column {column.name!r} "
                            f"(path {column.path!r}) overlaps another column's path"
                        )
                seen.append(keys)

    def _identifier(self, name: str, what: str) -> None:
        if not name:
            self.found.append(f"{what} is empty")
        elif "\x00" in name:
            self.found.append(f"{what} {name!r} contains a NUL character")
        elif _byte_length(name) > MAX_IDENTIFIER_BYTES:
            self.found.append(
                f"{what} {name!r} is {_byte_length(name)} bytes; "
                f"PostgreSQL keeps {MAX_IDENTIFIER_BYTES}"
            )
        elif re.search(r"[\ud800-\udfff]", name):
            self.found.append(f"{what} {name!r} contains a lone surrogate (not UTF-8)")

    def _unique(self, names: list[str], what: str) -> None:
        folded: dict[str, str] = {}
        for name in names:
            first = folded.get(name.casefold())
            if first is None:
                folded[name.casefold()] = name
            else:
                same = "the same name" if first == name else "equal after case-folding"
                self.found.append(f"{what}: {first!r} and {name!r} are {same}")


def _validate_user(document: Mapping[str, Any]) -> Mapping[str, Any]:
    # Today's pydantic rules and coercions (42.0 → 42), so USERS rows equal document_to_row's.
    user = USER.validate_python(document)
    return {**document, **user}


VALIDATORS.register("users", _validate_user)

#: The workshop's users table, exactly as :func:`~migrationkit.document_to_row` writes it.
USERS = TableMapping(
    collection="users",
    table="users",
    columns=(
        Column("username", "username", "text", ("string",), nullable=False),
        Column("email", "email", "text", ("string",), nullable=False),
        Column("age", "age", "integer", ("int",), nullable=False),
        Column("registered_at", "registered_at", "timestamptz", ("date", "null")),
    ),
    catch_all=None,
    validator="users",
)


def users_mapping(table: str = "users", collection: str | None = None) -> TableMapping:
    """The built-in users mapping, for a users table of another name (the lessons' copies)."""
    return replace(USERS, table=table, collection=collection or table)


def is_users_mapping(mapping: TableMapping) -> bool:
    """Whether ``mapping`` is the built-in users mapping (under any table name)."""
    return replace(mapping, table=USERS.table, collection=USERS.collection) == USERS
