"""The source's change stream as the follower reads it: in batches, with the server's time.

Events are decoded once, with the kit's codec options
(:data:`~migrationkit._normalize.rows.BSON_OPTIONS`), like the full load's documents,
so a change carries every value exactly as the load would have.

The stream is read by a thread of its own, with a synchronous client of its own, a
couple of batches ahead of the follower, and its events are decoded by a second
thread. The server answers a ``getMore`` only when asked, so whatever the asking
thread does between two of them leaves the server idle: on the follower's event loop
that was normalizing a batch, and on a reader thread that decoded its events it was
the decoding (``docs/benchmark_follow.md``). The reader therefore sends the stream's
commands itself, a ``getMore`` a read (:mod:`migrationkit._source.change_cursor`), keeps
the events raw and asks again at once; waiting on the socket releases the GIL.
Whichever driver the run uses (Motor or PyMongo's async client), the stream is read
with PyMongo's synchronous one.
"""

from __future__ import annotations

import asyncio
import queue
import threading
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
from migrationkit._source.change_cursor import ChangeCursor
from migrationkit._source.changes import ChangeEvent, parse_event, translating_stream_errors
from migrationkit._source.connection import blocking_mongo_client
from migrationkit._source.keyset import raw_documents

#: How long the server waits for a change before answering an empty batch.
MAX_AWAIT_MS = 300
#: ``_id``s per ``$in`` query when documents are read again (SecantusDB slows past ~100).
REREAD_CHUNK = 100
#: Batches the reader thread may hold that the follower has not taken yet.
READ_AHEAD = 2
#: The earliest possible cluster time.
NEVER = Timestamp(0, 0)


@dataclass(frozen=True)
class StreamBatch:
    """Events read in one go; ``drained``: the server had nothing more when it answered.

    ``caught_up_to``: every change made up to this cluster time is in this batch or an
    earlier one (the server's time before the read, if it drained the stream).
    """

    events: list[ChangeEvent]
    token: Any
    drained: bool
    read_s: float
    caught_up_to: Timestamp


