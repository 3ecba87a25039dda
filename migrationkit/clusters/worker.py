"""The worker loop every backend runs: receive a batch, validate it, write it, report.

It is written once, as a coroutine. The asyncio backend runs it as a task; the
threading and multiprocessing backends run it with ``asyncio.run`` in their own
thread or process, reading from a blocking queue (see :func:`blocking_worker_main`).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import queue
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.codec_options import CodecOptions
from pydantic import ValidationError

from migrationkit.clusters.events import STOP, BatchDone, Failed, Ready, Stopped, WorkerEvent
from migrationkit.connections import PostgresConnectionHandler
from migrationkit.models import Row, describe_errors, document_to_row, mongo_key
from migrationkit.repositories.postgres import UserPostgresRepository
from migrationkit.settings import Writer

Batch = Sequence[Mapping[str, Any] | bytes]
BSON_OPTIONS: CodecOptions[Any] = CodecOptions(tz_aware=True)
Transform = Callable[[Mapping[str, Any]], Row]

#: How often a blocked process worker checks that its parent is still alive.
PARENT_CHECK_S = 1.0


Sink = Callable[[Sequence[Row]], Awaitable[int]]
SinkOpener = Callable[["WorkerJob"], AbstractAsyncContextManager[Sink]]


@asynccontextmanager
async def postgres_sink(job: WorkerJob) -> AsyncIterator[Sink]:
    """One persistent PostgreSQL connection per worker, writing with ``job.writer``."""
    async with (
        PostgresConnectionHandler(job.pg_dsn, min_size=1, max_size=1) as pool,
        pool.acquire() as connection,
    ):
        repository = UserPostgresRepository(connection, table=job.table)
        yield functools.partial(repository.write, writer=job.writer)


@dataclass(frozen=True)
class WorkerJob:
    """What each worker does with a batch. Picklable: process workers get a copy.

    ``transform`` and ``open_sink`` must be module-level functions (process
    workers receive them pickled by name). ``transform`` raises ``ValueError``
    (pydantic's ``ValidationError`` is one) to reject a document.
    """

    pg_dsn: str = field(repr=False)
    table: str = "users"
    writer: Writer = "copy"
    transform: Transform = document_to_row
    open_sink: SinkOpener = postgres_sink


def transform_batch(batch: Batch, transform: Transform) -> tuple[list[Row], list[tuple[str, str]]]:
    """Rows for the valid documents, and (mongo_id, reason) for the others.

    A document may arrive as raw BSON ``bytes`` (see ``reads_raw_bson``): decode it here.
    """
    rows: list[Row] = []
    rejected: list[tuple[str, str]] = []
    for item in batch:
        document = bson.decode(item, BSON_OPTIONS) if isinstance(item, bytes) else item
        try:
            rows.append(transform(document))
        except ValueError as exc:
            reason = describe_errors(exc) if isinstance(exc, ValidationError) else str(exc)
            rejected.append((mongo_key(document.get("_id")), reason))
    return rows, rejected


async def run_worker(
    index: int,
    job: WorkerJob,
    receive: Callable[[], Awaitable[Batch | None]],
    emit: Callable[[WorkerEvent], Any],
) -> None:
    """Open the sink (a PostgreSQL connection), write batches until ``STOP``; never raises."""
    try:
        async with job.open_sink(job) as write:
            emit(Ready(index))
            while (batch := await receive()) is not STOP:
                started = time.monotonic()
                rows, rejected = transform_batch(batch, job.transform)
                written = await write(rows)
                emit(BatchDone(index, written, tuple(rejected), started, time.monotonic()))
    except Exception as exc:
        emit(Failed(index, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    else:
        emit(Stopped(index))


def blocking_worker_main(index: int, job: WorkerJob, inbox: Any, events: Any) -> None:
    """Entry point of a thread or process worker: its own event loop, blocking queues.

    Blocking on ``inbox.get`` is fine here: this loop serves only this worker. A
    process worker whose parent died stops instead of waiting forever.
    """
    parent = multiprocessing.parent_process()

    async def receive() -> Batch | None:
        while True:
            try:
                batch: Batch | None = inbox.get(timeout=PARENT_CHECK_S)
                return batch
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    return STOP

    asyncio.run(run_worker(index, job, receive, events.put))
