"""The follower's memory of what it wrote: taken out to be patched, bounded in bytes."""

from __future__ import annotations

import sys

from migrationkit._run.written_documents import WrittenDocuments, python_size


def document(number: int, *, text: str = "x") -> dict[str, object]:
    return {"_id": number, "name": text, "tags": ["a", "b"]}


def test_a_document_is_taken_out_to_be_changed_and_is_then_gone() -> None:
    written = WrittenDocuments()
    written.remember("1", document(1))
    assert written.take("1") == document(1)
    assert written.take("1") is None


def test_a_newer_version_replaces_the_one_held() -> None:
    written = WrittenDocuments()
    written.remember("1", document(1, text="old"))
    written.remember("1", document(1, text="new"))
    assert len(written) == 1
    assert written.take("1") == document(1, text="new")


def test_forgotten_and_cleared_documents_are_not_handed_out() -> None:
    written = WrittenDocuments()
    for number in range(3):
        written.remember(str(number), document(number))
    written.forget("0")
    assert written.take("0") is None
    written.clear()
    assert written.take("1") is None


def test_the_oldest_documents_go_first_when_the_budget_is_full() -> None:
    one = python_size(document(0))
    written = WrittenDocuments(budget_bytes=3 * one)
    for number in range(5):
        written.remember(str(number), document(number))
    assert len(written) == 3
    assert written.take("1") is None
    assert written.take("4") == document(4)
    assert written.estimated_bytes <= 3 * one


def test_rewriting_a_document_makes_it_the_newest() -> None:
    one = python_size(document(0))
    written = WrittenDocuments(budget_bytes=2 * one)
    written.remember("0", document(0))
    written.remember("1", document(1))
    written.remember("0", document(0))
    written.remember("2", document(2))
    assert written.take("1") is None
    assert written.take("0") == document(0)


def test_a_budget_of_zero_keeps_nothing() -> None:
    written = WrittenDocuments(budget_bytes=0)
    written.remember("1", document(1))
    assert len(written) == 0


def test_large_documents_fill_the_budget_sooner() -> None:
    small, large = WrittenDocuments(budget_bytes=10**5), WrittenDocuments(budget_bytes=10**5)
    for number in range(200):
        small.remember(str(number), document(number))
        large.remember(str(number), document(number, text="x" * 5_000))
    assert len(large) < 20 < len(small)


def test_the_python_size_counts_every_nested_value() -> None:
    nested = {"a": {"b": ["text", 1.5]}}
    inner = ["text", 1.5]
    expected = (
        sys.getsizeof(nested)
        + sys.getsizeof("a")
        + sys.getsizeof(nested["a"])
        + sys.getsizeof("b")
        + sys.getsizeof(inner)
        + sys.getsizeof("text")
        + sys.getsizeof(1.5)
    )
    assert python_size(nested) == expected
