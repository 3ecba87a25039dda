"""One document into rows: USERS exactly as today, every type, nesting, nothing lost in silence."""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import Binary, Decimal128, Int64, ObjectId
from bson.datetime_ms import DatetimeMS
from pydantic import ValidationError

from migrationkit._mapping.normalize import DocumentRejected, compile_mapping, normalize
from migrationkit._mapping.restore import restore_document
from migrationkit._mapping.spec import (
    USERS,
    ChildTable,
    Column,
    MappingError,
    TableMapping,
    join_path,
)
from migrationkit._mapping.types import (
    DEFAULT_PG_TYPE,
    UnfitValue,
    bson_type,
    from_jsonb,
    same_bson,
    to_column,
)
from migrationkit._normalize.rows import describe_errors, document_to_row
from migrationkit._target.fidelity import SAMPLES
from migrationkit.workshop.seeding import UserFactory


def column(path: str, pg_type: str, *kinds: str, **options: Any) -> Column:
    name = options.pop("name", path.replace(".", "__"))
    return Column(path, name, pg_type, kinds, **options)


def table(*columns: Column, **options: Any) -> TableMapping:
    return TableMapping("things", "things", columns, **options)


def extra(rows: Any) -> Any:
    return None if rows.row[-1] is None else from_jsonb(rows.row[-1])


def rejection(mapping: TableMapping, document: dict[str, Any]) -> str:
    with pytest.raises(DocumentRejected) as caught:
        normalize(mapping, document)
    return caught.value.reason


# -- USERS: today's rows and reasons --------------------------------------------------------


def todays_outcome(document: dict[str, Any]) -> str:
    try:
        return repr(document_to_row(document))
    except ValidationError as exc:
        return f"rejected: {describe_errors(exc)}"


def users_outcome(document: dict[str, Any]) -> str:
    try:
        return repr(normalize(USERS, document).row)
    except DocumentRejected as exc:
        return f"rejected: {exc.reason}"


@functools.cache
def factory() -> UserFactory:
    return UserFactory(7)  # Faker fills its pools once: a fraction of a second


def seeded_users(count: int) -> list[dict[str, Any]]:
    users = list(factory().users(count))
    for user in users:
        user["_id"] = ObjectId()
    return users


def test_users_rows_are_identical_to_todays_for_seeded_users() -> None:
    for user in seeded_users(2_000):
        assert users_outcome(user) == todays_outcome(user)


_BROKEN: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("age text", lambda u: u.update(age="x")),
    ("age too big", lambda u: u.update(age=200)),
    ("age negative", lambda u: u.update(age=-1)),
    ("age whole double", lambda u: u.update(age=42.0)),
    ("age fractional", lambda u: u.update(age=42.5)),
    ("age bool", lambda u: u.update(age=True)),
    ("age null", lambda u: u.update(age=None)),
    ("age long", lambda u: u.update(age=Int64(30))),
    ("age decimal", lambda u: u.update(age=Decimal128("30"))),
    ("no age", lambda u: u.pop("age")),
    ("no username", lambda u: u.pop("username")),
    ("empty username", lambda u: u.update(username="")),
    ("long username", lambda u: u.update(username="u" * 255)),
    ("username NUL", lambda u: u.update(username="a\x00b")),
    ("username surrogate", lambda u: u.update(username="a\udcffb")),
    ("username number", lambda u: u.update(username=5)),
    ("bad email", lambda u: u.update(email="nope")),
    ("date text", lambda u: u.update(registered_at="2020-01-02T03:04:05Z")),
    ("date number", lambda u: u.update(registered_at=1_600_000_000)),
    ("date null", lambda u: u.update(registered_at=None)),
    ("no date", lambda u: u.pop("registered_at")),
    ("date garbage", lambda u: u.update(registered_at="soon")),
    ("everything wrong", lambda u: u.update(age="x", email=1, username=None)),
    ("string id", lambda u: u.update(_id="6b0a0a0a0a0a0a0a0a0a0a0a")),
    ("int id", lambda u: u.update(_id=7)),
    ("uuid id", lambda u: u.update(_id=Binary.from_uuid(uuid.UUID(int=7)))),
]


