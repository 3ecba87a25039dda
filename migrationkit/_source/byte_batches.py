"""Cut the server's raw replies into batches of at most N documents and B bytes of BSON.

The reader asks the driver for each reply undecoded (``find_raw_batches``): a stream
of BSON documents, each starting with its own length. Walking those lengths costs
about 0.2 µs a document, so every batch is bounded in bytes exactly; the batch is then
decoded in one C call per reply it came from (``bson.decode_all``), or handed on raw.
Measured on 200,000 users: about 1 µs of client CPU a document more than letting the
driver decode (4 % of a whole ``migrate`` run's CPU); per-document ``bson.encode`` to
learn the sizes would cost more than that, ``RawBSONDocument`` cursors twice that::

    reply 1: [d0 d1 d2 d3 d4 d5]  reply 2: [d6 d7 …]
    batches:  [d0 d1 d2][d3 d4 │ d5 d6][d7 …]      a batch may span two replies

A batch closes as soon as it holds ``max_documents`` documents or ``max_bytes`` bytes,
or before the document that would take it past ``max_bytes``. It always holds at least
one document: a document bigger than ``max_bytes`` (up to MongoDB's 16 MiB) travels
alone.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.codec_options import CodecOptions

from migrationkit._settings.settings import Settings

#: A BSON document starts with its total length, a little-endian int32.
_LENGTH = struct.Struct("<i")
_SMALLEST_DOCUMENT = 5  # the length itself and the closing NUL


@dataclass
class RawBatch:
    """Consecutive documents as raw BSON: slices of the server's replies, in order."""

    segments: list[memoryview] = field(default_factory=list)
    count: int = 0
    nbytes: int = 0

    def decoded(self, codec_options: CodecOptions[Any]) -> list[Any]:
        """Every document decoded: one C call per reply it came from, no copy first."""
        documents: list[Any] = []
        for segment in self.segments:
            documents += bson.decode_all(segment, codec_options)
        return documents

    def documents(self) -> list[bytes]:
        """Every document as its own ``bytes`` (they pickle; a reply's slices do not)."""
        documents = []
        for segment in self.segments:
            offset = 0
            while offset < len(segment):
                (size,) = _LENGTH.unpack_from(segment, offset)
                documents.append(bytes(segment[offset : offset + size]))
                offset += size
        return documents


class Batcher:
    """Feed it raw replies; it returns every batch they close (see the module docstring)."""

    def __init__(self, *, max_documents: int, max_bytes: int | None = None) -> None:
        if max_documents < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("a batch holds at least one document and one byte")
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self._open = RawBatch()

    def __len__(self) -> int:
        """Documents in the batch still open."""
        return self._open.count

    def feed(self, reply: bytes | memoryview) -> list[RawBatch]:
        """Take one reply's documents; return the batches they closed, in order."""
        view = memoryview(reply)
        closed: list[RawBatch] = []
        limit = self.max_bytes if self.max_bytes is not None else sys.maxsize
        count, nbytes = self._open.count, self._open.nbytes
        start = offset = 0
        while offset < len(view):
            (size,) = _LENGTH.unpack_from(view, offset)
            if size < _SMALLEST_DOCUMENT or offset + size > len(view):
                raise bson.InvalidBSON(f"a document claims {size} bytes at offset {offset}")
            if count and nbytes + size > limit:  # close before the one that would not fit
                closed.append(self._close(view[start:offset], count, nbytes))
                start, count, nbytes = offset, 0, 0
            count, nbytes, offset = count + 1, nbytes + size, offset + size
            if count >= self.max_documents or nbytes >= limit:
                closed.append(self._close(view[start:offset], count, nbytes))
                start, count, nbytes = offset, 0, 0
        if offset > start:
            self._open.segments.append(view[start:offset])
        self._open.count, self._open.nbytes = count, nbytes
        return closed

    def take(self) -> RawBatch:
        """The open batch (maybe empty); the next document starts a new one."""
        batch, self._open = self._open, RawBatch()
        return batch

    def _close(self, segment: memoryview, count: int, nbytes: int) -> RawBatch:
        batch = self.take()
        if len(segment):
            batch.segments.append(segment)
        batch.count, batch.nbytes = count, nbytes
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
