"""Splitting the ``_id`` order into ranges: exact for any ``_id`` types, sizes about equal.

A fake collection orders ``_id``s as MongoDB does (type bracket, then value) and reads
``find(min=..., max=...)`` as index bounds: inclusive ``min``, exclusive ``max``.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Timestamp
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import AutoReconnect

from migrationkit._retry import RetryPolicy
from migrationkit._source.keyset import ID_ORDER
from migrationkit._source.partitioning import (
    OPEN,
    IdRange,
    IdSplitter,
    iter_range,
    plan_ranges,
    split_ids,
)

FAST_RETRY = RetryPolicy(attempts=4, base_delay_s=0.001, max_delay_s=0.001)


def bson_order(value: Any) -> tuple[Any, ...]:
    """MongoDB's sort key for an ``_id``: the type bracket first, then the value."""
    if isinstance(value, MinKey):
        return (0,)
    if value is None:
        return (1,)
    if isinstance(value, bool):  # before int: bool is an int in Python, not in BSON
        return (8, value)
    if isinstance(value, int | float):
        return (2, Decimal(value))
    if isinstance(value, Decimal128):
        return (2, value.to_decimal())
    if isinstance(value, str):
        return (3, value.encode())
    if isinstance(value, Mapping):
        return (4, tuple((bson_order(v)[0], k, bson_order(v)) for k, v in value.items()))
    if isinstance(value, bytes):
        return (6, len(value), getattr(value, "subtype", 0), bytes(value))
    if isinstance(value, ObjectId):
        return (7, value.binary)
    if isinstance(value, datetime):
        return (9, value)
    if isinstance(value, Timestamp):
        return (10, value.time, value.inc)
    if isinstance(value, MaxKey):
        return (99,)
    raise TypeError(f"no BSON order for {value!r}")


MIXED_IDS: list[Any] = [
    MinKey(),
    None,
    -3,
    Int64(2),
    2.5,
    Decimal128("7.25"),
    "",
    "1",
    "a",
    {"a": 1},
    {"a": 2},
    {"b": 0},
    b"\x01",
    Binary(b"\x00\x02", 5),  # a subtype other than 0, which decodes as plain bytes
    *[ObjectId(f"{n:024x}") for n in range(1, 41)],
    False,
    True,
    datetime(2020, 1, 1, tzinfo=UTC),
    Timestamp(1, 1),
    MaxKey(),
]


class FakeCursor:
    def __init__(
        self, documents: list[dict[str, Any]], collection: FakeCollection, *, raw: bool
    ) -> None:
        self._documents = iter(documents)
        self._collection = collection
        self._raw = raw
        self.closed = False

    def __aiter__(self) -> FakeCursor:
        return self

    async def __anext__(self) -> Any:
        """The next document (undecoded if asked so), as the reader takes them."""
        if self._collection.drop_at == self._collection.served:
            self._collection.drop_at = None
            raise AutoReconnect("connection dropped (fake)")
        try:
            document = next(self._documents)
        except StopIteration:
            raise StopAsyncIteration from None
        self._collection.served += 1
        return RawBSONDocument(bson.encode(document)) if self._raw else document

    async def close(self) -> None:
        self.closed = True


class FakeCollection:
    """Documents in a list; ``drop_at=N`` drops the connection once after N documents."""

    def __init__(self, ids: list[Any], *, drop_at: int | None = None) -> None:
        self.documents = [{"_id": value, "n": n} for n, value in enumerate(ids)]
        self.drop_at = drop_at
        self.served = 0
        self.finds: list[dict[str, Any]] = []
        self.codec_options: CodecOptions[Any] = CodecOptions(tz_aware=True)

    def with_options(self, *, codec_options: CodecOptions[Any]) -> RawView:
        return RawView(self)

    def find(
        self,
        query: Mapping[str, Any],
        projection: Mapping[str, Any] | None = None,
        *,
        sort: Any,
        hint: Any = None,
        batch_size: int,
        min: Mapping[str, Any] | None = None,  # pymongo's names
        max: Mapping[str, Any] | None = None,
        raw: bool = False,
    ) -> FakeCursor:
        assert sort == ID_ORDER
        assert hint == ID_ORDER or (min is None and max is None), "MongoDB wants a hint"
        self.finds.append({"query": query, "min": min, "max": max})
        low = None if min is None else bson_order(min["_id"])
        high = None if max is None else bson_order(max["_id"])
        excluded = query.get("_id", {}).get("$ne", OPEN)
        selected = [
            document
            for document in sorted(self.documents, key=lambda d: bson_order(d["_id"]))
            if (low is None or bson_order(document["_id"]) >= low)
            and (high is None or bson_order(document["_id"]) < high)
            and (excluded is OPEN or bson_order(document["_id"]) != bson_order(excluded))
        ]
        if projection is not None:
            selected = [{"_id": document["_id"]} for document in selected]
        return FakeCursor(selected, self, raw=raw)


