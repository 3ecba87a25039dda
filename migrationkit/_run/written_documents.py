"""The documents a follower last wrote: an update applies to them without reading rows back.

An update event carries only what changed, so the follower needs the document as the
target holds it. Rebuilding it from the target's rows costs a query and a restore per
document. The follower itself wrote most of the documents that change again, and while
it runs nobody else writes the target (the run lock), so the document it wrote is the one
the target holds: it is kept here, and taken out to be patched. Anything the follower
did not write as it stands (a delete, a document set aside, a refused row, a batch that
failed) is forgotten, so that the next change to it reads the target again.

Bounded in bytes: the Python size of one document in :data:`SAMPLE_EVERY` is measured
(a walk through its values), and the mean of those sizes times the documents held must
stay under the budget; the oldest go first.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

#: One document in this many is measured for the size estimate (the first always is).
SAMPLE_EVERY = 64
#: What a follower keeps by default (``FollowOptions.cache_bytes``).
DEFAULT_BUDGET_BYTES = 64 * 2**20


class WrittenDocuments:
    """Documents by key, oldest first, within ``budget_bytes`` (0: keep none)."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._documents: dict[str, Mapping[str, Any]] = {}
        self._sampled_bytes = 0
        self._samples = 0
        self._seen = 0

    def __len__(self) -> int:
        return len(self._documents)

    @property
    def estimated_bytes(self) -> int:
        """The documents held times the mean measured size."""
        if not self._samples:
            return 0
        return len(self._documents) * self._sampled_bytes // self._samples

    def take(self, key: str) -> Mapping[str, Any] | None:
        """The document written under ``key``, removed: the caller changes it in place."""
        return self._documents.pop(key, None)

    def remember(self, key: str, document: Mapping[str, Any]) -> None:
        """``document`` is what the target holds under ``key`` now (its transaction is in)."""
        if self.budget_bytes <= 0:
            return
        if self._seen % SAMPLE_EVERY == 0:
            self._sampled_bytes += python_size(document)
            self._samples += 1
        self._seen += 1
        self._documents.pop(key, None)
        self._documents[key] = document
        while self._documents and self.estimated_bytes > self.budget_bytes:
            del self._documents[next(iter(self._documents))]

    def forget(self, key: str) -> None:
        self._documents.pop(key, None)

    def clear(self) -> None:
        self._documents.clear()


def python_size(value: Any) -> int:
    """Bytes ``value`` takes in memory: its own size and its items', recursively."""
    size = sys.getsizeof(value)
    if isinstance(value, Mapping):
        return size + sum(python_size(k) + python_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return size + sum(python_size(item) for item in value)
    return size