@pytest.mark.parametrize(("case", "change"), _BROKEN, ids=[case for case, _ in _BROKEN])
def test_users_rows_and_reasons_are_todays_for_odd_users(
    case: str, change: Callable[[dict[str, Any]], None]
) -> None:
    user = seeded_users(1)[0]
    change(user)
    assert users_outcome(user) == todays_outcome(user)


def test_users_reason_names_the_field_as_today() -> None:
    user = seeded_users(1)[0] | {"age": "x"}
    assert users_outcome(user) == "rejected: age: Input should be a valid integer (got 'x')"


def test_users_fields_outside_the_table_are_counted_as_dropped_never_silently() -> None:
    user = seeded_users(1)[0] | {"password": "secret", "address": {"city": "Lyon"}}
    rows = normalize(USERS, user)
    assert rows.dropped == ("password", "address")
    assert rows.row == document_to_row(user)


# -- the key -------------------------------------------------------------------------------


def test_distinct_id_types_get_distinct_keys() -> None:
    oid = ObjectId()
    value = uuid.uuid4()
    ids = [oid, str(oid), 1, "1", value, str(value), Binary.from_uuid(value), {"a": 1}, '{"a": 1}']
    keys = {normalize(table(), {"_id": document_id}).key for document_id in ids}
    assert len(keys) == len(ids) - 1  # a UUID and its subtype-4 Binary are the same BSON value


def test_a_uuid_id_has_the_same_key_however_the_driver_decoded_it() -> None:
    value = uuid.uuid4()
    as_uuid = normalize(table(), {"_id": value}).key
    assert as_uuid == normalize(table(), {"_id": Binary.from_uuid(value)}).key
    assert (
        normalize(table(), {"_id": {"u": value}}).key
        == normalize(table(), {"_id": {"u": Binary.from_uuid(value)}}).key
    )


def test_the_key_is_the_first_column() -> None:
    oid = ObjectId()
    rows = normalize(table(), {"_id": oid})
    assert rows.row[0] == rows.key == str(oid)


def test_a_document_without_id_is_rejected() -> None:
    assert rejection(table(), {"a": 1}) == "the document has no _id"


# -- every BSON type ---------------------------------------------------------------------


def every_type_mapping() -> TableMapping:
    kinds = sorted({bson_type(v) for _, v in SAMPLES} - {"null"})
    columns = [
        Column(f"t_{k}", f"t_{k}", DEFAULT_PG_TYPE[k], (k, "null"), on_mismatch="extra")
        for k in kinds
    ]
    return table(*columns)


@pytest.mark.parametrize(("label", "value"), SAMPLES, ids=[label for label, _ in SAMPLES])
def test_every_bson_type_lands_in_its_column_or_exactly_in_the_catch_all(
    label: str, value: Any
) -> None:
    kind = bson_type(value)
    field = f"t_{kind}" if kind != "null" else "t_string"
    mapping = every_type_mapping()
    rows = normalize(mapping, {"_id": 1, field: value})
    index = mapping.column_names.index(field)
    try:
        expected = to_column(DEFAULT_PG_TYPE.get(kind, "text"), value)
    except UnfitValue:
        assert rows.row[index] is None
        assert rows.kept_aside == (field,)
        assert same_bson(extra(rows)[field], value)
    else:
        assert rows.row[index] == expected or expected != expected  # NaN
        assert rows.kept_aside == ()


def test_a_value_of_another_type_rejects_with_a_reason_a_person_can_act_on() -> None:
    mapping = table(column("age", "integer", "int"))
    assert rejection(mapping, {"_id": 1, "age": "x"}) == 'field age: expected int, got string "x"'


