from datetime import UTC, datetime
from typing import Any

import pytest
from bson import Int64, ObjectId
from pydantic import ValidationError

from migrationkit._normalize.rows import describe_errors, document_to_row, mongo_key

GOOD = {
    "_id": ObjectId("6b0acf8d3bb85a9b510841d9"),
    "username": "ada",
    "email": "ada@x.org",
    "age": 36,
}


def test_a_valid_document_becomes_a_row_in_column_order() -> None:
    when = datetime(2020, 5, 1, tzinfo=UTC)
    row = document_to_row({**GOOD, "registered_at": when, "extra": "ignored"})
    assert row == ("6b0acf8d3bb85a9b510841d9", "ada", "ada@x.org", 36, when)


def test_whole_number_doubles_are_accepted_as_ages() -> None:
    assert document_to_row({**GOOD, "age": 36.0})[3] == 36


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"age": 200}, "age: Input should be less than or equal to 150 (got 200)"),
        ({"age": "36"}, "age: Input should be a valid integer (got '36')"),
        ({"age": 36.5}, "age: "),
        ({"age": True}, "age: Input should be a valid integer (got True)"),
        ({"username": "a\x00b"}, "username: Value error, contains a NUL character"),
        ({"username": "x" * 300}, "username: String should have at most 254 characters"),
        ({"email": "not-an-address"}, "email: Value error, is not an e-mail address"),
    ],
)
def test_invalid_fields_are_named_with_the_reason(change: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError) as raised:
        document_to_row({**GOOD, **change})
    assert describe_errors(raised.value).startswith(expected)


def test_missing_fields_are_all_listed() -> None:
    with pytest.raises(ValidationError) as raised:
        document_to_row({"_id": 1})
    assert describe_errors(raised.value) == (
        "username: Field required; email: Field required; age: Field required"
    )


def test_ids_of_different_types_get_different_keys() -> None:
    oid = ObjectId("6b0acf8d3bb85a9b510841d9")
    values = [oid, str(oid), 1, "1", 1.5, {"a": 1}, datetime(2020, 1, 1, tzinfo=UTC)]
    keys = [mongo_key(value) for value in values]
    assert len(set(keys)) == len(values)
    assert keys[0] == "6b0acf8d3bb85a9b510841d9"


def test_equal_ids_get_equal_keys() -> None:
    # MongoDB treats 2 and NumberLong(2) as the same _id; so do we.
    assert mongo_key(2) == mongo_key(Int64(2))


@pytest.mark.parametrize(
    "document_id", [0, -1, 2**31, 2**63 - 1, -(2**63), "", "é 中 😀", 'a"b\\c\n', "\udcff"]
)
def test_int_and_string_keys_are_the_relaxed_extended_json_they_always_were(
    document_id: Any,
) -> None:
    from bson import json_util
    from bson.json_util import JSONMode, JSONOptions

    relaxed = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True)
    assert mongo_key(document_id) == json_util.dumps(document_id, json_options=relaxed)
