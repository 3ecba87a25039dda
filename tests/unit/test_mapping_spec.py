"""What a mapping is, and every problem ``validate()`` finds in one."""

from __future__ import annotations

import dataclasses

import pytest

from migrationkit._errors import ConfigurationError
from migrationkit._mapping.spec import (
    KIT_COLUMNS,
    MAX_COLUMNS,
    USERS,
    ChildTable,
    Column,
    MappingError,
    TableMapping,
    join_path,
    split_path,
)
from migrationkit._normalize.rows import ROW_COLUMNS


def text(path: str, name: str | None = None, **options: object) -> Column:
    return Column(path, name or path.replace(".", "__"), "text", ("string", "null"), **options)  # type: ignore[arg-type]


def mapping(*columns: Column, **options: object) -> TableMapping:
    return TableMapping("things", "things", columns, **options)  # type: ignore[arg-type]


def problems(m: TableMapping) -> str:
    return "\n".join(m.problems())


# -- shape --------------------------------------------------------------------------------


def test_users_rows_have_todays_columns_in_todays_order() -> None:
    assert USERS.column_names == ROW_COLUMNS


def test_users_is_valid_with_its_validator_and_no_catch_all() -> None:
    assert USERS.validate() is USERS
    assert (USERS.catch_all, USERS.validator) == (None, "users")


def test_parent_columns_are_key_then_columns_then_catch_all() -> None:
    m = mapping(text("b"), text("a"))
    assert m.column_names == ("mongo_id", "b", "a", "_extra")
    assert dataclasses.replace(m, catch_all=None).column_names == ("mongo_id", "b", "a")


def test_child_rows_are_key_position_columns_catch_all() -> None:
    child = ChildTable("items", "things__items", (text("sku"),))
    assert child.column_names == ("mongo_id", "position", "sku", "_extra")


def test_mappings_are_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        USERS.table = "other"  # type: ignore[misc]
    assert hash(USERS) == hash(dataclasses.replace(USERS))


# -- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "keys"),
    [
        ("a", ("a",)),
        ("a.b.c", ("a", "b", "c")),
        ("a\\.b", ("a.b",)),
        ("a\\\\.b", ("a\\", "b")),
        ("$set.x y", ("$set", "x y")),
        ("a..b", ("a", "", "b")),
        ("", ()),
    ],
)
def test_dotted_paths_split_into_keys(path: str, keys: tuple[str, ...]) -> None:
    assert split_path(path) == keys


@pytest.mark.parametrize(
    "keys",
    [("a.b",), ("a\\b", "c"), ("", "x"), ("ключ", "$", "with space"), ("trailing\\",)],
)
def test_any_keys_survive_join_then_split(keys: tuple[str, ...]) -> None:
    assert split_path(join_path(keys)) == keys


# -- validate -----------------------------------------------------------------------------


def test_a_name_longer_than_63_bytes_is_a_problem_counted_in_bytes() -> None:
    assert "is 64 bytes; PostgreSQL keeps 63" in problems(mapping(text("a", "é" * 32)))
    assert problems(mapping(text("a", "é" * 31 + "x"))) == ""


def test_names_that_differ_only_in_case_are_a_problem() -> None:
    found = problems(mapping(text("Name"), text("name")))
    assert "'Name' and 'name' are equal after case-folding" in found


@pytest.mark.parametrize("name", [*KIT_COLUMNS, "ID", "Mongo_Id"])
def test_a_column_named_like_the_kits_own_is_a_problem(name: str) -> None:
    assert "clashes with the kit's own columns" in problems(mapping(text("x", name)))


def test_more_than_1600_columns_is_a_problem() -> None:
    columns = [text(f"f{i}") for i in range(MAX_COLUMNS)]
    assert "1603 columns; PostgreSQL allows 1600" in problems(mapping(*columns))


def test_names_with_spaces_non_ascii_dots_and_dollars_are_fine_quoted() -> None:
    m = mapping(text("a", "Order Date"), text("b", "ключ"), text("c", "a.b"), text("d", "$x"))
    assert m.problems() == []


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (Column("a", "a", "varchar", ("string",)), "unknown pg_type 'varchar'"),
        (Column("a", "a", "text", ("str",)), "unknown BSON type 'str'"),
        (Column("a", "a", "integer", ("long",)), "integer cannot hold BSON long"),
        (Column("a", "a", "text", ("double",)), "text cannot hold BSON double"),
        (Column("a", "a", "text", ("string", "objectId")), "text would blur objectId, string"),
        (Column("a", "a", "text", ()), "no bson_types"),
        (Column("a", "a", "text", ("string", "null"), nullable=False), "cannot take BSON null"),
        (Column("a", "a", "text", ("string",), on_mismatch="drop"), "must be 'reject' or 'extra'"),  # type: ignore[arg-type]
        (
            Column("a", "a", "text", ("string",), nullable=False, on_mismatch="extra"),
            "NOT NULL column cannot keep mismatches aside",
        ),
        (Column("", "a", "text", ("string",)), "an empty path names the element"),
    ],
)
def test_column_problems(column: Column, expected: str) -> None:
    assert expected in problems(mapping(column))


def test_keeping_mismatches_aside_needs_a_catch_all() -> None:
    m = mapping(text("a", on_mismatch="extra"), catch_all=None)
    assert "on_mismatch='extra' needs a catch-all column" in problems(m)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"columns": (text("a"), text("a.b"))}, "overlaps column 'a'"),
        ({"columns": (text("a"), text("a", "a2"))}, "overlaps column 'a'"),
        ({"columns": (text("a"),), "drop": ("a",)}, "drop 'a' (path 'a') overlaps column 'a'"),
        ({"columns": (text("_id"),)}, "overlaps the key _id"),
        ({"columns": (text("_id.x"),)}, "overlaps the key _id"),
        (
            {"columns": (text("a"),), "children": (ChildTable("a.items", "t_items", ()),)},
            "child table 't_items' (path 'a.items') overlaps column 'a'",
        ),
        ({"columns": (), "drop": ("",)}, "drop '': the path is empty"),
    ],
)
def test_path_problems(options: dict[str, object], expected: str) -> None:
    m = TableMapping("things", "things", **options)  # type: ignore[arg-type]
    assert expected in problems(m)


def test_a_child_table_named_like_its_parent_is_a_problem() -> None:
    m = mapping(children=(ChildTable("items", "THINGS", ()),))
    assert "table names: 'things' and 'THINGS' are equal after case-folding" in problems(m)


def test_a_child_tables_element_column_and_field_columns_do_not_overlap() -> None:
    child = ChildTable("items", "t_items", (Column("", "value", "integer", ("int",)), text("sku")))
    assert mapping(children=(child,)).problems() == []


def test_a_catch_all_named_like_a_kit_column_is_a_problem() -> None:
    assert "catch-all 'mongo_id' clashes" in problems(mapping(catch_all="mongo_id"))


def test_an_unregistered_validator_is_a_problem() -> None:
    assert "validator 'nope' is not registered" in problems(mapping(validator="nope"))


def test_validate_lists_every_problem_at_once() -> None:
    m = mapping(text("a", "position"), text("b", "x" * 64), Column("c", "c", "integer", ("long",)))
    with pytest.raises(MappingError) as caught:
        m.validate()
    assert len(caught.value.problems) == 3
    assert str(caught.value).count("\n- ") == 3


def test_a_mapping_error_is_a_value_error_and_a_configuration_error() -> None:
    assert issubclass(MappingError, ValueError)
    assert issubclass(MappingError, ConfigurationError)