def test_a_value_the_column_cannot_hold_rejects_with_why() -> None:
    mapping = table(column("note", "text", "string"))
    assert rejection(mapping, {"_id": 1, "note": "a\x00b"}) == (
        "field note: string contains a NUL character, which PostgreSQL text cannot store"
    )
    when = table(column("when", "timestamptz", "date"))
    assert "outside Python's datetime range" in rejection(when, {"_id": 1, "when": DatetimeMS(-1)})


def test_a_mismatch_kept_aside_goes_to_the_catch_all_and_is_counted() -> None:
    mapping = table(column("age", "integer", "int", on_mismatch="extra"))
    rows = normalize(mapping, {"_id": 1, "age": "x"})
    assert rows.row[1] is None
    assert extra(rows) == {"age": "x"}
    assert rows.kept_aside == ("age",)


def test_a_long_preview_in_a_reason_is_cut() -> None:
    reason = rejection(table(column("a", "integer", "int")), {"_id": 1, "a": "y" * 500})
    assert len(reason) < 120
    assert reason.endswith('..."') or reason.endswith("...")


def test_a_python_value_bson_cannot_hold_rejects_not_crashes() -> None:
    reason = rejection(table(column("a", "integer", "int")), {"_id": 1, "a": 2**70})
    assert (
        reason == "field a: integer 1180591620717411303424 does not fit in 64 bits, so not in BSON"
    )


# -- null, missing, catch-all -----------------------------------------------------------------


def test_null_and_missing_stay_distinct_through_the_catch_all() -> None:
    mapping = table(column("a", "text", "string", "null"))
    null = normalize(mapping, {"_id": 1, "a": None})
    missing = normalize(mapping, {"_id": 1})
    assert null.row[1] is missing.row[1] is None
    assert extra(null) == {"a": None}
    assert extra(missing) is None


def test_null_where_the_column_takes_no_null_is_a_mismatch() -> None:
    assert rejection(table(column("a", "text", "string")), {"_id": 1, "a": None}) == (
        "field a: expected string, got null"
    )


def test_a_required_column_that_is_missing_rejects() -> None:
    mapping = table(column("a", "text", "string", nullable=False))
    assert rejection(mapping, {"_id": 1}) == "field a: required, missing"


def test_unnamed_fields_land_in_the_catch_all_exactly() -> None:
    document = {"_id": 1, "a": "x", "b": Int64(2), "c": {"$d": [1.0, None]}, "": "empty"}
    rows = normalize(table(column("a", "text", "string")), document)
    assert same_bson(extra(rows), {"b": Int64(2), "c": {"$d": [1.0, None]}, "": "empty"})
    assert rows.dropped == ()


def test_without_a_catch_all_every_unnamed_field_is_dropped_and_named() -> None:
    mapping = table(column("a", "text", "string"), column("o.x", "integer", "int"), catch_all=None)
    rows = normalize(mapping, {"_id": 1, "a": "x", "b": 2, "o": {"x": 1, "y": 2}, "c": 3})
    assert sorted(rows.dropped) == ["b", "c", "o.y"]
    assert len(rows.row) == 3


def test_declared_drops_are_named_even_with_a_catch_all() -> None:
    mapping = table(column("a", "text", "string"), drop=("password", "meta.secret"))
    document = {"_id": 1, "password": "x", "meta": {"secret": 1, "kept": 2}}
    rows = normalize(mapping, document)
    assert sorted(rows.dropped) == ["meta.secret", "password"]
    assert extra(rows) == {"meta": {"kept": 2}}


@pytest.mark.parametrize("name", ["mongo_id", "_extra", "id", "position", "Mongo_ID"])
def test_fields_named_like_the_kits_columns_stay_intact_in_the_catch_all(name: str) -> None:
    rows = normalize(table(), {"_id": 1, name: "value"})
    assert rows.row[0] == "1"
    assert extra(rows) == {name: "value"}


