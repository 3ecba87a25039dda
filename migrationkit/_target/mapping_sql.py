"""The SQL of a mapping, as strings: tables, staging tables, upserts, reads.

Identifiers are always quoted, so a column named ``Order Date`` or ``ключ`` is
that column. The parent table has the kit's ``id`` and ``mongo_id`` columns; a child
table is keyed by ``(mongo_id, position)`` and references the parent, so deleting a
document deletes its child rows. A re-written document replaces its child rows (delete,
then insert, in the caller's transaction), never leaving a stale or doubled one.
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
    """Move the staged rows in: upsert the parents, then replace their child rows.

    Every document staged in the parent's stage loses its old child rows, also when it
    now has none, so a re-written document never keeps a stale or doubled child row.
    """
    parent_stage = quote_identifier(stage_table_name(mapping.table))
    names = mapping.column_names
    updates = ", ".join(
        f"{quote_identifier(n)} = EXCLUDED.{quote_identifier(n)}" for n in names[1:]
    )
    conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    statements = [
        f"INSERT INTO {quote_identifier(mapping.table)} ({_column_list(names)}) "
        f"SELECT {_column_list(names)} FROM {parent_stage} "
        f'ON CONFLICT ("mongo_id") {conflict}'
    ]
    for child in mapping.children:
        table = quote_identifier(child.table)
        columns = _column_list(child.column_names)
        statements.append(
            f'DELETE FROM {table} WHERE "mongo_id" IN (SELECT "mongo_id" FROM {parent_stage})'
        )
        statements.append(
            f"INSERT INTO {table} ({columns}) SELECT {columns} "
            f"FROM {quote_identifier(stage_table_name(child.table))}"
        )
    return statements


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