class RawView:
    """The fake collection read undecoded, as the reader asks: same documents, same state."""

    def __init__(self, collection: FakeCollection) -> None:
        self._collection = collection

    def find(self, *args: Any, **kwargs: Any) -> FakeCursor:
        return self._collection.find(*args, raw=True, **kwargs)


async def read_ids(
    collection: FakeCollection, part: IdRange, batch_size: int = 7, batch_bytes: int | None = None
) -> list[Any]:
    batches: AsyncIterator[list[Any]] = iter_range(
        collection, part, batch_size=batch_size, batch_bytes=batch_bytes, policy=FAST_RETRY
    )
    return [document["_id"] async for batch in batches for document in batch]


def in_bson_order(ids: list[Any]) -> list[Any]:
    return sorted(ids, key=bson_order)


@pytest.mark.parametrize("parts", [1, 2, 3, 5, 8, 13, len(MIXED_IDS), len(MIXED_IDS) + 5])
async def test_every_id_of_any_type_is_read_from_exactly_one_range(parts: int) -> None:
    collection = FakeCollection(MIXED_IDS)
    plan = await plan_ranges(collection, parts, batch_size=5)
    read = [value for part in plan.ranges for value in await read_ids(collection, part)]
    assert read == in_bson_order(MIXED_IDS)  # each once, and in _id order across ranges
    assert plan.documents == len(MIXED_IDS)
    assert [part.size for part in plan.ranges] == [
        len(await read_ids(collection, part)) for part in plan.ranges
    ]


async def test_boundaries_fall_on_ids_of_different_types() -> None:
    few_of_each = [value for value in MIXED_IDS if not isinstance(value, ObjectId)]
    plan = await plan_ranges(FakeCollection(few_of_each), 6)
    types = {type(part.lower) for part in plan.ranges[1:]}
    assert len(types) >= 4  # ranges really start at numbers, strings, documents, …


def test_ranges_are_contiguous_and_open_at_both_ends() -> None:
    ranges = split_ids(in_bson_order(MIXED_IDS), 5)
    assert ranges[0].lower is OPEN
    assert ranges[-1].upper is OPEN
    for before, after in itertools.pairwise(ranges):
        assert before.upper is after.lower
    assert [part.index for part in ranges] == list(range(5))
    assert sum(part.size for part in ranges) == len(MIXED_IDS)


async def test_ids_inserted_after_planning_still_fall_in_exactly_one_range() -> None:
    collection = FakeCollection(MIXED_IDS[2:-2])  # no MinKey, null, Timestamp or MaxKey yet
    plan = await plan_ranges(collection, 4)
    late = [MinKey(), None, -100, "zzz", ObjectId("f" * 24), Timestamp(9, 9), MaxKey()]
    collection.documents += [{"_id": value} for value in late]
    read = [value for part in plan.ranges for value in await read_ids(collection, part)]
    assert read == in_bson_order(MIXED_IDS[2:-2] + late)


async def test_a_null_id_is_a_boundary_not_an_open_end() -> None:
    ids = [MinKey(), None, 1, "a"]
    plan = await plan_ranges(FakeCollection(ids), len(ids))
    starting_at_null = next(part for part in plan.ranges if part.lower is None)
    assert starting_at_null.find_options()["min"] == {"_id": None}
    collection = FakeCollection(ids)
    assert [v for part in plan.ranges for v in await read_ids(collection, part)] == ids


