"""The source's change stream as the follower reads it: in batches, with the server's time.

Events are decoded once, by the driver, with the kit's codec options
(:data:`~migrationkit._normalize.rows.BSON_OPTIONS`), like the full load's documents,
so a change carries every value exactly as the load would have. (Raw BSON would be
decoded twice: the driver reads each event's ``_id`` for its resume token.)

The stream is read by a thread of its own, with a synchronous client of its own, a
couple of batches ahead of the follower. On the follower's event loop, the next
``getMore`` waited until the last batch was normalized, and the server sat idle
meanwhile (``docs/benchmark_follow.md``); the thread waits on the socket instead,
which releases the GIL. Whichever driver the run uses (Motor or PyMongo's async
client), the stream is read with PyMongo's synchronous one.
"""

from __future__ import annotations

import asyncio
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
    """An open stream, read ahead by a thread of its own: ``await stream.next()``.

    The thread starts at the first :meth:`next` (taking a position only needs
    :attr:`start_token`), holds at most :data:`READ_AHEAD` batches, and hands over
    what stopped it (a lost position, a dropped connection) as the next batch would
    have been: :meth:`next` raises it.
    """

    def __init__(
        self,
        client: Any,
        raw_stream: Any,
        namespace: str,
        *,
        max_events: int,
        max_wait_s: float,
    ) -> None:
        self._client = client
        self._stream = raw_stream
        self.namespace = namespace
        self._max_events = max_events
        self._max_wait_s = max_wait_s
        #: Where the stream resumes before anything is read: the server's position.
        self.start_token = _plain(raw_stream.resume_token)
        self._slots = threading.Semaphore(READ_AHEAD)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready: asyncio.Queue[StreamBatch | BaseException] = asyncio.Queue()
        self._failure: BaseException | None = None

    @classmethod
    def open(
        cls, uri: str, namespace: str, *, resume_after: Any, max_events: int, max_wait_s: float
    ) -> ChangeStream:
        """Blocking: connect and open the stream (run it in a worker thread)."""
        options: dict[str, Any] = {"max_await_time_ms": MAX_AWAIT_MS}
        if resume_after is not None:
            options["resume_after"] = resume_after
        database, collection = namespace.split(".", 1)
        client = blocking_mongo_client(uri)
        try:
            with translating_stream_errors(namespace):
                watched = client[database][collection].with_options(codec_options=BSON_OPTIONS)
                raw_stream = watched.watch(**options)
        except BaseException:
            client.close()
            raise
        return cls(client, raw_stream, namespace, max_events=max_events, max_wait_s=max_wait_s)

    async def next(self) -> StreamBatch:
        """The next batch: events until the server has no more now, ``max_events``, or
        ``max_wait_s``."""
        if self._thread is None:
            loop = asyncio.get_running_loop()
            self._thread = threading.Thread(
                target=self._read_ahead, args=(loop,), name="change-stream", daemon=True
            )
            self._thread.start()
        if self._failure is None:
            ready = await self._ready.get()
            self._slots.release()
            if not isinstance(ready, BaseException):
                return ready
            self._failure = ready
        raise self._failure

    async def close(self) -> None:
        """Stop the thread (within one ``getMore``'s wait), then close stream and client."""
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        try:
            self._stream.close()
        finally:
            self._client.close()

    def _read_ahead(self, loop: asyncio.AbstractEventLoop) -> None:
        """The thread: read batches until stopped, handing each over to ``loop``."""
        try:
            with translating_stream_errors(self.namespace):
                while not self._stopping.is_set():
                    if self._slots.acquire(timeout=0.1):
                        self._hand_over(loop, self._read_batch())
        except BaseException as exc:  # handed over, raised by next()
            self._hand_over(loop, exc)

    def _hand_over(
        self, loop: asyncio.AbstractEventLoop, ready: StreamBatch | BaseException
    ) -> None:
        try:
            loop.call_soon_threadsafe(self._ready.put_nowait, ready)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            self._stopping.set()

    def _read_batch(self) -> StreamBatch:
        before = _cluster_time(self._client.admin.command("ping"), self.namespace)
        started = time.perf_counter()
        events: list[ChangeEvent] = []
        drained = False
        while len(events) < self._max_events:
            raw = self._stream.try_next()
            if raw is None:
                drained = True
                break
            events.append(parse_event(_decoded(raw)))
            if time.perf_counter() - started >= self._max_wait_s:
                break
        last = events[-1].cluster_time if events else None
        caught = before if drained else (last or NEVER)
        if drained and last is not None:
            caught = max(caught, last)
        return StreamBatch(
            events,
            _plain(self._stream.resume_token),
            drained,
            time.perf_counter() - started,
            caught,
        )


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
