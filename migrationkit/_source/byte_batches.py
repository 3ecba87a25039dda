"""Batches of at most N documents and B bytes of BSON, and the memory a run holds with them.

The reader asks the driver for undecoded documents (``RawBSONDocument``): the size of
each is the length of its ``raw`` bytes, known for free, so every batch is bounded in
bytes exactly; a batch is then decoded in one C call (``bson.decode_all``), or handed
on raw. Measured against letting the driver decode (200,000 users; 400 documents of
1 MB), whole ``migrate`` runs: 2.4 µs of client CPU more a document (PyMongo builds a
``RawBSONDocument`` in Python for each) and about 3 ms more a megabyte (big buffers are
returned to the system, see :mod:`migrationkit._cli.malloc_tuning`).
``find_raw_batches`` costs as much for small documents and twice that for big ones
(PyMongo copies each raw reply several times); ``bson.encode`` per document to learn
its size costs more than the whole raw path. ``batch_bytes=0`` reads as before: decoded
by the driver, by count only.

A batch closes as soon as it holds ``max_documents`` documents or ``max_bytes`` bytes,
or before the document that would take it past ``max_bytes``. It always holds at least
one document: a document bigger than ``max_bytes`` (up to MongoDB's 16 MiB) travels
alone::

    sizes (B = 100):  40 40 │ 40 40 │ 500 │ 30 70 │ 10 …
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from migrationkit._settings.settings import Settings

_NOTHING: tuple[list[Any], ...] = ()


class Batcher:
    """Take documents in order, with their sizes; hand back each batch as it closes."""

    def __init__(self, *, max_documents: int, max_bytes: int | None = None) -> None:
        if max_documents < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("a batch holds at least one document and one byte")
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self._limit = max_bytes if max_bytes is not None else sys.maxsize
        self._batch: list[Any] = []
        self._bytes = 0

    def __len__(self) -> int:
        """Documents in the batch still open."""
        return len(self._batch)

    def add(self, document: Any, size: int) -> Sequence[list[Any]]:
        """Take ``document`` of ``size`` bytes; the batches it closed (none, one or two)."""
        closed = _NOTHING
        if self._batch and self._bytes + size > self._limit:  # it would not fit: close first
            closed = (self.take(),)
        self._batch.append(document)
        self._bytes += size
        if len(self._batch) >= self.max_documents or self._bytes >= self._limit:
            closed = (*closed, self.take())
        return closed

    def take(self) -> list[Any]:
        """The open batch (maybe empty); the next document starts a new one."""
        batch, self._batch, self._bytes = self._batch, [], 0
        return batch


#: What one Python process of ours costs before any document: the interpreter and
#: libraries (measured 57 MiB for a migrate of 100 documents).
PROCESS_BYTES = 64 * 1024 * 1024
#: What one reader costs: the driver's copies of one reply, which servers cap at 16 MiB.
READER_BYTES = 6 * 16 * 1024 * 1024


def memory_bound(*, processes: int, readers: int, batches: int, batch_bytes: int) -> int:
    """The peak resident memory a run should stay under, in bytes (see the README).

    ``batches`` is how many batches can be alive at once; each counts twice its bytes
    (raw and decoded, or decoded and its rows). A single document bigger than
    ``batch_bytes`` makes its batch that big instead.
    """
    return processes * PROCESS_BYTES + readers * READER_BYTES + batches * 2 * batch_bytes


def run_memory_bound(settings: Settings, *, ranges: bool = False) -> int:
    """:func:`memory_bound` for a run with these settings (``ranges``: a range run).

    Batch dispatch: one reader; each worker has ``queue_depth`` batches waiting and one
    in hand, and the reader one more. Range runs: each worker reads its own range, one
    batch at a time. Process workers add a process each.
    """
    workers = settings.workers
    if not settings.batch_bytes:
        raise ValueError("without a byte limit (batch_bytes=0) memory has no bound")
    if ranges:
        return memory_bound(
            processes=1 + workers,
            readers=workers,
            batches=workers,
            batch_bytes=settings.batch_bytes,
        )
    return memory_bound(
        processes=1 + (workers if settings.backend == "multiprocessing" else 0),
        readers=1,
        batches=workers * (settings.queue_depth + 1) + 1,
        batch_bytes=settings.batch_bytes,
    )