def test_sizes_are_equal_give_or_take_one_while_every_id_is_kept() -> None:
    ranges = split_ids(range(5_000), 7)  # 5,000 <= 7 * KEEP_PER_RANGE: every id kept
    assert {part.size for part in ranges} <= {5_000 // 7, 5_000 // 7 + 1}


@pytest.mark.parametrize(("count", "parts", "keep"), [(100_000, 4, 64), (99_991, 7, 100)])
def test_sizes_stay_within_one_stride_when_the_splitter_thins_its_ids(
    count: int, parts: int, keep: int
) -> None:
    ranges = split_ids(range(count), parts, keep=keep)
    stride_bound = 2 * count / keep
    assert len(ranges) == parts
    assert all(abs(part.size - count / parts) <= stride_bound + 1 for part in ranges)
    assert sum(part.size for part in ranges) == count


def test_the_splitter_keeps_a_bounded_number_of_ids() -> None:
    splitter = IdSplitter(4, keep=64)
    for start in range(0, 200_000, 10_000):
        splitter.add(range(start, start + 10_000))
        assert splitter.kept <= 64
    assert splitter.count == 200_000


def test_fewer_ids_than_parts_give_one_range_per_id() -> None:
    ranges = split_ids(["a", "b", "c"], 8)
    assert [part.size for part in ranges] == [1, 1, 1]


def test_no_ids_give_one_open_range() -> None:
    (only,) = split_ids([], 4)
    assert (only.lower, only.upper, only.size) == (OPEN, OPEN, 0)
    assert only.find_options() == {"sort": ID_ORDER, "hint": ID_ORDER}


def test_a_range_reads_with_index_bounds_on_the_hinted_id_index() -> None:
    part = IdRange(3, lower=2.5, upper="a")
    assert part.find_options() == {
        "sort": ID_ORDER,
        "hint": ID_ORDER,
        "min": {"_id": 2.5},
        "max": {"_id": "a"},
    }
    assert part.find_options(resume_after=7)["min"] == {"_id": 7}


async def test_reading_resumes_after_a_dropped_cursor_without_loss_or_doubles() -> None:
    ordered = in_bson_order(MIXED_IDS)
    for drop_at in (1, 6, 13, 14, len(MIXED_IDS) - 1):  # 13/14: ids change type there
        collection = FakeCollection(MIXED_IDS, drop_at=drop_at)
        assert await read_ids(collection, IdRange(), batch_size=4) == ordered
        assert len(collection.finds) == 2
        resumed = collection.finds[1]  # after the last _id handed on, or afresh if none was
        after_last = None if resumed["min"] is None else {"_id": {"$ne": resumed["min"]["_id"]}}
        assert resumed["query"] == (after_last or {})


async def test_a_read_bounded_in_bytes_resumes_after_a_dropped_cursor_exactly() -> None:
    ordered = in_bson_order(MIXED_IDS)
    for drop_at in (1, 6, 13, 14, len(MIXED_IDS) - 1):
        collection = FakeCollection(MIXED_IDS, drop_at=drop_at)
        assert await read_ids(collection, IdRange(), batch_size=50, batch_bytes=120) == ordered
        assert len(collection.finds) == 2


async def test_a_read_bounded_in_bytes_closes_batches_by_the_documents_sizes() -> None:
    collection = FakeCollection(list(range(20)))  # {"_id": n, "n": n}: 21 bytes of BSON each
    batches = iter_range(collection, IdRange(), batch_size=50, batch_bytes=100)
    assert [len(batch) async for batch in batches] == [4, 4, 4, 4, 4]


def test_an_open_end_is_still_open_after_pickling_to_a_worker() -> None:
    part = pickle.loads(pickle.dumps(IdRange(1, lower=None, upper=OPEN, size=3)))
    assert part.lower is None
    assert part.upper is OPEN


def test_a_range_describes_itself_by_its_bounds() -> None:
    assert str(IdRange(2, lower="a", upper=OPEN, size=1_500)) == (
        'range 2 ["a", end) ~1,500 documents'
    )
