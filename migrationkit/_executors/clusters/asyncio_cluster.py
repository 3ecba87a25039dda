"""Workers as asyncio tasks on the caller's event loop: the default, and the cheapest.

All I/O overlaps on one thread; CPU work (validation, COPY encoding) does not.
"""

from __future__ import annotations

import asyncio
import contextlib

from migrationkit._executors.clusters.base import ClusterMigrationBase, Item
from migrationkit._executors.events import WorkerEvent
from migrationkit._executors.worker import run_worker


class ClusterMigrationAsyncio(ClusterMigrationBase):
    """Workers as tasks on the caller's event loop, fed through bounded ``asyncio.Queue``s."""

    name = "asyncio"

    def _start_workers(self) -> None:
        self._events: asyncio.Queue[WorkerEvent] = asyncio.Queue()
        self._inboxes: list[asyncio.Queue[Item | None]] = [
            asyncio.Queue(maxsize=self.queue_depth) for _ in range(self.size)
        ]
        self._tasks = [
            asyncio.create_task(
                run_worker(index, self.job, inbox.get, self._events.put_nowait),
                name=f"migrationkit-worker-{index}",
            )
            for index, inbox in enumerate(self._inboxes)
        ]

    async def _put(self, worker: int, item: Item | None, timeout: float) -> bool:
        inbox = self._inboxes[worker]
        try:
            inbox.put_nowait(item)
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(inbox.put(item), timeout)
            except TimeoutError:
                return False
        return True

    async def _next_event(self, timeout: float) -> WorkerEvent | None:
        try:
            if timeout <= 0:
                return self._events.get_nowait()
            return await asyncio.wait_for(self._events.get(), timeout)
        except (asyncio.QueueEmpty, TimeoutError):
            return None

    def _ended_workers(self) -> dict[int, str]:
        ended = {}
        for index, task in enumerate(self._tasks):
            if task.done():
                ended[index] = "cancelled" if task.cancelled() else "task finished"
        return ended

    async def _terminate(self) -> None:
        for task in getattr(self, "_tasks", []):
            task.cancel()
        await self._join()

    async def _join(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*getattr(self, "_tasks", []), return_exceptions=True)
