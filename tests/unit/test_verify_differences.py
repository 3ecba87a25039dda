"""How ``verify`` names a difference inside a jsonb value: the first path that differs."""

from __future__ import annotations

from bson import Int64

from migrationkit._mapping.types import to_jsonb
from migrationkit._run.verify import SHOWN_CHARACTERS, _changed, first_difference


def test_equal_documents_have_no_difference() -> None:
    document = {"a": {"b": [1, {"c": "x"}]}, "d": Int64(5)}
    assert first_difference(document, {"a": {"b": [1, {"c": "x"}]}, "d": Int64(5)}) is None


def test_a_changed_value_deep_inside_is_named_by_its_path() -> None:
    got = {"a": {"b": [1, {"c": "y"}]}}
    assert first_difference(got, {"a": {"b": [1, {"c": "x"}]}}) == (".a.b[1].c", "y", "x")


def test_the_same_number_of_another_bson_type_differs() -> None:
    assert first_difference({"n": 5}, {"n": Int64(5)}) == (".n", 5, Int64(5))


def test_a_key_one_side_lacks_is_named() -> None:
    path, got, want = first_difference({"a": 1}, {"a": 1, "b": 2}) or ("", None, None)
    assert (path, want) == (".b", 2)
    path, got, _ = first_difference({"a": 1, "z": 3}, {"a": 1}) or ("", None, None)
    assert (path, got) == (".z", 3)


def test_the_same_keys_in_another_order_differ_at_the_object() -> None:
    assert first_difference({"a": {"y": 1, "x": 2}}, {"a": {"x": 2, "y": 1}}) == (
        ".a",
        ["y", "x"],
        ["x", "y"],
    )


def test_an_array_cut_short_says_its_lengths() -> None:
    assert first_difference([1, 2], [1, 2, 3]) == (".length", 2, 3)


def test_a_jsonb_columns_difference_names_the_column_and_the_path_and_shows_little() -> None:
    long_text = "x" * 500
    got = to_jsonb({"address": {"city": "Lyon", "notes": long_text}})
    want = to_jsonb({"address": {"city": "Paris", "notes": long_text}})
    assert _changed("profile", "jsonb", got, want) == (
        "profile.address.city is 'Lyon', source says 'Paris'"
    )
    whole = _changed("notes", "text", long_text, long_text + "y")
    assert len(whole) < 2 * SHOWN_CHARACTERS + 40