class SourceCollection:
    """One collection of the source, for following it: times, identity, stream, re-reads."""

    def __init__(self, client: Any, database: str, collection: str, *, uri: str) -> None:
        self.client = client
        self._uri = uri
        self._database = client[database]
        self.collection = self._database[collection]
        self.name = collection
        self.namespace = f"{database}.{collection}"

    async def cluster_time(self) -> Timestamp:
        """The time of the server's latest write: every write up to it is committed."""
        return _cluster_time(await self.client.admin.command("ping"), self.namespace)

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
    async def stream(
        self, *, resume_after: Any = None, max_events: int = 1_000, max_wait_s: float = 0.5
    ) -> AsyncIterator[ChangeStream]:
        """A change stream from ``resume_after`` (``None``: from now), read in batches of
        up to ``max_events`` events or ``max_wait_s`` seconds."""
        stream = await asyncio.to_thread(
            ChangeStream.open,
            self._uri,
            self.namespace,
            resume_after=resume_after,
            max_events=max_events,
            max_wait_s=max_wait_s,
        )
        try:
            yield stream
        finally:
            await stream.close()

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
    """An open stream, read ahead by threads of its own: ``await stream.next()``.

    The threads start at the first :meth:`next` (taking a position only needs
    :attr:`start_token`). The reader holds at most :data:`READ_AHEAD` batches the
    follower has not taken; the decoder turns each into events. What stopped either
    (a lost position, a dropped connection, a malformed event) comes where the next
    batch would have: :meth:`next` raises it.
    """

    def __init__(
        self,
        client: Any,
        cursor: ChangeCursor,
        namespace: str,
        *,
        max_events: int,
        max_wait_s: float,
    ) -> None:
        self._client = client
        self._cursor = cursor
        self.namespace = namespace
        self._max_events = max_events
        self._max_wait_s = max_wait_s
        #: Where the stream resumes before anything is read: the server's position.
        self.start_token = _plain(cursor.token)
        self._slots = threading.Semaphore(READ_AHEAD)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._undecoded: queue.SimpleQueue[_RawBatch | BaseException | None] = queue.SimpleQueue()
        self._ready: asyncio.Queue[StreamBatch | BaseException] = asyncio.Queue()
        self._failure: BaseException | None = None

    @classmethod
    def open(
        cls, uri: str, namespace: str, *, resume_after: Any, max_events: int, max_wait_s: float
    ) -> ChangeStream:
        """Blocking: connect and open the stream (run it in a worker thread)."""
        client = blocking_mongo_client(uri)
        cursor = ChangeCursor(
            client, namespace, resume_after=resume_after, max_await_ms=MAX_AWAIT_MS
        )
        try:
            with translating_stream_errors(namespace):
                cursor.open()
        except BaseException:
            cursor.close()
            client.close()
            raise
        return cls(client, cursor, namespace, max_events=max_events, max_wait_s=max_wait_s)

    async def next(self) -> StreamBatch:
        """The next batch: events until the server has no more now, ``max_events``, or
        ``max_wait_s``."""
        if not self._threads:
            self._start(asyncio.get_running_loop())
        if self._failure is None:
            ready = await self._ready.get()
            self._slots.release()
            if not isinstance(ready, BaseException):
                return ready
            self._failure = ready
        raise self._failure

    async def close(self) -> None:
        """Stop the threads (within one ``getMore``'s wait), then close stream and client."""
        self._stopping.set()
        if self._threads:
            reader, decoder = self._threads
            await asyncio.to_thread(reader.join)
            self._undecoded.put(None)
            await asyncio.to_thread(decoder.join)
        await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        try:
            self._cursor.close()
        finally:
            self._client.close()

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._threads = [
            threading.Thread(target=self._read_ahead, name="change-stream", daemon=True),
            threading.Thread(
                target=self._decode, args=(loop,), name="change-stream-decoder", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _read_ahead(self) -> None:
        """The reader thread: raw batches, one after the other, until stopped."""
        try:
            with translating_stream_errors(self.namespace):
                while not self._stopping.is_set():
                    if self._slots.acquire(timeout=0.1):
                        self._undecoded.put(self._read_batch())
        except BaseException as exc:  # handed over after the batches before it
            self._undecoded.put(exc)

    def _decode(self, loop: asyncio.AbstractEventLoop) -> None:
        """The decoder thread: each raw batch as events, handed over to ``loop``."""
        while (raw := self._undecoded.get()) is not None:
            try:
                ready: StreamBatch | BaseException = (
                    raw if isinstance(raw, BaseException) else raw.decoded()
                )
            except BaseException as exc:  # a malformed event
                ready = exc
            try:
                loop.call_soon_threadsafe(self._ready.put_nowait, ready)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                self._stopping.set()
                return
            if isinstance(ready, BaseException):
                return

    def _read_batch(self) -> _RawBatch:
        before = _cluster_time(self._client.admin.command("ping"), self.namespace)
        started = time.perf_counter()
        events: list[Any] = []
        drained = False
        while len(events) < self._max_events:
            read = self._cursor.read(self._max_events - len(events))
            if not read:
                drained = True
                break
            events += read
            if time.perf_counter() - started >= self._max_wait_s:
                break
        return _RawBatch(events, self._cursor.token, drained, time.perf_counter() - started, before)


@dataclass(frozen=True)
class _RawBatch:
    """A batch as the reader took it: undecoded events, and the server's time before."""

    events: list[Any]
    token: Any
    drained: bool
    read_s: float
    before: Timestamp

    def decoded(self) -> StreamBatch:
        events = [parse_event(_decoded(raw)) for raw in self.events]
        last = events[-1].cluster_time if events else None
        caught = self.before if self.drained else (last or NEVER)
        if self.drained and last is not None:
            caught = max(caught, last)
        return StreamBatch(events, _plain(self.token), self.drained, self.read_s, caught)


def _cluster_time(reply: Mapping[str, Any], namespace: str) -> Timestamp:
    """The cluster time a reply carries: every write up to it is committed."""
    found = reply.get("operationTime") or (reply.get("$clusterTime") or {}).get("clusterTime")
    if not isinstance(found, Timestamp):
        raise ConfigurationError(
            f"cannot follow {namespace}: the server reports no cluster time "
            "(a standalone MongoDB? change streams need a replica set)"
        )
    return found


def _plain(token: Any) -> Any:
    return dict(bson.decode(token.raw)) if isinstance(token, RawBSONDocument) else token


def _decoded(raw: Any) -> dict[str, Any]:
    if isinstance(raw, RawBSONDocument):
        return bson.decode(raw.raw, BSON_OPTIONS)
    return dict(raw)
