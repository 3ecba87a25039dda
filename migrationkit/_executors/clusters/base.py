"""``ClusterMigrationBase``: dispatch, backpressure, start-up, shutdown and errors, once.

Data flow (one reader, N writers)::

    MongoDB ─cursor─▶ submit(batch) ─dispatcher─┬─▶ inbox 0 (bounded) ─▶ worker 0 ─COPY─▶ PostgreSQL
                                                ├─▶ inbox 1 (bounded) ─▶ worker 1 ─COPY─▶
                                                └─▶ …
            ◀── events: Ready, BatchDone (stats, rejections), Failed (traceback), Stopped ──

A full inbox makes ``submit`` wait: that wait is the backpressure that keeps
memory flat however large the collection. A backend only says how to start a
worker, how to hand it an item, how to read its events, and how to stop it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, ClassVar, Self

from migrationkit._errors import WorkerCrashedError, WorkerError
from migrationkit._executors.dispatch import Dispatcher, RoundRobin
from migrationkit._executors.events import (
    STOP,
    BatchDone,
    Failed,
    Ready,
    Retried,
    Stopped,
    WorkerEvent,
)
from migrationkit._executors.stats import REJECTION_SAMPLES, WorkerStats, log_rejections
from migrationkit._executors.worker import WorkerJob
from migrationkit._normalize.rows import Batch
from migrationkit._observe.observe import NullObserver, Observer
from migrationkit._observe.progress import NullProgress, Progress

#: What travels to a worker: the batch and its place in the reader's order.
Item = tuple[int, Batch]

#: How long one wait lasts before the cluster checks that its workers are alive.
POLL_S = 0.2


class ClusterMigrationBase(ABC):
    """A pool of ``size`` writer workers fed batches through bounded queues.

    Use it as ``async with cluster: await cluster.submit(batch) ...``. Leaving the
    block normally waits for every batch to be written; leaving it with an error
    stops the workers at once. A worker failure raises :class:`WorkerError` (with
    the worker's traceback) from the next ``submit`` or from the exit.
    """

    name: ClassVar[str]
    #: Ask the reader for undecoded BSON: the workers decode it (worth it across processes).
    reads_raw_bson: ClassVar[bool] = False

    def __init__(
        self,
        size: int,
        *,
        job: WorkerJob,
        queue_depth: int = 2,
        dispatcher: Dispatcher | None = None,
        progress: Progress | None = None,
        observer: Observer | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one worker")
        self.size = size
        self.job = job
        self.queue_depth = queue_depth
        self.dispatcher = dispatcher or RoundRobin(size)
        self.progress = progress or NullProgress()
        self.observer = observer or NullObserver()
        self.startup_timeout_s = startup_timeout_s
        self.stats = [WorkerStats(worker) for worker in range(size)]
        self.rejected: list[tuple[str, str]] = []
        self._in_flight = [0] * size
        self._ready: set[int] = set()
        self._stopped: set[int] = set()
        self._failure: WorkerError | None = None
        self._started = False
        self._stopping = False
        self._next_seq = 0
        self._done_seqs: set[int] = set()
        self._tokens: dict[int, Any] = {}
        self._watermark = -1  # every batch up to this seq is committed
        self.checkpoint: Any = None

    # -- what a backend provides ------------------------------------------------

    @abstractmethod
    def _start_workers(self) -> None:
        """Start ``self.size`` workers, each running :func:`run_worker`."""

    @abstractmethod
    async def _put(self, worker: int, item: Item | None, timeout: float) -> bool:
        """Hand ``item`` to a worker's inbox; ``False`` if it stayed full for ``timeout``."""

    @abstractmethod
    async def _next_event(self, timeout: float) -> WorkerEvent | None:
        """The next worker event, or ``None`` after ``timeout`` seconds (0: do not wait)."""

    @abstractmethod
    def _ended_workers(self) -> dict[int, str]:
        """Workers that are no longer running, with how they ended (e.g. "killed by SIGKILL")."""

    @abstractmethod
    async def _terminate(self) -> None:
        """Stop every worker now, abandoning queued batches (after a failure)."""

    @abstractmethod
    async def _join(self) -> None:
        """Wait for workers that already stopped, and release queues."""

    # -- the shared protocol -----------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.abort()

    async def start(self) -> None:
        """Start the workers and return once each has its connection open (no sleeps)."""
        if self._started:
            raise RuntimeError("this cluster was already started")
        self._started = True
        self._start_workers()
        deadline = time.monotonic() + self.startup_timeout_s
        try:
            await self._pump_until(lambda: len(self._ready) == self.size, deadline, "start")
        except BaseException:
            await self.abort()
            raise

    async def submit(self, batch: Batch, *, checkpoint: Any = None) -> None:
        """Queue one batch for the worker the dispatcher picks; waits while its inbox is full.

        ``checkpoint`` (e.g. the batch's last ``_id``) becomes :attr:`checkpoint` once
        this batch and every batch submitted before it are committed.
        """
        await self._raise_if_failed()
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        self._tokens[seq] = checkpoint
        worker = self.dispatcher.choose(self._in_flight)
        await self._deliver(worker, (seq, batch))
        self._in_flight[worker] += 1
        self.observer.queue_depths(backend=self.name, in_flight=self._in_flight)
        await self._pump(0)

    async def feed(
        self,
        batches: AsyncIterator[Batch],
        *,
        first: Awaitable[Batch | None] | None = None,
        checkpoint: Callable[[Batch, int], Any] | None = None,
        after_each: Callable[[], Awaitable[None]] | None = None,
    ) -> int:
        """Submit every batch of a stream, in order (``Executor.map`` for batches); rows read.

        ``first`` is the stream's first batch already asked for, so that reading it
        overlaps the workers' start-up; ``checkpoint(batch, rows_so_far)`` gives each
        batch its checkpoint token; ``after_each`` runs after every submit.
        """
        rows_read = 0
        waited = time.perf_counter()
        batch = await first if first is not None else await anext(batches, None)
        while batch is not None:
            rows_read += len(batch)
            self.observer.batch_read(
                backend=self.name, rows=len(batch), seconds=time.perf_counter() - waited
            )
            token = checkpoint(batch, rows_read) if checkpoint is not None else None
            await self.submit(batch, checkpoint=token)
            if after_each is not None:
                await after_each()
            waited = time.perf_counter()
            batch = await anext(batches, None)
        return rows_read

    async def close(self) -> list[WorkerStats]:
        """Let every worker finish its queue, then stop it; returns per-worker stats."""
        for worker in range(self.size):
            await self._deliver(worker, STOP)
        await self._pump_until(lambda: len(self._stopped) == self.size, None, "finish")
        await self._join()
        return self.stats

    async def abort(self) -> None:
        """Stop all workers without waiting for queued batches (they are not written)."""
        if self._stopping:
            return
        self._stopping = True
        if self._started:
            await self._pump(0)  # count what was committed before we stop: a later checkpoint
        await self._terminate()

    # -- internals -----------------------------------------------------------------

    async def _deliver(self, worker: int, item: Item | None) -> None:
        while not await self._put(worker, item, POLL_S):
            await self._pump(0)
            await self._check_alive()
            await self._raise_if_failed()

    async def _raise_if_failed(self) -> None:
        if self._failure is not None:
            await self.abort()
            raise self._failure

    async def _pump_until(
        self, done: Callable[[], bool], deadline: float | None, what: str
    ) -> None:
        while not done():
            await self._raise_if_failed()
            if deadline is not None and time.monotonic() > deadline:
                await self.abort()
                raise WorkerError(
                    -1, f"workers did not {what} within {self.startup_timeout_s:.0f} s"
                )
            await self._pump(POLL_S)
        await self._raise_if_failed()

    async def _pump(self, timeout: float) -> None:
        """Handle every waiting event (waiting up to ``timeout`` for the first one)."""
        event = await self._next_event(timeout)
        while event is not None:
            self._handle(event)
            event = await self._next_event(0)
        if timeout > 0:
            await self._check_alive()

    async def _check_alive(self) -> None:
        """Turn a worker that ended without ``Stopped`` or ``Failed`` into a crash error."""
        ended = self._ended_workers()
        if not ended.keys() - self._stopped:
            return
        await self._pump(0)  # what it sent before it ended is readable now: don't miss it
        for worker, how in ended.items():
            if worker not in self._stopped and self._failure is None:
                self._failure = WorkerCrashedError(
                    worker, f"{self.name} worker {worker} ended without reporting ({how})"
                )

    def _handle(self, event: WorkerEvent) -> None:
        if isinstance(event, BatchDone):
            self.stats[event.worker].add_batch(event)
            self._in_flight[event.worker] -= 1
            self._advance_checkpoint(event.seq)
            self._record_rejections(event.rejected)
            self.progress.advance(event.written + len(event.rejected))
            self.observer.batch_done(backend=self.name, event=event)
            self.observer.queue_depths(backend=self.name, in_flight=self._in_flight)
        elif isinstance(event, Retried):
            self.stats[event.worker].retries += 1
            self.observer.retried(backend=self.name, worker=event.worker, what=event.what)
        elif isinstance(event, Ready):
            self._ready.add(event.worker)
        elif isinstance(event, Stopped):
            self._stopped.add(event.worker)
        elif isinstance(event, Failed) and self._failure is None:
            self._failure = WorkerError(event.worker, event.message, event.traceback)

    def _advance_checkpoint(self, seq: int) -> None:
        # Batches finish out of order; the checkpoint only moves over an unbroken run.
        self._done_seqs.add(seq)
        while self._watermark + 1 in self._done_seqs:
            self._watermark += 1
            self._done_seqs.remove(self._watermark)
            self.checkpoint = self._tokens.pop(self._watermark)

    def _record_rejections(self, rejected: tuple[tuple[str, str], ...]) -> None:
        log_rejections(rejected)
        room = REJECTION_SAMPLES - len(self.rejected)
        if room > 0:
            self.rejected.extend(rejected[:room])
