"""Reading a collection in ``_id`` order, once, resumably: the one keyset reader.

Bounds are ``find``'s index bounds ``min`` (inclusive) and ``max`` (exclusive) on the
hinted ``_id`` index, and a resume re-opens the cursor at the last ``_id`` read
(``min`` plus ``{"_id": {"$ne": last}}``). Index bounds follow MongoDB's whole ``_id``
order across BSON types; query operators do not (``{"$gt": 1}`` matches numbers only),
so ``{"_id": {"$gt": last}}`` would skip every later ``_id`` of another type.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Final

from bson.raw_bson import RawBSONDocument

from migrationkit._errors import TransientFaultError
from migrationkit._retry import MONGO_TRANSIENT, RetryPolicy

log = logging.getLogger(__name__)

#: Sort by ``_id`` *and* hint its index: MongoDB then walks the index instead of
#: sorting, and SecantusDB streams its ``_id``-keyed table instead of sorting the
#: whole collection in memory first (measured: 30k/s sorted, 66k/s hinted, 200k docs).
ID_ORDER = [("_id", 1)]


class _End(enum.Enum):
    OPEN = "open"  # an enum member: it survives pickling to a worker as the same object


#: No bound. Not ``None``: ``None`` is a valid ``_id`` (null).
OPEN: Final = _End.OPEN


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
    lower: Any = OPEN,
    upper: Any = OPEN,
    after: Any = OPEN,
    projection: Mapping[str, Any] | None = None,
    raw: bool = False,
    policy: RetryPolicy | None = None,
    what: str = "the collection",
) -> AsyncGenerator[list[Any], None]:
    """Yield every document with ``lower <= _id < upper`` (and after ``after``) once.

    One cursor, ``batch_size`` documents at a time; after a transient fault it
    re-opens at the last ``_id`` read, with backoff, then gives up with one error.
    With ``raw=True`` the documents come as undecoded BSON ``bytes``.
    """
    if raw:
        codec = collection.codec_options.with_options(document_class=RawBSONDocument)
        collection = collection.with_options(codec_options=codec)
    delays = (policy or RetryPolicy()).delays()
    last = after
    batch: list[Any] = []
    while True:
        query = {} if last is OPEN else {"_id": {"$ne": last}}
        options = id_order_options(lower=lower if last is OPEN else last, upper=upper)
        cursor = collection.find(query, projection, batch_size=batch_size, **options)
        try:
            async for document in cursor:
                batch.append(document.raw if raw else document)
                if len(batch) == batch_size:
                    last = document["_id"]
                    yield batch
                    batch = []
            break
        except MONGO_TRANSIENT as exc:
            delay = next(delays, None)
            if delay is None:
                raise TransientFaultError(
                    f"reading {what} from MongoDB kept failing: {type(exc).__name__}: {exc}"
                ) from exc
            log.warning("reading %s failed (%s); resuming in %.2f s", what, exc, delay)
            if batch:
                last = _id_of(batch[-1])
                yield batch
                batch = []
            await asyncio.sleep(delay)
        finally:
            with contextlib.suppress(*MONGO_TRANSIENT):
                await cursor.close()
    if batch:
        yield batch


def _id_of(document: Any) -> Any:
    """The ``_id`` of a decoded document or of raw BSON bytes."""
    return RawBSONDocument(document)["_id"] if isinstance(document, bytes) else document["_id"]
