"""Mappings in ``migrationkit.toml``: write one to review, read one back.

A mapping is a ``[mappings.<collection>]`` table; each column is one line, so a
review reads like the table it makes::

    [mappings.customers]
    table = "customers"
    catch_all = "_extra"          # false: no catch-all (dropped fields are named)
    drop = ["password"]
    columns = [
      { path = "name", name = "name", pg_type = "text", bson_types = ["string"] },  # 100%
      { path = "address.city", name = "address__city", pg_type = "text" },
    ]

    [[mappings.customers.children]]
    path = "accounts"
    table = "customers__accounts"
    columns = [
      { path = "", name = "value", pg_type = "integer", bson_types = ["int"] },
    ]

``bson_types`` may be left out: the types the ``pg_type`` holds (``text``: string);
``name`` too: the path with ``__`` for each dot. Parsing uses :mod:`tomllib`; the
emitter is our own (TOML has no writer in the standard library).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from migrationkit._mapping.spec import (
    PG_TYPE_HOLDS,
    ChildTable,
    Column,
    MappingError,
    TableMapping,
    split_path,
)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}

#: ``bson_types`` when a column leaves them out: what its ``pg_type`` holds, one text kind.
DEFAULT_BSON_TYPES: dict[str, tuple[str, ...]] = {
    pg_type: tuple(sorted(holds - {"objectId", "javascript"}, key=lambda t: (t == "null", t)))
    for pg_type, holds in PG_TYPE_HOLDS.items()
}

_MAPPING_KEYS = {"collection", "table", "columns", "children", "drop", "catch_all", "validator"}
_CHILD_KEYS = {"path", "table", "columns", "catch_all"}
_COLUMN_KEYS = {"path", "name", "pg_type", "bson_types", "nullable", "on_mismatch"}


def _string(text: str) -> str:
    if re.search(r"[\ud800-\udfff]", text):
        raise MappingError([f"{text!r} holds a lone surrogate, which TOML cannot write"])
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _strings(items: Iterable[str]) -> str:
    return "[" + ", ".join(_string(item) for item in items) + "]"


def _column_line(column: Column, comment: str | None) -> str:
    fields = [
        f"path = {_string(column.path)}",
        f"name = {_string(column.name)}",
        f"pg_type = {_string(column.pg_type)}",
        f"bson_types = {_strings(column.bson_types)}",
    ]
    if not column.nullable:
        fields.append("nullable = false")
    if column.on_mismatch != "reject":
        fields.append(f"on_mismatch = {_string(column.on_mismatch)}")
    line = "  { " + ", ".join(fields) + " },"
    return f"{line}  # {_one_line(comment)}" if comment else line


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _columns_block(
    columns: tuple[Column, ...], comments: Mapping[str, str], *, label: str = ""
) -> list[str]:
    if not columns:
        return ["columns = []"]
    lines = ["columns = ["]
    lines += [_column_line(c, comments.get(label + c.path)) for c in columns]
    return [*lines, "]"]


def _catch_all(value: str | None) -> str:
    return "false" if value is None else _string(value)


def mapping_to_toml(
    mapping: TableMapping,
    *,
    comments: Mapping[str, str] | None = None,
    header: str | None = None,
) -> str:
    """The mapping as a ``[mappings.<collection>]`` table of ``migrationkit.toml``.

    ``comments`` maps a column's path (a child's: ``"orders[].price"``) to a note
    written after its line, e.g. what :mod:`migrationkit._mapping.infer` saw there;
    ``header`` is a comment above the table.
    """
    comments = comments or {}
    lines = [f"# {_one_line(part)}" for part in (header or "").splitlines() if part.strip()]
    lines.append(f"[mappings.{_key(mapping.collection)}]")
    lines.append(f"table = {_string(mapping.table)}")
    lines.append(f"catch_all = {_catch_all(mapping.catch_all)}")
    if mapping.validator is not None:
        lines.append(f"validator = {_string(mapping.validator)}")
    if mapping.drop:
        lines.append(f"drop = {_strings(mapping.drop)}")
    lines += _columns_block(mapping.columns, comments)
    for child in mapping.children:
        lines += ["", f"[[mappings.{_key(mapping.collection)}.children]]"]
        lines.append(f"path = {_string(child.path)}")
        lines.append(f"table = {_string(child.table)}")
        lines.append(f"catch_all = {_catch_all(child.catch_all)}")
        lines += _columns_block(child.columns, comments, label=f"{child.path}[].")
    return "\n".join(lines) + "\n"


# -- reading -------------------------------------------------------------------------------


class _Reader:
    """Builds a mapping from parsed TOML, collecting every problem on the way."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def mapping(self, data: Mapping[str, Any], collection: str | None) -> TableMapping | None:
        where = f"mapping {collection!r}" if collection else "mapping"
        self._unknown(data, _MAPPING_KEYS, where)
        name = data.get("collection", collection)
        table = self._text(data, "table", where, required=True)
        if not isinstance(name, str) or not name:
            self.problems.append(f"{where}: no collection name")
        columns = self._columns(data.get("columns", []), where)
        children = tuple(
            child
            for index, item in enumerate(self._list(data.get("children", []), where, "children"))
            if (child := self._child(item, f"{where} child {index}")) is not None
        )
        drop = tuple(self._texts(data.get("drop", []), where, "drop"))
        catch_all = self._catch_all(data, where)
        validator = self._text(data, "validator", where)
        if self.problems:
            return None
        return TableMapping(
            collection=str(name),
            table=str(table),
            columns=columns,
            children=children,
            drop=drop,
            catch_all=catch_all,
            validator=validator,
        )

    def _child(self, data: Any, where: str) -> ChildTable | None:
        if not isinstance(data, Mapping):
            self.problems.append(f"{where}: must be a table")
            return None
        self._unknown(data, _CHILD_KEYS, where)
        path = self._text(data, "path", where, required=True)
        table = self._text(data, "table", where, required=True)
        columns = self._columns(data.get("columns", []), where)
        catch_all = self._catch_all(data, where)
        if path is None or table is None:
            return None
        return ChildTable(path=path, table=table, columns=columns, catch_all=catch_all)

    def _columns(self, items: Any, where: str) -> tuple[Column, ...]:
        columns = []
        for index, item in enumerate(self._list(items, where, "columns")):
            column = self._column(item, f"{where} column {index}")
            if column is not None:
                columns.append(column)
        return tuple(columns)

    def _column(self, data: Any, where: str) -> Column | None:
        if not isinstance(data, Mapping):
            self.problems.append(f"{where}: must be a table")
            return None
        self._unknown(data, _COLUMN_KEYS, where)
        path = self._text(data, "path", where, required=True)
        pg_type = self._text(data, "pg_type", where, required=True)
        if path is None or pg_type is None:
            return None
        where = f"{where} (path {path!r})"
        name = self._text(data, "name", where) or "__".join(split_path(path)) or "value"
        nullable = data.get("nullable", True)
        if not isinstance(nullable, bool):
            self.problems.append(f"{where}: nullable must be true or false")
            nullable = True
        if "bson_types" in data:
            bson_types = tuple(self._texts(data["bson_types"], where, "bson_types"))
        else:
            default = DEFAULT_BSON_TYPES.get(pg_type, ())
            bson_types = default if nullable else tuple(t for t in default if t != "null")
        on_mismatch = data.get("on_mismatch", "reject")
        if on_mismatch not in ("reject", "extra"):
            self.problems.append(f"{where}: on_mismatch must be 'reject' or 'extra'")
            on_mismatch = "reject"
        return Column(
            path=path,
            name=name,
            pg_type=pg_type,
            bson_types=bson_types,
            nullable=nullable,
            on_mismatch=on_mismatch,
        )

    def _catch_all(self, data: Mapping[str, Any], where: str) -> str | None:
        value = data.get("catch_all", "_extra")
        if value is False:
            return None
        if isinstance(value, str) and value:
            return value
        self.problems.append(f"{where}: catch_all must be a column name or false")
        return None

    def _text(
        self, data: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problems.append(f"{where}: {key} is missing")
            return None
        if not isinstance(value, str):
            self.problems.append(f"{where}: {key} must be a string")
            return None
        return value

    def _list(self, value: Any, where: str, key: str) -> list[Any]:
        if not isinstance(value, list):
            self.problems.append(f"{where}: {key} must be an array")
            return []
        return value

    def _texts(self, value: Any, where: str, key: str) -> list[str]:
        items = self._list(value, where, key)
        if not all(isinstance(item, str) for item in items):
            self.problems.append(f"{where}: {key} must be an array of strings")
            return []
        return items

    def _unknown(self, data: Mapping[str, Any], known: set[str], where: str) -> None:
        for key in data:
            if key not in known:
                self.problems.append(
                    f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})"
                )


def mapping_from_dict(data: Mapping[str, Any], *, collection: str | None = None) -> TableMapping:
    """A validated mapping from a parsed ``[mappings.<collection>]`` table.

    ``collection`` is the table's key; a ``collection`` entry inside it wins. Raises
    :class:`MappingError` listing every problem (unknown keys and wrong types too).
    """
    reader = _Reader()
    mapping = reader.mapping(data, collection)
    if mapping is None:
        raise MappingError(reader.problems)
    return mapping.validate()


def mappings_from_toml(text: str) -> dict[str, TableMapping]:
    """Every ``[mappings.*]`` table of a TOML document, by collection."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError([f"not valid TOML: {exc}"]) from exc
    tables = data.get("mappings", {})
    if not isinstance(tables, Mapping):
        raise MappingError(["mappings must be a table of tables"])
    problems: list[str] = []
    mappings: dict[str, TableMapping] = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            problems.append(f"mappings.{name} must be a table")
            continue
        try:
            mappings[name] = mapping_from_dict(table, collection=name)
        except MappingError as exc:
            problems += exc.problems
    if problems:
        raise MappingError(problems)
    return mappings
