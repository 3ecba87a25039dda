"""The SQL of a mapping: quoted names, keys that hold, upserts that replace child rows."""

from __future__ import annotations

from migrationkit._mapping.spec import USERS, ChildTable, Column, TableMapping
from migrationkit._target.mapping_sql import (
    create_table_statements,
    drop_table_statements,
    select_statements,
    stage_table_name,
    stage_table_statements,
    upsert_statements,
)
from migrationkit._target.writers import insert_statement

ORDERS = TableMapping(
    "orders",
    'Orders "2024"',
    (Column("total", "Total €", "numeric", ("decimal",), nullable=False),),
    children=(ChildTable("lines", "orders__lines", (Column("sku", "sku", "text", ("string",)),)),),
)


def test_the_parent_table_has_the_kit_key_columns_then_the_mapped_ones() -> None:
    parent = create_table_statements(ORDERS)[0]
    assert parent.startswith('CREATE TABLE IF NOT EXISTS "Orders ""2024""" (')
    assert '"id" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY' in parent
    assert '"mongo_id" text NOT NULL UNIQUE' in parent
    assert '"Total €" numeric NOT NULL' in parent
    assert '"_extra" jsonb' in parent


def test_users_table_is_todays_shape() -> None:
    (parent,) = create_table_statements(USERS)
    assert '"age" integer NOT NULL' in parent
    assert '"registered_at" timestamptz,' not in parent
    assert parent.rstrip().endswith('"registered_at" timestamptz\n)')
    assert "_extra" not in parent


def test_a_child_table_is_keyed_by_document_and_position_and_follows_its_parent() -> None:
    child = create_table_statements(ORDERS)[1]
    assert 'REFERENCES "Orders ""2024""" ("mongo_id") ON DELETE CASCADE' in child
    assert 'PRIMARY KEY ("mongo_id", "position")' in child


def test_children_are_dropped_before_their_parent() -> None:
    assert drop_table_statements(ORDERS) == [
        'DROP TABLE IF EXISTS "orders__lines"',
        'DROP TABLE IF EXISTS "Orders ""2024"""',
    ]


def test_stage_names_fit_postgresqls_63_bytes_and_stay_distinct() -> None:
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    assert len(stage_table_name(long_a).encode()) <= 63
    assert stage_table_name(long_a) != stage_table_name(long_b)
    assert stage_table_name("orders") == "mk_stage__orders"


def test_staging_tables_are_temporary_and_emptied_at_commit() -> None:
    statements = stage_table_statements(ORDERS)
    assert len(statements) == 2
    assert all("CREATE TEMP TABLE" in s and "ON COMMIT DELETE ROWS" in s for s in statements)


def test_the_upsert_writes_only_parents_and_child_rows_that_differ() -> None:
    parent, delete, insert = upsert_statements(ORDERS)
    assert 'ON CONFLICT ("mongo_id") DO UPDATE SET "Total €" = EXCLUDED."Total €"' in parent
    assert parent.endswith(
        'WHERE NOT record_image_eq(ROW(EXCLUDED."Total €", EXCLUDED."_extra"), '
        'ROW(t."Total €", t."_extra"))'
    )
    assert delete.startswith(
        'DELETE FROM "orders__lines" AS t WHERE t."mongo_id" IN '
        '(SELECT "mongo_id" FROM "mk_stage__Orders ""2024""") AND NOT EXISTS '
        '(SELECT FROM "mk_stage__orders__lines" AS s WHERE s."mongo_id" = t."mongo_id" '
        'AND s."position" = t."position" AND record_image_eq(ROW(s."sku", s."_extra"), '
    )
    assert insert.startswith(
        'INSERT INTO "orders__lines" ("mongo_id", "position", "sku", "_extra") '
        'SELECT "mongo_id", "position", "sku", "_extra" FROM "mk_stage__orders__lines" AS s '
        "WHERE NOT EXISTS"
    )


def test_a_table_of_keys_only_upserts_by_doing_nothing() -> None:
    (statement,) = upsert_statements(TableMapping("c", "t", (), catch_all=None))
    assert statement.endswith('ON CONFLICT ("mongo_id") DO NOTHING')


def test_insert_statements_number_every_parameter() -> None:
    assert insert_statement("t", ["a", "b"], rows=2) == (
        'INSERT INTO "t" ("a", "b") VALUES ($1, $2), ($3, $4)'
    )


def test_reads_select_the_columns_in_row_order() -> None:
    statements = select_statements(ORDERS)
    assert statements['Orders "2024"'].startswith('SELECT "mongo_id", "Total €", "_extra" FROM')
    assert statements["orders__lines"].endswith('ORDER BY "mongo_id", "position"')
