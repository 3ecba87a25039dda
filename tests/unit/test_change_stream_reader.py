"""The change stream's reader thread, on a fake stream: batches in order, what stopped
it raised to the follower, how far it reads ahead, and a clean stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from bson.timestamp import Timestamp
from pymongo.errors import OperationFailure

from migrationkit._errors import ChangeHistoryLostError
from migrationkit._source.stream import READ_AHEAD, ChangeStream

PING_TIME = Timestamp(50, 0)


def event(second: int) -> dict[str, Any]:
    return {
        "_id": {"_data": f"{second:04d}"},
        "operationType": "delete",
        "ns": {"db": "db", "coll": "c"},
        "documentKey": {"_id": second},
        "clusterTime": Timestamp(second, 1),
    }


class FakeCursor:
    """``read`` gives what ``answers`` yields, one answer a read: an event, ``None``
    (the server had nothing), or an exception to raise. Past the end it answers ``None``."""

    def __init__(self, answers: Iterator[Any]) -> None:
        self._answers = answers
        self.token: Any = {"_data": "start"}
        self.reads = 0
        self.closed = False

    def read(self, limit: int) -> list[dict[str, Any]]:
        assert limit >= 1
        self.reads += 1
        answer = next(self._answers, None)
        if isinstance(answer, BaseException):
            raise answer
        if answer is None:
            return []
        self.token = answer["_id"]
        return [answer]

    def close(self) -> None:
        self.closed = True


class FakeAdmin:
    def command(self, name: str) -> dict[str, Any]:
        assert name == "ping"
        return {"ok": 1, "operationTime": PING_TIME}


class FakeClient:
    admin = FakeAdmin()

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def open_stream(raw: FakeCursor, *, max_events: int = 2) -> tuple[ChangeStream, FakeClient]:
    client = FakeClient()
    stream = ChangeStream(client, raw, "db.c", max_events=max_events, max_wait_s=5.0)
    return stream, client


async def test_batches_come_in_order_with_the_time_every_change_before_is_read_by() -> None:
    raw = FakeCursor(iter([event(10), event(11), event(12), None]))
    stream, client = open_stream(raw)
    assert stream.start_token == {"_data": "start"}
    full = await stream.next()
    assert [e.document_id for e in full.events] == [10, 11]
    assert not full.drained
    assert full.caught_up_to == Timestamp(11, 1)  # cut at max_events: up to its last event
    assert full.token == {"_data": "0011"}
    drained = await stream.next()
    assert [e.document_id for e in drained.events] == [12]
    assert drained.drained
    assert drained.caught_up_to == PING_TIME  # the server's time before it read nothing more
    await stream.close()
    assert raw.closed
    assert client.closed


async def test_what_stopped_the_reader_is_raised_after_the_batches_read_before() -> None:
    lost = OperationFailure("resume point gone", code=286, details={"codeName": "x"})
    raw = FakeCursor(iter([event(10), event(11), lost]))
    stream, _ = open_stream(raw)
    assert len((await stream.next()).events) == 2
    with pytest.raises(ChangeHistoryLostError, match="resume point gone"):
        await stream.next()
    with pytest.raises(ChangeHistoryLostError):  # and again: the thread has ended
        await stream.next()
    await stream.close()


async def test_the_reader_holds_at_most_a_few_batches_the_follower_has_not_taken() -> None:
    raw = FakeCursor(event(second) for second in range(10, 10_000))
    stream, _ = open_stream(raw, max_events=1)
    await stream.next()
    for _ in range(50):  # let the thread run as far as it may
        await asyncio.sleep(0.01)
    assert raw.reads == 1 + READ_AHEAD  # the batch taken, and READ_AHEAD waiting
    await stream.close()
    assert not any(thread.name.startswith("change-stream") for thread in threading.enumerate())
