"""The SQL of a mapping, as strings: tables, staging tables, upserts, reads.

Identifiers are always quoted, so a column named ``Order Date`` or ``ключ`` is
that column. The parent table has the kit's ``id`` and ``mongo_id`` columns; a child
table is keyed by ``(mongo_id, position)`` and references the parent, so deleting a
document deletes its child rows. A re-written document ends with exactly its staged child
rows, never a stale or doubled one; rows already there byte for byte are left alone
(:func:`upsert_statements`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from migrationkit._mapping.spec import MAX_IDENTIFIER_BYTES, ChildTable, Column, TableMapping
from migrationkit._target.writers import quote_identifier


def _column_list(names: Sequence[str]) -> str:
    return ", ".join(quote_identifier(name) for name in names)


def _column_definition(column: Column) -> str:
    return f"{quote_identifier(column.name)} {column.pg_type}" + (
        "" if column.nullable else " NOT NULL"
    )


def _catch_all_definition(catch_all: str | None) -> list[str]:
    return [f"{quote_identifier(catch_all)} jsonb"] if catch_all else []


def create_table_statements(mapping: TableMapping) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS`` for the parent table, then each child table."""
    parent = [
        '"id" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY',
        '"mongo_id" text NOT NULL UNIQUE',
        *(_column_definition(column) for column in mapping.columns),
        *_catch_all_definition(mapping.catch_all),
    ]
    statements = [_create(mapping.table, parent)]
    for child in mapping.children:
        statements.append(_create(child.table, _child_definitions(mapping.table, child)))
    return statements


def _child_definitions(parent: str, child: ChildTable) -> list[str]:
    return [
        f'"mongo_id" text NOT NULL REFERENCES {quote_identifier(parent)} ("mongo_id") '
        "ON DELETE CASCADE",
        '"position" integer NOT NULL',
        *(_column_definition(column) for column in child.columns),
        *_catch_all_definition(child.catch_all),
        'PRIMARY KEY ("mongo_id", "position")',
    ]


def _create(table: str, definitions: list[str]) -> str:
    body = ",\n    ".join(definitions)
    return f"CREATE TABLE IF NOT EXISTS {quote_identifier(table)} (\n    {body}\n)"


def drop_table_statements(mapping: TableMapping) -> list[str]:
    """``DROP TABLE IF EXISTS`` for the child tables, then the parent."""
    tables = [child.table for child in mapping.children] + [mapping.table]
    return [f"DROP TABLE IF EXISTS {quote_identifier(table)}" for table in tables]


