"""Fake sinks and transforms for cluster tests: module-level so process workers can load them.

Rows are ``(mongo_id, "u", "u@x.org", 0, None)``; the ``_id`` decides what a fake does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from migrationkit._executors.worker import Sink, SinkOpener, WorkerJob
from migrationkit._normalize.rows import PreparedBatch, Rejection, Row

SinkOpenerType = SinkOpener

#: Released by a test to let ``gated_sink`` workers finish their batch.
GATE = threading.Event()


def fake_row(document: Mapping[str, Any]) -> Row:
    if document.get("bad"):
        raise ValueError("marked bad by the test")
    return (str(document["_id"]), "u", "u@x.org", 0, None)


def documents(start: int, count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"_id": number, **extra} for number in range(start, start + count)]


@asynccontextmanager
async def counting_sink(target: object) -> AsyncIterator[Sink]:
    async def write(batch: PreparedBatch) -> list[Rejection]:
        return batch.rejections

    yield write


@asynccontextmanager
async def failing_sink(target: object) -> AsyncIterator[Sink]:
    async def write(batch: PreparedBatch) -> list[Rejection]:
        if any(row[0] == "13" for row in batch.rows):
            raise RuntimeError("disk on fire while writing row 13")
        return batch.rejections

    yield write


@asynccontextmanager
async def dying_sink(target: object) -> AsyncIterator[Sink]:
    async def write(batch: PreparedBatch) -> list[Rejection]:
        if any(row[0] == "13" for row in batch.rows):
            os.kill(os.getpid(), signal.SIGKILL)
        return batch.rejections

    yield write


@asynccontextmanager
async def unopenable_sink(target: object) -> AsyncIterator[Sink]:
    raise ConnectionRefusedError("nobody listens on the fake database port")
    yield  # pragma: no cover


@asynccontextmanager
async def gated_sink(target: object) -> AsyncIterator[Sink]:
    async def write(batch: PreparedBatch) -> list[Rejection]:
        await asyncio.to_thread(GATE.wait)
        return batch.rejections

    yield write


def job(sink: SinkOpener = counting_sink) -> WorkerJob:
    """A worker job that writes through a fake ``sink`` (no database anywhere)."""
    return WorkerJob(target=None, open_sink=sink, transform=fake_row)
