"""The change stream's own commands: one ``aggregate`` to open it, one ``getMore`` per read.

PyMongo's ``ChangeStream`` hands events over one at a time, and every event costs the
thread that reads the stream some Python (the token, the cursor's buffer) while it holds
the GIL. Beside a follower that normalizes and commits on two more threads, that
reader got a third of the GIL, and the server, which answers a ``getMore`` only when
asked, sat idle in between. Here a read is one command, and its events stay raw BSON
for the decoder thread (:mod:`migrationkit._source.stream`).

What the driver's stream did besides, this does too: the cursor lives in one explicit
session (MongoDB refuses a ``getMore`` from another), the position after a read is the
last event's token, or the server's ``postBatchResumeToken`` when the read was empty,
and after a resumable error (a dropped connection, a cursor the server forgot, an
error labelled ``ResumableChangeStreamError``) the stream is opened again once, from the
position after the last read: nothing is skipped, nothing handed over twice.
"""

from __future__ import annotations

from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo.errors import ConnectionFailure, CursorNotFound, OperationFailure

from migrationkit._normalize.rows import BSON_OPTIONS

#: Replies decoded at their top level only; events stay raw.
RAW_REPLY = BSON_OPTIONS.with_options(document_class=RawBSONDocument)
#: The label MongoDB 4.4+ puts on errors a change stream may resume after.
RESUMABLE_LABEL = "ResumableChangeStreamError"


class ChangeCursor:
    """A change stream on one collection, read a batch at a time (blocking calls)."""

    def __init__(self, client: Any, namespace: str, *, resume_after: Any, max_await_ms: int):
        database, self._collection = namespace.split(".", 1)
        self._database = client[database]
        self._client = client
        self._max_await_ms = max_await_ms
        self._session: Any = None
        self._cursor_id = 0
        #: The first batch, which ``aggregate`` returns with the cursor, until read.
        self._pending: list[RawBSONDocument] = []
        #: The position after every event read so far (``None``: the server gave none).
        self.token: Any = resume_after

    def open(self) -> None:
        """Open the stream at :attr:`token` (or now, if there is none yet)."""
        stage: dict[str, Any] = {}
        if self.token is not None:
            stage["resumeAfter"] = self.token
        if self._session is None:
            self._session = self._client.start_session(causal_consistency=False)
        reply = self._database.command(
            "aggregate",
            self._collection,
            pipeline=[{"$changeStream": stage}],
            cursor={},
            session=self._session,
            codec_options=RAW_REPLY,
        )
        self._pending = self._take(reply["cursor"], "firstBatch")

    def read(self, limit: int) -> list[RawBSONDocument]:
        """Up to ``limit`` events (an empty list: none came within the server's wait)."""
        events = self._next_events(limit)
        if events:
            self.token = events[-1]["_id"]
        return events

    def close(self) -> None:
        """Kill the server's cursor (best effort) and end the session."""
        try:
            if self._cursor_id:
                self._database.command(
                    "killCursors", self._collection, cursors=[self._cursor_id],
                    session=self._session,
                )  # fmt: skip
        except (ConnectionFailure, OperationFailure):
            pass  # the server forgets an abandoned cursor by itself
        finally:
            self._cursor_id = 0
            if self._session is not None:
                self._session.end_session()
                self._session = None

    def _next_events(self, limit: int) -> list[RawBSONDocument]:
        if self._pending:
            events, self._pending = self._pending[:limit], self._pending[limit:]
            return events
        try:
            return self._get_more(limit)
        except (ConnectionFailure, OperationFailure) as exc:
            if not _resumable(exc):
                raise
        self.open()  # from the position after the last read; fails loudly if it cannot
        if self._pending:
            return self._next_events(limit)
        return self._get_more(limit)  # a second failure in a row is raised

    def _get_more(self, limit: int) -> list[RawBSONDocument]:
        reply = self._database.command(
            "getMore",
            self._cursor_id,
            collection=self._collection,
            batchSize=limit,
            maxTimeMS=self._max_await_ms,
            session=self._session,
            codec_options=RAW_REPLY,
        )
        return self._take(reply["cursor"], "nextBatch")

    def _take(self, cursor: Any, batch: str) -> list[RawBSONDocument]:
        """A reply's events (:meth:`read` moves :attr:`token` past those it hands out)."""
        self._cursor_id = cursor["id"]
        events: list[RawBSONDocument] = list(cursor[batch])
        if not events and "postBatchResumeToken" in cursor:
            # Nothing was waiting: the server's mark is past everything it has.
            self.token = cursor["postBatchResumeToken"]
        return events


def _resumable(exc: ConnectionFailure | OperationFailure) -> bool:
    if isinstance(exc, ConnectionFailure | CursorNotFound):
        return True
    return exc.has_error_label(RESUMABLE_LABEL)
