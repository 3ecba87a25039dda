"""Range executors: run one task per ``_id`` range on a pool of workers, retrying failures.

They know nothing of the work: a task is a module-level function ``task(job, part)``
that returns a result; the executor only ships ``job`` and ``part`` (anything with an
``index``) to a worker and hands the results back. What a range task does lives in
:mod:`migrationkit._run.range_task`. ``multiprocessing`` (a spawn process pool) is
here; ``dask`` is in :mod:`migrationkit._executors.dask`.

A failed task is run again (``retries``): the coordinator makes that safe (every
write is an upsert on the document key).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from migrationkit._errors import MigrationKitError, WorkerError

log = logging.getLogger(__name__)

#: How many times a failed range task is run again before the migration fails.
DEFAULT_RETRIES = 2


class Part(Protocol):
    """What an executor needs to know of a unit of work: its index, for messages."""

    @property
    def index(self) -> int: ...


#: A module-level function run once per part, wherever the executor runs it.
RangeTask = Callable[[Any, Any], Any]


class RangeFailedError(WorkerError):
    """A range task failed on every attempt; the message carries the task's traceback."""

    def __init__(self, index: int, message: str, remote_traceback: str = "") -> None:
        text = f"range {index} failed: {message}"
        if remote_traceback:
            text += f"\n\nTask traceback:\n{remote_traceback.rstrip()}"
        MigrationKitError.__init__(self, text)
        self.worker = -1  # no single worker: a range may have run on several
        self.range_index, self.message, self.remote_traceback = index, message, remote_traceback

    def __reduce__(self) -> tuple[type[RangeFailedError], tuple[int, str, str]]:
        # Rebuilt from its fields when it crosses a process boundary (Dask, process pools).
        return type(self), (self.range_index, self.message, self.remote_traceback)


class RangeExecutor(ABC):
    """Runs one task per range on ``workers`` workers, and runs a failed task again.

    ``async with executor:`` starts the workers; leaving with an error stops them
    without waiting for the tasks still running.
    """

    name: ClassVar[str]
    #: What reports call a run with this executor.
    label: ClassVar[str]

    def __init__(self, workers: int, *, retries: int = DEFAULT_RETRIES) -> None:
        if workers < 1:
            raise ValueError("an executor needs at least one worker")
        self.workers = workers
        self.retries = retries

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(abort=exc_type is not None)

    @abstractmethod
    async def start(self) -> None:
        """Get the workers ready (or connect to them)."""

    @abstractmethod
    async def run(
        self,
        task: RangeTask,
        job: Any,
        ranges: Sequence[Part],
        on_result: Callable[[Any], None],
    ) -> list[Any]:
        """Run ``task(job, part)`` for every range; ``on_result`` hears each as it finishes.

        Raises :class:`RangeFailedError` once a range has failed ``retries + 1`` times.
        """

    @abstractmethod
    async def close(self, *, abort: bool = False) -> None:
        """Stop the workers; with ``abort``, without waiting for running tasks."""


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when children stop


class ProcessRangeExecutor(RangeExecutor):
    """Range tasks in a pool of spawned processes on this machine.

    A process that dies (even by ``SIGKILL``) breaks the pool: every range that was
    unfinished counts one failed attempt, and a new pool runs them again.
    """

    name = "multiprocessing"
    label = "mp-ranges"

    def __init__(self, workers: int, *, retries: int = DEFAULT_RETRIES) -> None:
        super().__init__(workers, retries=retries)
        self._pool: ProcessPoolExecutor | None = None

    async def start(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            # Spawned, not forked from the clusters' fork server: a range task may read its
            # endpoints from the worker's environment (``secrets_from_worker_env``), which
            # must be the parent's of now, not the fork server's of when it started.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_sigint,
        )

    async def run(
        self,
        task: RangeTask,
        job: Any,
        ranges: Sequence[Part],
        on_result: Callable[[Any], None],
    ) -> list[Any]:
        failures: Counter[int] = Counter()
        results: list[Any] = []
        waiting = list(ranges)
        while waiting:
            running: dict[asyncio.Future[Any], Part] = {}
            waiting = [part for part in waiting if not self._submit(task, job, part, running)]
            for part in waiting:  # the new pool broke before they started: still an attempt
                self._failed(RangeFailedError(part.index, "the process pool broke"), failures)
            try:
                while running:
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for future in done:
                        part = running.pop(future)
                        error = _failure(future, part)
                        if error is None:
                            results.append(future.result())
                            on_result(results[-1])
                            continue
                        self._failed(error, failures)
                        if not self._submit(task, job, part, running):
                            waiting.append(part)  # the pool broke: after it is replaced
            finally:
                for future in running:  # we are failing: nobody will read these
                    future.cancel()
            if waiting:
                await self.close(abort=True)
                await self.start()
        return results

    def _failed(self, error: RangeFailedError, failures: Counter[int]) -> None:
        """Count a failed attempt; raise ``error`` once the range is out of retries."""
        failures[error.range_index] += 1
        if failures[error.range_index] > self.retries:
            raise error
        log.warning("%s; running it again", str(error).splitlines()[0])

    def _submit(
        self,
        task: RangeTask,
        job: Any,
        part: Part,
        running: dict[asyncio.Future[Any], Part],
    ) -> bool:
        """Start ``part`` in the pool; ``False`` if the pool is broken (a process died)."""
        assert self._pool is not None, "start the executor first"
        try:
            running[asyncio.wrap_future(self._pool.submit(task, job, part))] = part
        except BrokenProcessPool:
            return False
        return True

    async def close(self, *, abort: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abort:
            # No public way to stop a running task before Python 3.14's
            # terminate_workers(); the pool keeps its processes in _processes.
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=abort)


def _failure(future: asyncio.Future[Any], part: Part) -> RangeFailedError | None:
    """The task's error as a :class:`RangeFailedError`, or ``None`` if it succeeded."""
    exc = future.exception()
    if exc is None or isinstance(exc, RangeFailedError):
        return exc
    if isinstance(exc, BrokenProcessPool):
        message = "its worker process died (killed, or out of memory)"
    else:
        message = f"{type(exc).__name__}: {exc}"
    error = RangeFailedError(part.index, message)
    error.__cause__ = exc
    return error
