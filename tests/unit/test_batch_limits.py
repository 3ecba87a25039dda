"""When a batch closes: at N documents or B bytes of BSON, whichever comes first."""

from __future__ import annotations

from typing import Any

import bson
import pytest
from bson.codec_options import CodecOptions

from migrationkit._settings.settings import DEFAULT_BATCH_BYTES, Settings
from migrationkit._source.byte_batches import Batcher, RawBatch

EMPTY_DOCUMENT_BYTES = len(bson.encode({"_id": 0, "f": ""}))


def document(number: int, size: int) -> bytes:
    """A BSON document of exactly ``size`` bytes (at least 22), ``_id`` ``number``."""
    encoded = bson.encode({"_id": number, "f": "x" * (size - EMPTY_DOCUMENT_BYTES)})
    assert len(encoded) == size
    return encoded


def replies(sizes: list[list[int]]) -> list[bytes]:
    """Server replies (streams of documents) holding documents of these sizes, numbered."""
    numbers = iter(range(1_000_000))
    return [b"".join(document(next(numbers), size) for size in reply) for reply in sizes]


def cut(sizes: list[list[int]], *, documents: int, max_bytes: int | None) -> list[RawBatch]:
    batcher = Batcher(max_documents=documents, max_bytes=max_bytes)
    batches = [batch for reply in replies(sizes) for batch in batcher.feed(reply)]
    return [*batches, batcher.take()] if len(batcher) else batches


def shapes(batches: list[RawBatch]) -> list[list[int]]:
    """Each batch as its documents' sizes."""
    return [[len(raw) for raw in batch.documents()] for batch in batches]


def test_small_documents_close_a_batch_at_the_document_count() -> None:
    batches = cut([[100] * 7], documents=3, max_bytes=10_000)
    assert shapes(batches) == [[100] * 3, [100] * 3, [100]]


def test_a_batch_closes_before_the_document_that_would_pass_the_byte_limit() -> None:
    batches = cut([[40] * 4], documents=100, max_bytes=100)
    assert shapes(batches) == [[40, 40], [40, 40]]


def test_a_batch_that_reaches_the_byte_limit_exactly_closes_at_once() -> None:
    batcher = Batcher(max_documents=100, max_bytes=100)
    first, second = replies([[60], [40]])
    assert batcher.feed(first) == []
    closed = batcher.feed(second)
    assert shapes(closed) == [[60, 40]]
    assert len(batcher) == 0


def test_a_document_bigger_than_the_limit_travels_alone() -> None:
    batches = cut([[30, 500, 30]], documents=100, max_bytes=100)
    assert shapes(batches) == [[30], [500], [30]]


def test_a_16_mib_document_passes_whatever_the_limit() -> None:
    batches = cut([[16 << 20]], documents=10, max_bytes=1)
    assert [batch.nbytes for batch in batches] == [16 << 20]


def test_a_batch_can_span_two_replies_and_keeps_the_documents_in_order() -> None:
    batches = cut([[50, 50, 50], [50, 50, 50]], documents=4, max_bytes=None)
    assert [batch.count for batch in batches] == [4, 2]
    numbers = [d["_id"] for batch in batches for d in batch.decoded(CodecOptions())]
    assert numbers == list(range(6))


def test_without_a_byte_limit_only_the_count_closes_batches() -> None:
    batches = cut([[100_000] * 3], documents=2, max_bytes=None)
    assert [batch.count for batch in batches] == [2, 1]


def test_no_batch_is_empty_and_none_passes_the_limit_unless_it_is_one_document() -> None:
    sizes = [[37, 80, 22, 150], [99, 23, 64, 64], [64, 300, 25]]
    batches = cut(sizes, documents=1_000, max_bytes=128)
    every_size = [size for reply in sizes for size in reply]
    assert [size for shape in shapes(batches) for size in shape] == every_size
    for batch in batches:
        assert batch.count >= 1
        assert batch.nbytes <= 128 or batch.count == 1


def test_raw_documents_are_bytes_that_pickle_not_slices_of_the_reply() -> None:
    (batch,) = cut([[30, 40]], documents=10, max_bytes=None)
    assert all(type(raw) is bytes for raw in batch.documents())


def test_a_reply_whose_lengths_do_not_add_up_is_refused() -> None:
    truncated = document(1, 50)[:-10]
    with pytest.raises(bson.InvalidBSON):
        Batcher(max_documents=10).feed(truncated)


@pytest.mark.parametrize(("documents", "max_bytes"), [(0, 10), (10, 0)])
def test_limits_below_one_are_refused(documents: int, max_bytes: int) -> None:
    with pytest.raises(ValueError, match="at least one"):
        Batcher(max_documents=documents, max_bytes=max_bytes)


def test_the_default_byte_limit_is_8_mib_and_users_batches_still_close_at_the_count() -> None:
    settings = Settings()
    assert settings.batch_bytes == DEFAULT_BATCH_BYTES == 8 << 20
    user: dict[str, Any] = {"username": "a" * 30, "email": "b" * 40, "age": 40}
    assert settings.batch_size * len(bson.encode(user)) < settings.batch_bytes


def test_the_byte_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATIONKIT_BATCH_BYTES", "1048576")
    assert Settings().batch_bytes == 1 << 20
