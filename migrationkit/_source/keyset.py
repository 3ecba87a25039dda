"""Reading a collection in ``_id`` order, once, resumably: the one keyset reader.

Bounds are ``find``'s index bounds ``min`` (inclusive) and ``max`` (exclusive) on the
hinted ``_id`` index, and a resume re-opens the cursor at the last ``_id`` read
(``min`` plus ``{"_id": {"$ne": last}}``). Index bounds follow MongoDB's whole ``_id``
order across BSON types; query operators do not (``{"$gt": 1}`` matches numbers only),
so ``{"_id": {"$gt": last}}`` would skip every later ``_id`` of another type.

A batch closes at ``batch_size`` documents or ``batch_bytes`` bytes of BSON, whichever
comes first (:mod:`migrationkit._source.byte_batches`): the cursor reads undecoded documents,
whose sizes are free, and each batch is decoded in one C call (or handed on raw). The
driver holds about one server reply at a time, which MongoDB (and SecantusDB) cap at
16 MiB whatever ``batch_size`` asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Final

import bson
from bson.raw_bson import RawBSONDocument

from migrationkit._errors import TransientFaultError
from migrationkit._retry import MONGO_TRANSIENT, RetryPolicy
from migrationkit._source.byte_batches import Batcher

log = logging.getLogger(__name__)

#: Sort by ``_id`` *and* hint its index: MongoDB then walks the index instead of
#: sorting, and SecantusDB streams its ``_id``-keyed table instead of sorting the
#: whole collection in memory first (measured: 30k/s sorted, 66k/s hinted, 200k docs).
ID_ORDER = [("_id", 1)]


class _End(enum.Enum):
    OPEN = "open"  # an enum member: it survives pickling to a worker as the same object


#: No bound. Not ``None``: ``None`` is a valid ``_id`` (null).
OPEN: Final = _End.OPEN


def raw_documents(collection: Any) -> Any:
    """The same collection, read as undecoded ``RawBSONDocument``s."""
    options = collection.codec_options.with_options(document_class=RawBSONDocument)
    return collection.with_options(codec_options=options)


def id_order_options(*, lower: Any = OPEN, upper: Any = OPEN) -> dict[str, Any]:
    """``find`` keyword arguments that read ``lower <= _id < upper`` in ``_id`` order."""
    options: dict[str, Any] = {"sort": ID_ORDER, "hint": ID_ORDER}  # min/max need a hint
    if lower is not OPEN:
        options["min"] = {"_id": lower}
    if upper is not OPEN:
        options["max"] = {"_id": upper}
    return options


async def iter_id_order(
    collection: Any,
    *,
    batch_size: int,
    batch_bytes: int | None = None,
    raw: bool = False,
    lower: Any = OPEN,
    upper: Any = OPEN,
    after: Any = OPEN,
    projection: Mapping[str, Any] | None = None,
    policy: RetryPolicy | None = None,
    what: str = "the collection",
) -> AsyncGenerator[list[Any], None]:
    """Yield every document with ``lower <= _id < upper`` (and after ``after``) once.

    One cursor; batches of ``batch_size`` documents, or fewer when ``batch_bytes``
    bytes of BSON come first (always at least one document; ``None``: no byte limit).
    Documents come decoded with the collection's codec options, or with ``raw=True``
    as their BSON ``bytes``.
    After a transient fault it re-opens at the last ``_id`` read, with backoff, then
    gives up with one error.
    """
    delays = (policy or RetryPolicy()).delays()
    codec_options = collection.codec_options
    sized = raw or batch_bytes is not None  # without, the driver decodes: a little cheaper
    reader = raw_documents(collection) if sized else collection
    batcher = Batcher(max_documents=batch_size, max_bytes=batch_bytes)

    def finish(batch: list[Any]) -> list[Any]:
        if not sized:
            return batch
        if raw:
            # PyMongo hands a large reply's documents out as memoryviews of the reply: they
            # do not pickle, and each keeps the whole reply alive. Own bytes, then.
            return [bytes(document.raw) for document in batch]
        return bson.decode_all(b"".join([document.raw for document in batch]), codec_options)

    last: Any = None  # the last document yielded: a re-opened read starts after its _id
    while True:
        resume_after = after if last is None else _id_of(last, codec_options)
        query = {} if resume_after is OPEN else {"_id": {"$ne": resume_after}}
        lowest = lower if resume_after is OPEN else resume_after
        bounds = id_order_options(lower=lowest, upper=upper)
        cursor = reader.find(query, projection, batch_size=batch_size, **bounds)
        try:
            # One document at a time: a list (to_list) would take in replies until it is
            # full, however big their documents.
            async for document in cursor:
                if closed := batcher.add(document, len(document.raw) if sized else 0):
                    pending, closed = list(closed), ()
                    while pending:  # popped: only the finished form is held while it is used
                        last = (ready := finish(pending.pop(0)))[-1]
                        yield ready
            break
        except MONGO_TRANSIENT as exc:
            delay = next(delays, None)
            if delay is None:
                raise TransientFaultError(
                    f"reading {what} from MongoDB kept failing: {type(exc).__name__}: {exc}"
                ) from exc
            log.warning("reading %s failed (%s); resuming in %.2f s", what, exc, delay)
            if len(batcher):
                last = (ready := finish(batcher.take()))[-1]
                yield ready
            await asyncio.sleep(delay)
        finally:
            with contextlib.suppress(*MONGO_TRANSIENT):
                await cursor.close()
    if len(batcher):
        yield finish(batcher.take())


def _id_of(document: Any, codec_options: Any) -> Any:
    """The ``_id`` of a decoded document, or of raw BSON (decoded only after a fault)."""
    if isinstance(document, bytes):
        return bson.decode(document, codec_options)["_id"]
    return document["_id"]
