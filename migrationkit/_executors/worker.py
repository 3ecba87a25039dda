"""The worker loop every backend runs: receive a batch, validate it, write it, report.

It is written once, as a coroutine. The asyncio backend runs it as a task; the
threading and multiprocessing backends run it with ``asyncio.run`` in their own
thread or process, reading from a blocking queue (see :func:`blocking_worker_main`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import signal
import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from migrationkit._executors.events import (
    STOP,
    BatchDone,
    Failed,
    Ready,
    Retried,
    Stopped,
    WorkerEvent,
)
from migrationkit._normalize.rows import Batch, PreparedBatch, Rejection, Transform, prepare_batch
from migrationkit._observe.logs import WorkerLogging
from migrationkit._retry import retry_listener

#: How often a blocked process worker checks that its parent is still alive.
PARENT_CHECK_S = 1.0

#: Writes one prepared batch; returns every rejection it set aside.
Sink = Callable[[PreparedBatch], Awaitable[list[Rejection]]]
#: Opens a worker's sink from the job's ``target`` (where and how to write; picklable).
SinkOpener = Callable[[Any], AbstractAsyncContextManager[Sink]]


@dataclass(frozen=True)
class WorkerJob:
    """What each worker does with a batch. Picklable: process workers get a copy.

    The worker knows no database: ``open_sink(target)`` opens whatever writes the
    rows (:class:`migrationkit._target.loader.PostgresTarget` and its ``postgres_sink``
    in a migration; a fake in the unit tests). ``transform`` and ``open_sink`` must be
    module-level functions (process workers receive them pickled by name).
    ``transform`` raises ``ValueError`` (pydantic's ``ValidationError`` is one) to
    reject a document.
    """

    target: Any
    open_sink: SinkOpener
    transform: Transform
    log_setup: WorkerLogging | None = None  # the run id (and format) for the worker's log lines


async def run_worker(
    index: int,
    job: WorkerJob,
    receive: Callable[[], Awaitable[tuple[int, Batch] | None]],
    emit: Callable[[WorkerEvent], Any],
) -> None:
    """Open the sink, then write ``(seq, batch)`` items until ``STOP``; never raises."""
    retry_listener.set(lambda what: emit(Retried(index, what)))
    try:
        async with job.open_sink(job.target) as write:
            emit(Ready(index))
            while (item := await receive()) is not STOP:
                seq, batch = item
                started = time.monotonic()
                prepared = prepare_batch(batch, job.transform)
                transformed = time.monotonic()
                rejections = await write(prepared)
                finished = time.monotonic()
                refused = len(rejections) - len(prepared.rejections)
                emit(
                    BatchDone(
                        index,
                        seq,
                        len(prepared.rows) - refused,
                        tuple((r.mongo_id, r.reason) for r in rejections),
                        started,
                        finished,
                        transform_s=transformed - started,
                        write_s=finished - transformed,
                        dropped=tuple(prepared.dropped.items()),
                        kept_aside=tuple(prepared.kept_aside.items()),
                    )
                )
    except Exception as exc:
        emit(Failed(index, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    else:
        emit(Stopped(index))


def blocking_worker_main(index: int, job: WorkerJob, inbox: Any, events: Any) -> None:
    """Entry point of a thread or process worker: its own event loop, blocking queues.

    Blocking on ``inbox.get`` is fine here: this loop serves only this worker. A
    process worker ignores Ctrl-C (the parent decides when it stops) and stops by
    itself if its parent dies, instead of waiting forever.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if job.log_setup is not None:
        job.log_setup.apply(in_child_process=parent is not None)

    async def receive() -> tuple[int, Batch] | None:
        while True:
            try:
                item: tuple[int, Batch] | None = inbox.get(timeout=PARENT_CHECK_S)
                return item
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    return STOP

    asyncio.run(run_worker(index, job, receive, events.put))
