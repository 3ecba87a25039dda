"""Split a collection's ``_id`` order into contiguous ranges of about equal size.

One walk over the ``_id``s (projection ``{"_id": 1}``, ``_id`` order, hinted) picks
the first ``_id`` of each range; nothing else is kept, so the plan costs O(partitions)
memory for any collection size::

    _id order:  MinKey … null … numbers … strings … objects … ObjectIds … dates … MaxKey
    ranges:     [ open ──── range 0 ────)[ b1 ── range 1 ──)[ b2 ── … ──)[ bN ── open ]

A range is read with the ``find`` options ``min`` (inclusive) and ``max`` (exclusive)
on the ``_id`` index. These are *index* bounds: they follow MongoDB's whole ``_id``
order, type bracket by type bracket. Query operators do not: ``{"$gt": 1}`` matches
numbers only, so ``{"_id": {"$gt": 1, "$lte": "b"}}`` matches nothing, and a range
whose ends have different types would silently lose documents. The first range has
no lower bound and the last no upper bound, so every possible ``_id`` — even one
inserted after the walk — falls in exactly one range.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrationkit._normalize.rows import mongo_key
from migrationkit._retry import RetryPolicy
from migrationkit._source.keyset import OPEN, id_order_options, iter_id_order

log = logging.getLogger(__name__)

#: ``_id``s read per round trip while planning (they are small).
WALK_BATCH_SIZE = 10_000
#: Candidate boundaries kept per range while walking: sizes err by at most 1/512.
KEEP_PER_RANGE = 1_024


@dataclass(frozen=True)
class IdRange:
    """The documents with ``lower <= _id < upper`` in MongoDB's ``_id`` order.

    ``OPEN`` ends are unbounded. ``size`` is how many documents the plan counted in it.
    """

    index: int = 0
    lower: Any = OPEN
    upper: Any = OPEN
    size: int = 0

    def find_options(self, *, resume_after: Any = OPEN) -> dict[str, Any]:
        """``find`` keyword arguments that read this range in ``_id`` order.

        With ``resume_after`` (an ``_id`` already read) the read starts there; pair
        it with the filter ``{"_id": {"$ne": resume_after}}`` since ``min`` is inclusive.
        """
        lower = self.lower if resume_after is OPEN else resume_after
        return id_order_options(lower=lower, upper=self.upper)

    def __str__(self) -> str:
        lower = "start" if self.lower is OPEN else mongo_key(self.lower)
        upper = "end" if self.upper is OPEN else mongo_key(self.upper)
        return f"range {self.index} [{lower}, {upper}) ~{self.size:,} documents"


@dataclass(frozen=True)
class RangePlan:
    """Ranges covering the whole ``_id`` order, and what the walk that chose them found."""

    ranges: list[IdRange]
    documents: int  # counted by the walk: exact at the time it ran
    seconds: float = field(default=0.0, compare=False)


class IdSplitter:
    """Choose range boundaries from ``_id``s streamed in order, keeping O(``parts``) of them.

    It keeps every ``stride``-th ``_id``; when it holds more than ``keep`` it drops
    every other one and doubles the stride. Boundaries are then picked among the kept
    ``_id``s, nearest to the ideal places, so each range holds ``count / parts`` documents
    give or take one stride (at most ``2 * count / keep``); give or take one while
    ``count <= keep``.
    """

    def __init__(self, parts: int, *, keep: int | None = None) -> None:
        if parts < 1:
            raise ValueError("at least one range is needed")
        self.parts = parts
        self.count = 0
        self._keep = max(keep or KEEP_PER_RANGE * parts, 2 * parts)
        self._stride = 1
        self._positions: list[int] = []  # 1-based positions in _id order, multiples of stride
        self._ids: list[Any] = []

    @property
    def kept(self) -> int:
        return len(self._ids)

    def add(self, ids: Iterable[Any]) -> None:
        """Take the next ``_id``s, in ``_id`` order."""
        for value in ids:
            self.count += 1
            if self.count % self._stride == 0:
                self._positions.append(self.count)
                self._ids.append(value)
                if len(self._ids) > self._keep:
                    del self._positions[::2], self._ids[::2]  # keep multiples of 2 * stride
                    self._stride *= 2

    def ranges(self) -> list[IdRange]:
        """Contiguous ranges, open at both ends; fewer than ``parts`` if ids are few."""
        starts: list[int] = [1]  # position of each range's first _id
        bounds: list[Any] = [OPEN]
        for part in range(1, self.parts):
            target = round(part * self.count / self.parts) + 1
            kept = self._nearest_kept(target)
            if kept is not None and starts[-1] < self._positions[kept] <= self.count:
                starts.append(self._positions[kept])
                bounds.append(self._ids[kept])
        starts.append(self.count + 1)
        bounds.append(OPEN)
        return [
            IdRange(index, bounds[index], bounds[index + 1], starts[index + 1] - starts[index])
            for index in range(len(starts) - 1)
        ]

    def _nearest_kept(self, position: int) -> int | None:
        after = bisect.bisect_left(self._positions, position)
        near = [i for i in (after - 1, after) if 0 <= i < len(self._positions)]
        return min(near, key=lambda i: abs(self._positions[i] - position), default=None)


def split_ids(ids: Iterable[Any], parts: int, *, keep: int | None = None) -> list[IdRange]:
    """Ranges for ``_id``s given in ``_id`` order (see :class:`IdSplitter`)."""
    splitter = IdSplitter(parts, keep=keep)
    splitter.add(ids)
    return splitter.ranges()


async def iter_range(
    collection: Any,
    part: IdRange,
    *,
    batch_size: int,
    batch_bytes: int | None = None,
    projection: Mapping[str, Any] | None = None,
    policy: RetryPolicy | None = None,
) -> AsyncGenerator[list[Any], None]:
    """Yield every document of ``part`` once, in ``_id`` order (see :mod:`keyset`)."""
    batches = iter_id_order(
        collection,
        batch_size=batch_size,
        batch_bytes=batch_bytes,
        lower=part.lower,
        upper=part.upper,
        projection=projection,
        policy=policy,
        what=str(part),
    )
    async with contextlib.aclosing(batches):
        async for batch in batches:
            yield batch


async def plan_ranges(
    collection: Any,
    partitions: int,
    *,
    batch_size: int = WALK_BATCH_SIZE,
    policy: RetryPolicy | None = None,
) -> RangePlan:
    """Walk every ``_id`` once and split the collection into about ``partitions`` ranges.

    On MongoDB the walk is a covered scan of the ``_id`` index. SecantusDB reads
    every document for it (as for any query): it costs about one full read.
    """
    started = time.perf_counter()
    splitter = IdSplitter(partitions)
    walk = iter_range(
        collection, IdRange(), batch_size=batch_size, projection={"_id": 1}, policy=policy
    )
    async with contextlib.aclosing(walk):
        async for batch in walk:
            splitter.add(document["_id"] for document in batch)
    plan = RangePlan(splitter.ranges(), splitter.count, time.perf_counter() - started)
    log.info(
        "planned %d ranges over %d documents in %.2f s",
        len(plan.ranges),
        plan.documents,
        plan.seconds,
    )
    return plan
