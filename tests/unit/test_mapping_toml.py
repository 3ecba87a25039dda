"""Mappings to TOML and back: a reviewable file that reads back as the same mapping."""

from __future__ import annotations

import tomllib

import pytest

from migrationkit._mapping.spec import USERS, ChildTable, Column, MappingError, TableMapping
from migrationkit._mapping.toml import mapping_from_dict, mapping_to_toml, mappings_from_toml

NESTED = TableMapping(
    collection="sample_analytics.customers",
    table="customers",
    columns=(
        Column("name", "name", "text", ("string",), nullable=False),
        Column("address.city", "address__city", "text", ("string", "null")),
        Column("tier_and_details", "tier_and_details", "jsonb", ("object",)),
        Column("birthdate", "birthdate", "timestamptz", ("date",), on_mismatch="extra"),
    ),
    children=(
        ChildTable(
            "accounts",
            "customers__accounts",
            (Column("", "value", "integer", ("int", "null")),),
            catch_all=None,
        ),
        ChildTable("orders", "customers__orders", (Column("sku", "sku", "text", ("string",)),)),
    ),
    drop=("password", "meta.hash"),
)

AWKWARD = TableMapping(
    collection='we "quote"\\ and\ttab',
    table="Таблица",
    columns=(
        Column('a\\.b."c"', 'Order "Date"', "text", ("string",)),
        Column("$price", "price €", "numeric", ("int", "long", "decimal")),
        Column("line\nbreak", "x\x01y", "boolean", ("bool",)),
    ),
    catch_all="Rest",
)


def round_trip(mapping: TableMapping) -> TableMapping:
    return mappings_from_toml(mapping_to_toml(mapping))[mapping.collection]


@pytest.mark.parametrize("mapping", [USERS, NESTED, AWKWARD], ids=["users", "nested", "awkward"])
def test_a_mapping_written_to_toml_reads_back_equal(mapping: TableMapping) -> None:
    assert round_trip(mapping) == mapping


def test_the_file_is_one_line_per_column_under_the_collections_table() -> None:
    text = mapping_to_toml(NESTED)
    assert '[mappings."sample_analytics.customers"]' in text
    assert '[[mappings."sample_analytics.customers".children]]' in text
    lines = [line for line in text.splitlines() if line.startswith("  { path = ")]
    assert len(lines) == 6


def test_users_reads_as_today_with_no_catch_all() -> None:
    text = mapping_to_toml(USERS)
    assert "catch_all = false" in text
    assert 'validator = "users"' in text
    assert "nullable = false" in text


def test_comments_go_after_their_column_and_change_nothing() -> None:
    text = mapping_to_toml(
        NESTED,
        header="Inferred from 1,000 documents.\nReview before migrating.",
        comments={"name": "100% present", "orders[].sku": "strings\nonly"},
    )
    assert text.startswith("# Inferred from 1,000 documents.\n# Review before migrating.\n")
    assert '"string"], nullable = false },  # 100% present' in text
    assert "# strings only" in text
    assert mappings_from_toml(text)["sample_analytics.customers"] == NESTED


def test_a_hand_written_mapping_may_leave_out_names_and_bson_types() -> None:
    data = tomllib.loads(
        """
        [mappings.orders]
        table = "orders"
        columns = [
          { path = "customer.name", pg_type = "text" },
          { path = "total", pg_type = "numeric", nullable = false },
        ]
        """
    )
    mapping = mapping_from_dict(data["mappings"]["orders"], collection="orders")
    assert mapping.columns == (
        Column("customer.name", "customer__name", "text", ("string", "null")),
        Column("total", "total", "numeric", ("decimal", "int", "long"), nullable=False),
    )
    assert mapping.catch_all == "_extra"


def test_mappings_sit_beside_the_other_settings_of_migrationkit_toml() -> None:
    text = (
        "[migrationkit]\nworkers = 4\n\n" + mapping_to_toml(USERS) + "\n" + mapping_to_toml(NESTED)
    )
    assert set(mappings_from_toml(text)) == {"users", "sample_analytics.customers"}


def test_a_collection_entry_wins_over_the_tables_key() -> None:
    data = {"collection": "real", "table": "t", "columns": []}
    assert mapping_from_dict(data, collection="label").collection == "real"


def test_every_problem_of_a_file_is_listed_at_once() -> None:
    text = """
    [mappings.orders]
    table = 5
    catch_all = true
    colums = []
    columns = [
      { path = "a" },
      { path = "b", pg_type = "text", nullable = "no", on_mismatch = "skip" },
      "not a table",
    ]
    """
    with pytest.raises(MappingError) as caught:
        mappings_from_toml(text)
    found = "\n".join(caught.value.problems)
    for expected in (
        "table must be a string",
        "catch_all must be a column name or false",
        "unknown key 'colums'",
        "pg_type is missing",
        "nullable must be true or false",
        "on_mismatch must be 'reject' or 'extra'",
        "must be a table",
    ):
        assert expected in found


def test_a_mapping_that_reads_but_cannot_work_is_refused_with_its_problems() -> None:
    data = {"table": "t", "columns": [{"path": "a", "name": "id", "pg_type": "text"}]}
    with pytest.raises(MappingError, match="clashes with the kit's own columns"):
        mapping_from_dict(data, collection="c")


def test_invalid_toml_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="not valid TOML"):
        mappings_from_toml("[mappings.x\n")


def test_a_name_toml_cannot_write_is_refused() -> None:
    broken = TableMapping("c", "t", (Column("bad \udcff", "x", "text", ("string",)),))
    with pytest.raises(MappingError, match="lone surrogate"):
        mapping_to_toml(broken)
