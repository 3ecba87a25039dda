"""Workers as processes: real parallelism for CPU-heavy transforms, at a price.

Every batch is pickled to a child. The children are forked from a fork server that
has imported the kit once (:mod:`migrationkit._executors.processes`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from typing import Any

from migrationkit._executors.clusters.blocking import BlockingQueueCluster
from migrationkit._executors.processes import (
    ParentStreams,
    run_with_parent_streams,
    worker_processes,
)

#: Grace period between SIGTERM and SIGKILL when a run is aborted.
PROCESS_STOP_TIMEOUT_S = 5.0


def describe_exit(exitcode: int | None) -> str:
    """Say how a process ended: "exit code 1" or "killed by SIGKILL"."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class ClusterMigrationMultiprocessing(BlockingQueueCluster):
    """Workers as processes fed raw BSON through ``multiprocessing`` queues."""

    name = "multiprocessing"
    # Raw BSON pickles as plain bytes; decoding moves from the parent to the children.
    reads_raw_bson = True

    def _new_queue(self, maxsize: int) -> Any:
        return self._context.Queue(maxsize)

    def _start_workers(self) -> None:
        self._context = worker_processes()
        super()._start_workers()

    def _spawn(self, index: int, inbox: Any, events: Any) -> multiprocessing.process.BaseProcess:
        process = self._context.Process(
            target=run_with_parent_streams,
            args=(ParentStreams(), self._target, index, self.job, inbox, events),
            name=f"migrationkit-worker-{index}",
            daemon=True,
        )
        process.start()
        return process

    def _ended_workers(self) -> dict[int, str]:
        return {
            index: describe_exit(process.exitcode)
            for index, process in enumerate(self._workers)
            if not process.is_alive()
        }

    async def _terminate(self) -> None:
        for process in getattr(self, "_workers", []):
            if process.is_alive():
                process.terminate()
        for process in getattr(self, "_workers", []):
            await asyncio.to_thread(process.join, PROCESS_STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join)
        self._release_queues()

    async def _join(self) -> None:
        for process in self._workers:
            await asyncio.to_thread(process.join)
        self._release_queues()

    def _release_queues(self) -> None:
        # A queue whose reader died may hold unsent data; without this the
        # interpreter would wait for its feeder thread forever at exit.
        for channel in [*getattr(self, "_inboxes", []), getattr(self, "_events", None)]:
            if channel is not None:
                channel.cancel_join_thread()
                channel.close()
