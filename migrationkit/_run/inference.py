"""Reading a collection to infer its mapping: a bounded random sample, or every document.

The sample is one ``$sample`` aggregation: on MongoDB a random sample (fields that only
recent or old documents have are seen too); on SecantusDB as quick as any other way,
since every query there scans the whole collection, ``limit`` or not. Reading every
document goes once through the collection in ``_id`` order, as the migration does.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

import bson
from pymongo.errors import PyMongoError

from migrationkit._errors import ConfigurationError, ServerUnavailableError, TransientFaultError
from migrationkit._mapping.infer import FieldStats, Inference, Nested, mapping_from_stats
from migrationkit._mapping.types import MAPPING_BSON_OPTIONS
from migrationkit._observe.progress import NullProgress, Progress
from migrationkit._redact import redact_uri
from migrationkit._retry import MONGO_TRANSIENT, RetryPolicy
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.keyset import iter_id_order

log = logging.getLogger(__name__)

#: Documents read by default: enough to see the common shapes, quick on a slow server.
DEFAULT_SAMPLE = 1_000
#: Documents per batch when reading every one.
READ_BATCH = 2_000


def target_table(settings: Settings) -> str:
    """``pg_table`` if it was set, else the collection's name (not the ``users`` default)."""
    return (
        settings.pg_table
        if "pg_table" in settings.model_fields_set
        else (settings.mongo_collection)
    )


async def infer_collection(
    settings: Settings,
    mongo_uri: str,
    *,
    sample: int | None = DEFAULT_SAMPLE,
    nested: Nested = "jsonb",
    table: str | None = None,
    progress: Progress | None = None,
    announce: Callable[[str], None] | None = None,
) -> Inference:
    """Read ``sample`` documents (``None``: every one) and infer the collection's mapping."""
    stats, total = await read_collection(
        settings, mongo_uri, sample=sample, progress=progress or NullProgress(), announce=announce
    )
    return mapping_from_stats(
        stats,
        collection=settings.mongo_collection,
        table=table or target_table(settings),
        sampled=sample,
        total=total,
        nested=nested,
    )


async def read_collection(
    settings: Settings,
    uri: str,
    *,
    sample: int | None,
    progress: Progress,
    announce: Callable[[str], None] | None = None,
) -> tuple[FieldStats, int]:
    """The statistics of ``sample`` documents (``None``: every one), and the estimated count.

    ``progress`` counts the documents of ``--all``; a sample is one query, so ``announce``
    is told once what is being read.
    """
    where = f"{settings.mongo_database}.{settings.mongo_collection}"
    async with MongoConnectionHandler(uri, driver=settings.mongo_driver) as client:
        collection = client[settings.mongo_database].get_collection(
            settings.mongo_collection, codec_options=MAPPING_BSON_OPTIONS
        )
        try:
            total = int(await collection.estimated_document_count())
            if total == 0:
                raise ConfigurationError(
                    f"{where} holds no documents: nothing to infer a mapping from "
                    "(check MIGRATIONKIT_MONGO_DATABASE and MIGRATIONKIT_MONGO_COLLECTION)"
                )
            if sample is None:
                progress.start(total, "reading every document")
                try:
                    stats = await read_every(
                        collection, progress=progress, policy=settings.retry_policy, what=where
                    )
                finally:
                    progress.close()
            else:
                if announce is not None:
                    announce(f"sampling {min(sample, total):,} of ~{total:,} documents of {where}")
                stats = await read_sample(
                    collection, size=sample, policy=settings.retry_policy, what=where
                )
        except PyMongoError as exc:
            raise ServerUnavailableError(
                f"reading {where} from MongoDB at {redact_uri(uri)} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return stats, total


async def read_every(
    collection: Any, *, progress: Progress, policy: RetryPolicy, what: str
) -> FieldStats:
    """Every document once, in ``_id`` order (resumed at the last ``_id`` after a fault)."""
    stats = FieldStats()
    batches = iter_id_order(collection, batch_size=READ_BATCH, policy=policy, what=what)
    async for batch in batches:
        for document in batch:
            stats.add(document)
        progress.advance(len(batch))
    return stats


async def read_sample(collection: Any, *, size: int, policy: RetryPolicy, what: str) -> FieldStats:
    """``size`` documents at random (``$sample``), the whole sample again after a fault.

    MongoDB's random cursor may return a document twice; each is counted once.
    """
    delays = policy.delays()
    while True:
        stats = FieldStats()
        try:
            await _add_sample(collection, stats, size=size)
            return stats
        except MONGO_TRANSIENT as exc:
            delay = next(delays, None)
            if delay is None:
                raise TransientFaultError(
                    f"sampling {what} from MongoDB kept failing: {type(exc).__name__}: {exc}"
                ) from exc
            log.warning("sampling %s failed (%s); again in %.2f s", what, exc, delay)
            await asyncio.sleep(delay)


async def _add_sample(collection: Any, stats: FieldStats, *, size: int) -> None:
    opened = collection.aggregate(
        [{"$sample": {"size": size}}], allowDiskUse=True, batchSize=min(size, READ_BATCH)
    )
    cursor = await opened if inspect.isawaitable(opened) else opened  # PyMongo's is a coroutine
    seen: set[bytes] = set()
    try:
        async for document in cursor:
            key = bson.encode({"_id": document["_id"]}, codec_options=MAPPING_BSON_OPTIONS)
            if key not in seen:
                seen.add(key)
                stats.add(document)
    finally:
        with contextlib.suppress(*MONGO_TRANSIENT):
            await cursor.close()