def stage_table_name(table: str) -> str:
    """The session's staging table for ``table`` (short enough for PostgreSQL's 63 bytes)."""
    name = f"mk_stage__{table}"
    if len(name.encode("utf-8", "surrogatepass")) <= MAX_IDENTIFIER_BYTES:
        return name
    return "mk_stage__" + hashlib.sha256(table.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _typed_columns(mapping: TableMapping, child: ChildTable | None) -> list[str]:
    if child is None:
        columns, catch_all, keys = mapping.columns, mapping.catch_all, ['"mongo_id" text']
    else:
        columns, catch_all = child.columns, child.catch_all
        keys = ['"mongo_id" text', '"position" integer']
    return [
        *keys,
        *(f"{quote_identifier(c.name)} {c.pg_type}" for c in columns),
        *_catch_all_definition(catch_all),
    ]


def stage_table_statements(mapping: TableMapping) -> list[str]:
    """Temporary staging tables (one per target table), emptied at each commit."""
    tables: list[tuple[str, ChildTable | None]] = [(mapping.table, None)]
    tables += [(child.table, child) for child in mapping.children]
    return [
        f"CREATE TEMP TABLE IF NOT EXISTS {quote_identifier(stage_table_name(table))} "
        f"({', '.join(_typed_columns(mapping, child))}) ON COMMIT DELETE ROWS"
        for table, child in tables
    ]


def truncate_stage_statement(mapping: TableMapping) -> str:
    tables = [mapping.table] + [child.table for child in mapping.children]
    return "TRUNCATE " + ", ".join(quote_identifier(stage_table_name(t)) for t in tables)


def upsert_statements(mapping: TableMapping) -> list[str]:
    """Move the staged rows in: upsert the parents, then make their child rows the staged ones.

    Only what differs is written. A parent row already holding its staged values is not
    updated; a child row already there, at its position, with the same values is kept;
    the others of every staged document go, and the staged rows not yet there are
    inserted. A follower's update rarely changes every element of an array (a ``$push``
    adds one), and each child row inserted costs PostgreSQL a foreign-key check, so this
    writes a fraction of the rows that deleting and inserting them all would.

    "The same values" is ``record_image_eq``, byte-for-byte equality (the operator ``*=``):
    ``1.50`` and ``1.5`` are equal numerics but different values to keep, and so are
    ``-0.0`` and ``0.0``.
    """
    parent_stage = quote_identifier(stage_table_name(mapping.table))
    names = mapping.column_names
    statements = [
        f"INSERT INTO {quote_identifier(mapping.table)} AS t ({_column_list(names)}) "
        f"SELECT {_column_list(names)} FROM {parent_stage} "
        f'ON CONFLICT ("mongo_id") {_update_if_different(names[1:])}'
    ]
    for child in mapping.children:
        table = quote_identifier(child.table)
        stage = quote_identifier(stage_table_name(child.table))
        columns = _column_list(child.column_names)
        same_place = 's."mongo_id" = t."mongo_id" AND s."position" = t."position"'
        statements.append(
            f"DELETE FROM {table} AS t "
            f'WHERE t."mongo_id" IN (SELECT "mongo_id" FROM {parent_stage}) '
            f"AND NOT EXISTS (SELECT FROM {stage} AS s WHERE {same_place} "
            f"AND {_same_values(child.column_names[2:])})"
        )
        statements.append(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} AS s "
            f"WHERE NOT EXISTS (SELECT FROM {table} AS t WHERE {same_place})"
        )
    return statements


def _update_if_different(names: Sequence[str]) -> str:
    """The ``ON CONFLICT`` action: update the columns ``names`` unless they hold these values."""
    if not names:
        return "DO NOTHING"
    updates = ", ".join(f"{quote_identifier(n)} = EXCLUDED.{quote_identifier(n)}" for n in names)
    return f"DO UPDATE SET {updates} WHERE NOT {_same_values(names, staged='EXCLUDED')}"


def _same_values(names: Sequence[str], *, staged: str = "s", held: str = "t") -> str:
    """SQL: the columns ``names`` of ``staged`` and ``held`` are equal byte for byte."""
    if not names:
        return "TRUE"
    columns = [quote_identifier(name) for name in names]
    rows = (", ".join(f"{alias}.{c}" for c in columns) for alias in (staged, held))
    return "record_image_eq({}, {})".format(*(f"ROW({row})" for row in rows))


def select_statements(mapping: TableMapping) -> dict[str, str]:
    """Per table, the rows of the documents whose keys are ``$1`` (a ``text[]``)."""
    statements = {
        mapping.table: f"SELECT {_column_list(mapping.column_names)} "
        f'FROM {quote_identifier(mapping.table)} WHERE "mongo_id" = ANY($1::text[])'
    }
    for child in mapping.children:
        statements[child.table] = (
            f"SELECT {_column_list(child.column_names)} FROM {quote_identifier(child.table)} "
            'WHERE "mongo_id" = ANY($1::text[]) ORDER BY "mongo_id", "position"'
        )
    return statements


def delete_statement(mapping: TableMapping) -> str:
    """Delete the documents whose keys are ``$1`` (a ``text[]``); child rows go with them."""
    return f'DELETE FROM {quote_identifier(mapping.table)} WHERE "mongo_id" = ANY($1::text[])'