def test_awkward_keys_can_be_columns() -> None:
    mapping = table(
        column("Name", "text", "string", name="Name"),
        column("name", "text", "string", name="name_2"),
        column("a\\.b", "integer", "int", name="a_dot_b"),
        column("$price", "numeric", "decimal", name="price"),
        column("with space", "boolean", "bool", name="with space"),
        column("ключ", "text", "string", name="ключ"),
    )
    document = {
        "_id": 1,
        "Name": "A",
        "name": "a",
        "a.b": 5,
        "$price": Decimal128("1.50"),
        "with space": True,
        "ключ": "значение",
        "a": {"b": "not the dotted key"},
    }
    rows = normalize(mapping, document)
    assert rows.row[1:-1] == ("A", "a", 5, Decimal128("1.50").to_decimal(), True, "значение")
    assert extra(rows) == {"a": {"b": "not the dotted key"}}


def test_keys_that_look_like_code_are_only_keys() -> None:
    key = "\"); import os  # \n'\\."
    mapping = table(column(join_path([key]), "text", "string", name="k"))
    assert normalize(mapping, {"_id": 1, key: "v"}).row[1] == "v"


# -- flattened objects ----------------------------------------------------------------------


FLAT = table(
    column("address.city", "text", "string"),
    column("address.geo.lat", "double precision", "double"),
)


def test_flattened_fields_become_columns_and_the_rest_of_the_object_the_catch_all() -> None:
    rows = normalize(FLAT, {"_id": 1, "address": {"city": "Lyon", "zip": 1, "geo": {"lat": 45.7}}})
    assert rows.row[1:3] == ("Lyon", 45.7)
    assert extra(rows) == {"address": {"zip": 1}}


def test_an_empty_or_null_flattened_object_is_kept_distinct_from_a_missing_one() -> None:
    assert extra(normalize(FLAT, {"_id": 1, "address": {}})) == {"address": {}}
    assert extra(normalize(FLAT, {"_id": 1, "address": None})) == {"address": None}
    assert extra(normalize(FLAT, {"_id": 1})) is None


def test_a_non_object_where_one_is_flattened_is_kept_aside() -> None:
    rows = normalize(FLAT, {"_id": 1, "address": "n/a"})
    assert rows.kept_aside == ("address",)
    assert extra(rows) == {"address": "n/a"}


def test_a_non_object_where_one_is_flattened_rejects_without_a_catch_all() -> None:
    mapping = table(column("address.city", "text", "string"), catch_all=None)
    assert rejection(mapping, {"_id": 1, "address": [1]}) == (
        "field address: expected object (its fields are columns), got array [1]"
    )


# -- child tables ------------------------------------------------------------------------------


ITEMS = ChildTable(
    "items",
    "things__items",
    (
        Column("", "value", "integer", ("int",), on_mismatch="extra"),
        column("sku", "text", "string"),
        column("price", "numeric", "decimal", "null"),
    ),
)


def test_each_element_is_a_child_row_keyed_by_the_parent_and_its_position() -> None:
    document = {"_id": 1, "items": [{"sku": "a", "price": Decimal128("1.5")}, 7]}
    rows = normalize(table(children=(ITEMS,)), document)
    assert rows.children == {
        "things__items": [
            ("1", 0, None, "a", Decimal128("1.5").to_decimal(), None),
            ("1", 1, 7, None, None, None),
        ]
    }
    assert extra(rows) is None


def test_element_fields_no_column_names_and_nested_arrays_go_to_the_childs_catch_all() -> None:
    document = {"_id": 1, "items": [{"sku": "a", "tags": ["x", ["y"]], "n": Int64(1)}]}
    rows = normalize(table(children=(ITEMS,)), document)
    (child,) = rows.children["things__items"]
    assert same_bson(from_jsonb(child[-1]), {"tags": ["x", ["y"]], "n": Int64(1)})


