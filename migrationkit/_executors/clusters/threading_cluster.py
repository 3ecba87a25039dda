"""Workers as threads, each with its own event loop and connection.

Threads overlap I/O well, but Python code (validation, encoding) still takes
turns on the GIL, so CPU-heavy transforms do not speed up.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

from migrationkit._executors.clusters.blocking import BlockingQueueCluster

#: How long to wait for a thread to finish its current batch after a failure.
THREAD_STOP_TIMEOUT_S = 10.0


class ClusterMigrationThreading(BlockingQueueCluster):
    """Workers as threads, each running its own event loop, fed through ``queue.Queue``s."""

    name = "threading"

    def _new_queue(self, maxsize: int) -> Any:
        return queue.Queue(maxsize)

    def _spawn(self, index: int, inbox: Any, events: Any) -> threading.Thread:
        thread = threading.Thread(
            target=self._target,
            args=(index, self.job, inbox, events),
            name=f"migrationkit-worker-{index}",
            daemon=True,  # never keep the interpreter alive for a stuck driver call
        )
        thread.start()
        return thread

    def _ended_workers(self) -> dict[int, str]:
        return {i: "thread ended" for i, t in enumerate(self._workers) if not t.is_alive()}

    async def _terminate(self) -> None:
        # Threads cannot be killed: empty their inboxes so they stop after the
        # batch in hand, which their own transaction writes whole or not at all.
        self._drain_inboxes_and_stop()
        await self._join()

    async def _join(self) -> None:
        for thread in getattr(self, "_workers", []):
            await asyncio.to_thread(thread.join, THREAD_STOP_TIMEOUT_S)
