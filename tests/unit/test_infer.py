"""Inference: per-path statistics over documents, and the mapping and report made from them."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

from migrationkit._mapping.infer import (
    ITEMS,
    FieldReport,
    FieldStats,
    Inference,
    fold_name,
    infer_mapping,
    value_like_kind,
)
from migrationkit._mapping.spec import Column, TableMapping
from migrationkit._mapping.toml import mappings_from_toml


def infer(documents: list[dict[str, Any]], **options: Any) -> Inference:
    return infer_mapping(
        documents,
        collection="things",
        table="things",
        sampled=options.pop("sampled", None),
        total=options.pop("total", len(documents)),
        **options,
    )


def column(mapping: TableMapping, path: str) -> Column:
    (found,) = [c for c in mapping.columns if c.path == path]
    return found


def line(inference: Inference, path: str) -> FieldReport:
    (found,) = [f for f in inference.report.fields if f.path == path]
    return found


def with_ids(*documents: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"_id": ObjectId(), **document} for document in documents]


def hex_key(number: int) -> str:
    # shaped like sample_analytics.customers' tier_and_details keys
    return hashlib.md5(str(number).encode()).hexdigest()


# --- statistics ------------------------------------------------------------------------


def test_presence_counts_the_documents_that_hold_the_path() -> None:
    stats = FieldStats.collect([{"a": 1}, {"a": 2}, {"b": 3}])
    node = stats.get(("a",))
    assert node is not None
    assert (stats.documents, node.documents) == (3, 2)


def test_null_is_counted_as_a_type_and_a_missing_field_as_absence() -> None:
    stats = FieldStats.collect([{"a": None}, {"a": 1}, {}])
    node = stats.get(("a",))
    assert node is not None
    assert (node.documents, dict(node.types)) == (2, {"null": 1, "int": 1})


def test_every_bson_type_is_counted_under_its_type_alias() -> None:
    values = {
        "double": 1.5,
        "string": "s",
        "object": {"k": 1},
        "array": [1],
        "binData": Binary(b"\x01", 0),
        "uuid": uuid.uuid4(),
        "objectId": ObjectId(),
        "bool": True,
        "date": datetime(1960, 1, 1, tzinfo=UTC),
        "null": None,
        "regex": Regex("^a", "i"),
        "javascript": Code("x"),
        "int": 1,
        "timestamp": Timestamp(1, 2),
        "long": Int64(1),
        "decimal": Decimal128("1.5"),
        "minKey": MinKey(),
        "maxKey": MaxKey(),
    }
    stats = FieldStats.collect([{"v": value} for value in values.values()])
    node = stats.get(("v",))
    assert node is not None
    assert dict(node.types) == dict.fromkeys(values, 1)


def test_arrays_record_their_lengths_and_element_types() -> None:
    stats = FieldStats.collect([{"a": [1, "x"]}, {"a": []}, {"a": [2, 3, 4]}])
    node, elements = stats.get(("a",)), stats.get(("a", ITEMS))
    assert node is not None
    assert elements is not None
    assert (node.min_length, node.max_length, node.mean_length) == (0, 3, 5 / 3)
    assert dict(elements.types) == {"int": 4, "string": 1}


def test_objects_record_their_sub_keys_in_first_seen_order() -> None:
    stats = FieldStats.collect([{"o": {"b": 1, "a": 2}}, {"o": {"c": 3}}])
    node = stats.get(("o",))
    assert node is not None
    assert (list(node.children), node.mean_keys) == (["b", "a", "c"], 1.5)


def test_a_path_under_an_array_counts_each_document_once() -> None:
    stats = FieldStats.collect([{"a": [{"x": 1}, {"x": 2}]}, {"a": [{"x": 3}]}])
    node = stats.get(("a", ITEMS, "x"))
    assert node is not None
    assert (node.documents, node.occurrences) == (2, 3)


def test_keys_that_look_like_values_are_pooled_instead_of_followed_one_by_one() -> None:
    stats = FieldStats.collect([{"m": {hex_key(n): {"tier": "gold"}}} for n in range(1000)])
    node = stats.get(("m",))
    assert node is not None
    assert list(node.children) == ["\x00*"]
    assert node.value_like_occurrences == 1000


def test_distinct_keys_followed_per_object_are_capped() -> None:
    stats = FieldStats.collect([{"m": {f"word{n}x": n}} for n in range(50)], max_keys=10)
    node = stats.get(("m",))
    assert node is not None
    assert (len(node.children), node.keys_overflowed) == (10, True)


def test_paths_overall_are_capped_and_the_values_not_examined_are_counted() -> None:
    stats = FieldStats.collect([{f"f{n}x": n for n in range(30)}], max_paths=20)
    assert (stats.paths, stats.untracked_values) == (20, 10)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("5f3a1b2c9d8e7f6a5b4c3d2e", "ObjectId hex"),
        ("3b241101-e2bb-4255-8caf-4136c566a962", "UUID"),
        ("12345", "number"),
        ("2024-05-01", "ISO date"),
        ("2024-05-01T10:20:30Z", "ISO date"),
        ("d41d8cd98f00b204e9800998ecf8427e", "hash"),
        ("name", None),
        ("address_line_2", None),
        ("deadbeefcafebabefeed", None),  # hex letters only: a word, not a hash
    ],
)
def test_keys_that_look_like_values_are_recognised(key: str, kind: str | None) -> None:
    assert value_like_kind(key) == kind


# --- scalars ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pg_type"),
    [
        (1, "integer"),
        (Int64(1), "bigint"),
        (1.5, "double precision"),
        (Decimal128("1.50"), "numeric"),
        ("s", "text"),
        (True, "boolean"),
        (datetime(1950, 6, 1, tzinfo=UTC), "timestamptz"),
        (ObjectId(), "text"),
        (Binary(b"\x00\x01", 0), "bytea"),
        (uuid.uuid4(), "uuid"),
        (Code("function () {}"), "text"),
        (Regex("^a"), "jsonb"),
        (Timestamp(1, 1), "jsonb"),
        (MinKey(), "jsonb"),
        (MaxKey(), "jsonb"),
    ],
)
def test_a_scalar_of_one_type_becomes_a_column_of_its_type(value: object, pg_type: str) -> None:
    mapping = infer(with_ids({"v": value})).mapping
    assert column(mapping, "v").pg_type == pg_type


def test_a_column_present_and_non_null_in_every_document_is_not_null() -> None:
    mapping = infer(with_ids({"v": 1}, {"v": 2})).mapping
    assert column(mapping, "v").nullable is False


def test_a_field_missing_from_a_document_is_nullable() -> None:
    mapping = infer(with_ids({"v": 1}, {})).mapping
    assert column(mapping, "v").nullable is True


def test_a_field_null_in_a_document_is_nullable_and_takes_null() -> None:
    mapping = infer(with_ids({"v": 1}, {"v": None})).mapping
    assert (column(mapping, "v").nullable, column(mapping, "v").bson_types) == (
        True,
        ("int", "null"),
    )


def test_a_field_only_ever_null_is_a_nullable_jsonb_column() -> None:
    mapping = infer(with_ids({"v": None})).mapping
    assert (column(mapping, "v").pg_type, column(mapping, "v").nullable) == ("jsonb", True)


def test_nullable_columns_keep_a_mismatch_in_the_catch_all_and_not_null_ones_reject() -> None:
    mapping = infer(with_ids({"a": 1, "b": 1}, {"a": 2})).mapping
    assert (column(mapping, "a").on_mismatch, column(mapping, "b").on_mismatch) == (
        "reject",
        "extra",
    )


def test_without_a_catch_all_every_column_rejects_a_mismatch() -> None:
    mapping = infer(with_ids({"a": 1}, {}), catch_all=None).mapping
    assert column(mapping, "a").on_mismatch == "reject"


def test_the_id_is_the_key_not_a_column() -> None:
    inference = infer(with_ids({"v": 1}))
    assert [c.path for c in inference.mapping.columns] == ["v"]
    assert line(inference, "_id").store == "key"


# --- mixed types -----------------------------------------------------------------------


def test_int_and_long_widen_to_bigint_with_a_warning_naming_the_types_and_counts() -> None:
    inference = infer(with_ids({"n": 1}, {"n": Int64(2)}, {"n": Int64(3)}))
    assert column(inference.mapping, "n").pg_type == "bigint"
    assert line(inference, "n").warnings == ("mixed types (long 2, int 1): bigint",)


def test_int_long_and_decimal_widen_to_numeric() -> None:
    mapping = infer(with_ids({"n": 1}, {"n": Int64(2)}, {"n": Decimal128("3.5")})).mapping
    assert column(mapping, "n").pg_type == "numeric"


def test_other_mixed_types_become_jsonb_with_a_warning_naming_the_types_and_counts() -> None:
    inference = infer(with_ids({"v": "7"}, {"v": 7}, {"v": "8"}))
    assert column(inference.mapping, "v").pg_type == "jsonb"
    assert line(inference, "v").warnings == ("mixed types (string 2, int 1): jsonb",)


def test_a_double_mixed_with_an_int_becomes_jsonb_not_a_lossy_float() -> None:
    mapping = infer(with_ids({"v": 1.5}, {"v": 2})).mapping
    assert column(mapping, "v").pg_type == "jsonb"


# --- nested ----------------------------------------------------------------------------

CUSTOMER = {"address": {"city": "Lyon", "zip": "69001"}, "orders": [{"sku": "a", "qty": 1}]}


def test_objects_are_jsonb_by_default() -> None:
    mapping = infer(with_ids(CUSTOMER)).mapping
    assert column(mapping, "address").pg_type == "jsonb"


def test_arrays_are_jsonb_by_default() -> None:
    mapping = infer(with_ids(CUSTOMER)).mapping
    assert (column(mapping, "orders").pg_type, mapping.children) == ("jsonb", ())


def test_flatten_makes_each_sub_field_an_a__b_column() -> None:
    mapping = infer(with_ids(CUSTOMER), nested="flatten").mapping
    flattened = [(c.path, c.name) for c in mapping.columns if c.path.startswith("address")]
    assert flattened == [("address.city", "address__city"), ("address.zip", "address__zip")]


def test_flatten_leaves_arrays_as_jsonb() -> None:
    mapping = infer(with_ids(CUSTOMER), nested="flatten").mapping
    assert (column(mapping, "orders").pg_type, mapping.children) == ("jsonb", ())


def test_a_flattened_field_missing_from_some_objects_is_nullable() -> None:
    documents = with_ids({"o": {"a": 1, "b": 2}}, {"o": {"a": 3}})
    mapping = infer(documents, nested="flatten").mapping
    assert (column(mapping, "o.a").nullable, column(mapping, "o.b").nullable) == (False, True)


def test_an_override_flattens_one_object_and_leaves_the_others_jsonb() -> None:
    documents = with_ids({**CUSTOMER, "billing": {"city": "Nice"}})
    mapping = infer(documents, overrides={"address": "flatten"}).mapping
    assert column(mapping, "address.city").name == "address__city"
    assert column(mapping, "billing").pg_type == "jsonb"


def test_child_makes_an_array_of_objects_a_child_table_of_its_fields() -> None:
    mapping = infer(with_ids(CUSTOMER), nested="child").mapping
    (child,) = mapping.children
    assert (child.path, child.table) == ("orders", "things__orders")
    assert [(c.path, c.name, c.pg_type) for c in child.columns] == [
        ("sku", "sku", "text"),
        ("qty", "qty", "integer"),
    ]


def test_child_makes_an_array_of_scalars_a_child_table_with_a_value_column() -> None:
    mapping = infer(
        with_ids({"accounts": [371138, 324287]}), overrides={"accounts": "child"}
    ).mapping
    (child,) = mapping.children
    assert [(c.path, c.name, c.pg_type) for c in child.columns] == [("", "value", "integer")]


def test_an_array_inside_a_child_element_stays_jsonb() -> None:
    documents = with_ids({"orders": [{"items": [{"sku": "a"}]}]})
    inference = infer(documents, nested="child")
    (child,) = inference.mapping.children
    assert [(c.path, c.pg_type) for c in child.columns] == [("items", "jsonb")]
    assert "one level of child tables" in line(inference, "orders[].items").reason


def test_a_child_override_inside_an_element_is_warned_and_stays_jsonb() -> None:
    documents = with_ids({"orders": [{"items": [{"sku": "a"}]}]})
    inference = infer(documents, overrides={"orders": "child", "orders[].items": "child"})
    (warning,) = line(inference, "orders[].items").warnings
    assert warning.startswith("not a child table: one level of child tables")


def test_an_array_of_mixed_elements_stays_jsonb_with_a_warning() -> None:
    inference = infer(with_ids({"a": [{"x": 1}, 2]}), nested="child")
    assert (column(inference.mapping, "a").pg_type, inference.mapping.children) == ("jsonb", ())
    assert line(inference, "a").warnings[0].startswith("not a child table: elements are")


def test_a_drop_override_lists_the_path_as_dropped() -> None:
    inference = infer(with_ids({"password": "x", "name": "n"}), overrides={"password": "drop"})
    assert inference.mapping.drop == ("password",)
    assert [c.path for c in inference.mapping.columns] == ["name"]


def test_an_override_naming_no_field_is_warned() -> None:
    inference = infer(with_ids({"a": 1}), overrides={"adress": "flatten"})
    assert "override 'adress': no such field in the documents read" in inference.report.warnings


# --- keys that look like values --------------------------------------------------------

TIERS = [
    {"tier_and_details": {hex_key(n): {"tier": "Gold", "id": hex_key(n), "active": True}}}
    for n in range(50)
]


@pytest.mark.parametrize("nested", ["jsonb", "flatten", "child"])
def test_an_id_keyed_map_stays_one_jsonb_column_whatever_nested_says(nested: str) -> None:
    mapping = infer(with_ids(*TIERS), nested=nested).mapping
    assert [(c.path, c.pg_type) for c in mapping.columns] == [("tier_and_details", "jsonb")]


def test_an_id_keyed_map_is_warned_with_the_kind_of_keys() -> None:
    inference = infer(with_ids(*TIERS), nested="flatten")
    (warning,) = line(inference, "tier_and_details").warnings
    assert warning.startswith("keys look like values (50 hash keys, e.g.")
    assert warning.endswith("one jsonb column, never a column per key")


def test_a_map_in_a_single_document_is_recognised_by_its_keys_alone() -> None:
    document = {"balances": {"2024-01-31": 10, "2024-02-29": 12, "2024-03-31": 9}}
    mapping = infer(with_ids(document), nested="flatten").mapping
    assert [(c.name, c.pg_type) for c in mapping.columns] == [("balances", "jsonb")]


def test_a_flatten_override_on_an_id_keyed_map_still_gives_one_jsonb_column() -> None:
    mapping = infer(with_ids(*TIERS), overrides={"tier_and_details": "flatten"}).mapping
    assert [c.name for c in mapping.columns] == ["tier_and_details"]


def test_a_map_whose_key_set_varies_across_documents_is_one_jsonb_column() -> None:
    words = [f"tag{letter}{n}" for n in range(10) for letter in "abcdef"]
    documents = with_ids(*({"tags": {words[n]: 1, words[n + 1]: 2}} for n in range(0, 58, 2)))
    inference = infer(documents, nested="flatten")
    assert [c.name for c in inference.mapping.columns] == ["tags"]
    assert "the key set varies across documents" in line(inference, "tags").warnings[0]


def test_a_record_with_optional_fields_is_flattened_not_taken_for_a_map() -> None:
    documents = with_ids({"o": {"a": 1, "b": 2}}, {"o": {"a": 1, "c": 3}})
    mapping = infer(documents, nested="flatten").mapping
    assert [c.name for c in mapping.columns] == ["o__a", "o__b", "o__c"]


def test_top_level_keys_that_look_like_values_are_no_columns_and_land_in_the_catch_all() -> None:
    documents = with_ids({"name": "a", "2024-01-01": 3}, {"name": "b", "2024-01-02": 4})
    inference = infer(documents)
    assert [c.name for c in inference.mapping.columns] == ["name"]
    (warning,) = line(inference, "*").warnings
    assert "2 ISO date" in warning
    assert warning.endswith("they land in '_extra'")


# --- column names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("firstName", "firstname"),
        ("first name", "first_name"),
        ("price ($)", "price"),
        ("$set", "set"),
        ("a.b", "a_b"),
        ("Größe", "grösse"),
        ("名前", "名前"),
        ("2fa", "_2fa"),
        ("_class", "_class"),
        ("!!!", "field"),
    ],
)
def test_a_key_folds_to_a_safe_lower_case_identifier(key: str, name: str) -> None:
    assert fold_name(key) == name


def test_names_differing_only_in_case_get_distinct_columns_and_a_warning() -> None:
    inference = infer(with_ids({"Name": "a", "name": "b"}))
    names = {c.path: c.name for c in inference.mapping.columns}
    assert names["name"] == "name"
    assert re.fullmatch(r"name_[0-9a-f]{6}", names["Name"])
    assert line(inference, "Name").warnings == (
        f"'Name' folds to 'name', as 'name' does: renamed {names['Name']!r}",
    )


def test_a_renamed_column_keeps_its_name_when_other_fields_change() -> None:
    first = infer(with_ids({"Name": "a", "name": "b"})).mapping
    second = infer(with_ids({"NAME": "c", "Name": "a", "name": "b", "other": 1})).mapping
    assert column(first, "Name").name == column(second, "Name").name


def test_a_name_over_63_bytes_is_cut_to_63_bytes_with_a_hash_suffix() -> None:
    key = "é" * 40  # 40 characters, 80 bytes
    inference = infer(with_ids({key: 1}))
    name = column(inference.mapping, key).name
    assert len(name.encode()) <= 63
    assert re.fullmatch(r"é+_[0-9a-f]{6}", name)
    assert "is 80 bytes, over PostgreSQL's 63" in line(inference, key).warnings[0]


def test_two_long_names_sharing_a_prefix_stay_distinct() -> None:
    prefix = "customer_preferences_for_notifications_by_channel_and_time_"
    mapping = infer(with_ids({prefix + "email": 1, prefix + "sms": 2})).mapping
    names = [c.name for c in mapping.columns]
    assert len(set(names)) == 2
    assert all(len(name.encode()) <= 63 for name in names)


@pytest.mark.parametrize("key", ["mongo_id", "position", "_extra", "id", "ID"])
def test_a_field_named_like_the_kits_own_columns_is_renamed(key: str) -> None:
    inference = infer(with_ids({key: 1}))
    name = column(inference.mapping, key).name
    assert name.startswith(key.lower() + "_")
    assert "one of the kit's own columns" in line(inference, key).warnings[0]


def test_a_child_element_field_named_position_is_renamed() -> None:
    mapping = infer(with_ids({"orders": [{"position": 1}]}), nested="child").mapping
    assert mapping.children[0].columns[0].name.startswith("position_")


def test_a_dot_in_a_key_is_escaped_in_the_column_path() -> None:
    mapping = infer(with_ids({"a.b": 1})).mapping
    assert (mapping.columns[0].path, mapping.columns[0].name) == ("a\\.b", "a_b")


def test_a_flattened_name_clashing_with_a_top_level_one_is_renamed() -> None:
    mapping = infer(with_ids({"a": {"b": 1}, "a__b": 2}), nested="flatten").mapping
    assert column(mapping, "a__b").name == "a__b"
    assert column(mapping, "a.b").name.startswith("a__b_")


AWKWARD = {
    "Name": "upper",
    "name": "lower",
    "x" * 70: 1,
    "x" * 69 + "y": 2,
    "with space": 3,
    "çà et là": 4,
    "a.b": 5,
    "$price": 6,
    "mongo_id": 7,
    "position": 8,
    "_extra": 9,
    "id": 10,
    "nested": {"Name": 1, "name": 2, "$k": 3, "a.b": 4},
    "items": [{"id": 1, "position": 2, "ID": 3}],
}


@pytest.mark.parametrize("nested", ["jsonb", "flatten", "child"])
def test_a_mapping_inferred_from_awkward_keys_is_valid(nested: str) -> None:
    mapping = infer(with_ids(AWKWARD, AWKWARD), nested=nested).mapping
    assert mapping.problems() == []


# --- PostgreSQL's column limit ---------------------------------------------------------


def test_flattening_past_1600_columns_keeps_the_widest_object_as_jsonb() -> None:
    document = {"wide": {f"w{n}x": n for n in range(1000)}, "narrow": {"a": 1, "b": 2}}
    document |= {"more": {f"m{n}x": n for n in range(700)}}
    inference = infer(with_ids(document), nested="flatten", max_keys=2000)
    names = [c.name for c in inference.mapping.columns]
    assert {"wide", "narrow__a", "more__m0x"} <= set(names)
    assert any("over PostgreSQL's 1,600 columns: wide" in w for w in inference.report.warnings)


def test_top_level_fields_past_1600_columns_land_in_the_catch_all() -> None:
    document = {f"f{n}x": n for n in range(1700)}
    inference = infer(with_ids(document))
    assert len(inference.mapping.columns) == 1600 - 3  # id, mongo_id and _extra count too
    assert line(inference, "f1699x").store == "extra"


# --- the report ------------------------------------------------------------------------


def test_the_report_has_a_line_per_field_with_presence_types_column_and_why() -> None:
    report = infer(with_ids({"n": 1}, {"n": Int64(2)}, {})).report.format()
    (row,) = [text for text in report.splitlines() if text.startswith("n ")]
    assert re.match(
        r"n +66\.7% 2 +int 1, long 1 +n bigint +column +int and long: bigint holds both", row
    )


def test_the_report_header_gives_the_documents_read_of_the_total() -> None:
    report = infer(with_ids({"a": 1}, {"a": 2}), sampled=2, total=8).report.format()
    assert "Read: 2 of 8 documents (25.0%), a sample of up to 2" in report.splitlines()[1]


def test_the_report_footer_lists_every_warning() -> None:
    report = infer(with_ids({"v": "7", "Name": 1, "name": 2}, {"v": 7})).report
    footer = report.format().split("Warnings (2):\n", 1)[1]
    assert all(f"  - {warning}" in footer for warning in report.warnings)


def test_the_report_says_unseen_fields_land_in_the_catch_all() -> None:
    notes = infer(with_ids({"a": 1})).report.notes
    assert any("the sample did not see" in note and "'_extra'" in note for note in notes)


def test_a_sampled_report_says_types_come_from_the_documents_read() -> None:
    notes = infer(with_ids({"a": 1}), sampled=1, total=100).report.notes
    assert any("types and NOT NULL come from the 1 documents read" in note for note in notes)


def test_the_report_as_a_dict_is_json_with_every_field() -> None:
    report = infer(with_ids({"a": [1, 2]}), total=None).report
    data = json.loads(json.dumps(report.to_dict()))
    assert [f["path"] for f in data["fields"]] == ["_id", "a"]
    assert data["fields"][1]["details"]["lengths"] == {"min": 2, "max": 2, "mean": 2.0}


def test_no_documents_give_a_mapping_of_no_columns() -> None:
    mapping = infer([]).mapping
    assert (mapping.columns, mapping.catch_all) == ((), "_extra")


def test_the_mapping_written_for_review_reads_back_the_same() -> None:
    inference = infer(with_ids(AWKWARD), nested="child")
    assert mappings_from_toml(inference.to_toml()) == {"things": inference.mapping}


def test_the_mapping_written_for_review_says_what_each_column_saw() -> None:
    text = infer(with_ids({"n": 1}, {"n": Int64(2)})).to_toml()
    (row,) = [text_line for text_line in text.splitlines() if 'path = "n"' in text_line]
    assert row.endswith("# 100.0% present: int 1, long 1; ! mixed types (int 1, long 1): bigint")
