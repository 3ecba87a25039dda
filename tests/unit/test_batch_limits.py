"""When a batch closes: at N documents or B bytes of BSON, whichever comes first."""

from __future__ import annotations

from typing import Any

import bson
import pytest

from migrationkit._settings.settings import DEFAULT_BATCH_BYTES, Settings
from migrationkit._source.byte_batches import Batcher, memory_bound, run_memory_bound


def batches_of(sizes: list[int], *, documents: int, max_bytes: int | None) -> list[list[int]]:
    """The sizes grouped as the reader groups documents of those sizes, one by one."""
    batcher = Batcher(max_documents=documents, max_bytes=max_bytes)
    closed = [batch for size in sizes for batch in batcher.add(size, size)]
    return [*closed, batcher.take()] if len(batcher) else closed


def test_small_documents_close_a_batch_at_the_document_count() -> None:
    assert batches_of([10] * 7, documents=3, max_bytes=1_000) == [[10] * 3, [10] * 3, [10]]


def test_a_batch_closes_before_the_document_that_would_pass_the_byte_limit() -> None:
    assert batches_of([40, 40, 40, 40], documents=100, max_bytes=100) == [[40, 40], [40, 40]]


def test_a_batch_that_reaches_the_byte_limit_exactly_closes_at_once() -> None:
    batcher = Batcher(max_documents=100, max_bytes=100)
    assert batcher.add("a", 60) == ()
    assert batcher.add("b", 40) == (["a", "b"],)
    assert len(batcher) == 0


def test_a_document_bigger_than_the_limit_travels_alone() -> None:
    assert batches_of([10, 500, 10], documents=100, max_bytes=100) == [[10], [500], [10]]


def test_a_16_mib_document_closes_the_open_batch_and_then_its_own() -> None:
    batcher = Batcher(max_documents=100, max_bytes=8 << 20)
    batcher.add("small", 10)
    assert batcher.add("huge", 16 << 20) == (["small"], ["huge"])


def test_without_a_byte_limit_only_the_count_closes_batches() -> None:
    assert batches_of([1 << 30] * 3, documents=2, max_bytes=None) == [[1 << 30] * 2, [1 << 30]]


def test_every_document_lands_in_one_batch_in_order_and_none_is_empty() -> None:
    sizes = [5, 200, 1, 1, 99, 100, 101, 3]
    batches = batches_of(sizes, documents=4, max_bytes=100)
    assert [size for batch in batches for size in batch] == sizes
    assert all(batches)


def test_a_batch_never_holds_more_than_the_limit_unless_it_is_one_document() -> None:
    sizes = [37, 80, 12, 150, 99, 1, 64, 64, 64, 300, 2]
    for batch in batches_of(sizes, documents=1_000, max_bytes=128):
        assert sum(batch) <= 128 or len(batch) == 1


@pytest.mark.parametrize(("documents", "max_bytes"), [(0, 10), (10, 0)])
def test_limits_below_one_are_refused(documents: int, max_bytes: int) -> None:
    with pytest.raises(ValueError, match="at least one"):
        Batcher(max_documents=documents, max_bytes=max_bytes)


def test_the_default_byte_limit_is_8_mib_and_users_batches_still_close_at_the_count() -> None:
    settings = Settings()
    assert settings.batch_bytes == DEFAULT_BATCH_BYTES == 8 << 20
    user: dict[str, Any] = {"username": "a" * 40, "email": "b" * 60, "age": 40}
    assert settings.batch_size * len(bson.encode(user)) < settings.batch_bytes


def test_the_byte_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATIONKIT_BATCH_BYTES", "1048576")
    assert Settings().batch_bytes == 1 << 20


def test_the_memory_bound_grows_with_the_batches_alive_not_with_the_collection() -> None:
    settings = Settings(workers=4, queue_depth=2, batch_bytes=8 << 20)
    assert run_memory_bound(settings) == memory_bound(
        processes=1, readers=1, batches=13, batch_bytes=8 << 20
    )
    processes = settings.model_copy(update={"backend": "multiprocessing"})
    assert run_memory_bound(processes) - run_memory_bound(settings) == 4 * (64 << 20)
    ranges = run_memory_bound(processes, ranges=True)
    assert ranges == memory_bound(processes=5, readers=4, batches=4, batch_bytes=8 << 20)