def test_elements_no_column_takes_are_the_childs_catch_all_as_they_are() -> None:
    rows = normalize(table(children=(ITEMS,)), {"_id": 1, "items": ["text", None, {}, [1]]})
    assert [from_jsonb(row[-1]) for row in rows.children["things__items"]] == [
        "text",
        None,
        {},
        [1],
    ]
    assert rows.kept_aside == ("items[]", "items[]", "items[]")  # "text", None, [1]


def test_an_empty_array_is_kept_distinct_from_a_missing_one() -> None:
    empty = normalize(table(children=(ITEMS,)), {"_id": 1, "items": []})
    assert empty.children == {"things__items": []}
    assert extra(empty) == {"items": []}
    assert extra(normalize(table(children=(ITEMS,)), {"_id": 1})) is None


def test_a_non_array_at_a_child_path_is_kept_aside() -> None:
    rows = normalize(table(children=(ITEMS,)), {"_id": 1, "items": {"sku": "a"}})
    assert rows.children == {"things__items": []}
    assert rows.kept_aside == ("items",)


def test_an_element_that_does_not_fit_names_its_position() -> None:
    document = {"_id": 1, "items": [{"sku": "a"}, {"sku": 5}]}
    assert rejection(table(children=(ITEMS,)), document) == (
        "field items[].sku: expected string, got int 5 (element 1)"
    )


def test_a_child_table_of_a_flattened_path() -> None:
    child = ChildTable("order.lines", "things__lines", (column("qty", "integer", "int"),))
    rows = normalize(table(children=(child,)), {"_id": 1, "order": {"lines": [{"qty": 2}], "n": 1}})
    assert rows.children["things__lines"] == [("1", 0, 2, None)]
    assert extra(rows) == {"order": {"n": 1}}


# -- restoring ---------------------------------------------------------------------------


def test_rows_restore_the_document_they_came_from() -> None:
    mapping = table(
        column("address.city", "text", "string", "null"),
        column("age", "integer", "int", on_mismatch="extra"),
        children=(ITEMS,),
    )
    documents = [
        {
            "_id": 1,
            "address": {"city": "Lyon", "zip": 1},
            "age": 3,
            "items": [1, {"sku": "a"}, "x"],
        },
        {"_id": 2, "address": {"city": None}, "age": "old", "items": [], "other": [None]},
        {"_id": 3, "address": None, "items": [None, {}, {"price": None, "sku": "b"}]},
        {"_id": 4},
    ]
    for document in documents:
        rows = normalize(mapping, copy.deepcopy(document))
        restored = restore_document(mapping, rows.row, rows.children)
        source = {k: v for k, v in document.items() if k != "_id"}
        assert same_bson(sort_keys(restored), sort_keys(source)), document


def sort_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: sort_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(item) for item in value]
    return value


# -- compiling -----------------------------------------------------------------------------


def test_compiling_an_invalid_mapping_raises_every_problem() -> None:
    with pytest.raises(MappingError, match="clashes with the kit's own columns"):
        compile_mapping(table(column("a", "text", "string", name="id")))


def test_normalize_compiles_each_mapping_once() -> None:
    from migrationkit._mapping.normalize import _cached

    _cached.cache_clear()
    for _ in range(3):
        normalize(USERS, seeded_users(1)[0])
    assert _cached.cache_info().misses == 1


def test_the_documents_themselves_are_not_changed() -> None:
    document = {"_id": 1, "age": 42.0, "username": "u", "email": "u@x.io", "extra": [1]}
    before = copy.deepcopy(document)
    normalize(USERS, document)
    normalize(table(children=(ITEMS,)), document)
    assert document == before


def test_dates_pass_through_unchanged_to_the_millisecond() -> None:
    when = datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    rows = normalize(table(column("when", "timestamptz", "date")), {"_id": 1, "when": when})
    assert rows.row[1] == when
