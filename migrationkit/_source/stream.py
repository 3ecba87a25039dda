"""The source's change stream as the follower reads it: in batches, with the server's time.

Events are decoded once, by the driver, with the kit's codec options
(:data:`~migrationkit._normalize.rows.BSON_OPTIONS`), like the full load's documents,
so a change carries every value exactly as the load would have. (Raw BSON would be
decoded twice: the driver reads each event's ``_id`` for its resume token.) Motor and PyMongo's
async client differ in how a stream is opened; nothing above this module knows which.
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from bson.timestamp import Timestamp

from migrationkit._errors import ConfigurationError
from migrationkit._normalize.rows import BSON_OPTIONS, mongo_key
from migrationkit._source.changes import ChangeEvent, parse_event, translating_stream_errors
from migrationkit._source.keyset import raw_documents

#: How long the server waits for a change before answering an empty batch.
MAX_AWAIT_MS = 300
#: ``_id``s per ``$in`` query when documents are read again (SecantusDB slows past ~100).
REREAD_CHUNK = 100


@dataclass(frozen=True)
class StreamBatch:
    """Events read in one go; ``drained``: the server had nothing more when it answered."""

    events: list[ChangeEvent]
    token: Any
    drained: bool
    read_s: float


class SourceCollection:
    """One collection of the source, for following it: times, identity, stream, re-reads."""

    def __init__(self, client: Any, database: str, collection: str) -> None:
        self.client = client
        self._database = client[database]
        self.collection = self._database[collection]
        self.name = collection
        self.namespace = f"{database}.{collection}"

    async def cluster_time(self) -> Timestamp:
        """The time of the server's latest write: every write up to it is committed."""
        reply = await self.client.admin.command("ping")
        found = reply.get("operationTime") or (reply.get("$clusterTime") or {}).get("clusterTime")
        if not isinstance(found, Timestamp):
            raise ConfigurationError(
                f"cannot follow {self.namespace}: the server reports no cluster time "
                "(a standalone MongoDB? change streams need a replica set)"
            )
        return found

    async def uuid(self) -> str | None:
        """The collection's UUID: it differs on another server and after a re-create."""
        async for info in await self._database.list_collections(filter={"name": self.name}):
            found = (info.get("info") or {}).get("uuid")
            if isinstance(found, bytes) and len(found) == 16:  # a Binary of any subtype
                return str(uuid.UUID(bytes=bytes(found)))
            return None if found is None else str(found)
        return None

    async def prunes_silently(self) -> bool:
        """Whether a live stream may skip pruned changes without an error (SecantusDB)."""
        info = await self.client.admin.command("buildInfo")
        return "secantusVersion" in info

    @asynccontextmanager
    async def stream(self, *, resume_after: Any = None) -> AsyncIterator[ChangeStream]:
        """A change stream from ``resume_after`` (``None``: from now)."""
        options: dict[str, Any] = {"max_await_time_ms": MAX_AWAIT_MS}
        if resume_after is not None:
            options["resume_after"] = resume_after
        with translating_stream_errors(self.namespace):
            opened = self.collection.with_options(codec_options=BSON_OPTIONS).watch(**options)
            if inspect.isawaitable(opened):  # PyMongo's async client; Motor returns it
                opened = await opened
            async with opened as raw_stream:
                yield ChangeStream(raw_stream, self.namespace)

    async def current(self, ids: Sequence[Any]) -> dict[str, Mapping[str, Any]]:
        """The documents with these ``_id``s as they are now, by key; absent ones missing."""
        found: dict[str, Mapping[str, Any]] = {}
        reader = raw_documents(self.collection)
        for start in range(0, len(ids), REREAD_CHUNK):
            chunk = list(ids[start : start + REREAD_CHUNK])
            async for raw in reader.find({"_id": {"$in": chunk}}):
                document = bson.decode(raw.raw, BSON_OPTIONS)
                found[mongo_key(document["_id"])] = document
        return found


class ChangeStream:
    """An open stream, read a batch at a time."""

    def __init__(self, raw_stream: Any, namespace: str) -> None:
        self._stream = raw_stream
        self.namespace = namespace

    @property
    def token(self) -> Any:
        """Where the stream resumes: after the last event returned, or the server's position."""
        token = self._stream.resume_token
        return dict(bson.decode(token.raw)) if isinstance(token, RawBSONDocument) else token

    async def read(self, *, max_events: int, max_wait_s: float) -> StreamBatch:
        """Events until the server has no more now, ``max_events``, or ``max_wait_s``."""
        started = time.perf_counter()
        events: list[ChangeEvent] = []
        drained = False
        with translating_stream_errors(self.namespace):
            while len(events) < max_events:
                raw = await self._stream.try_next()
                if raw is None:
                    drained = True
                    break
                events.append(parse_event(_decoded(raw)))
                if time.perf_counter() - started >= max_wait_s:
                    break
        return StreamBatch(events, self.token, drained, time.perf_counter() - started)


def _decoded(raw: Any) -> dict[str, Any]:
    if isinstance(raw, RawBSONDocument):
        return bson.decode(raw.raw, BSON_OPTIONS)
    return dict(raw)
