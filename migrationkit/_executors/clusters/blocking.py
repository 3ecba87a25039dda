"""What the thread and process backends share: blocking queues read by their own loops."""

from __future__ import annotations

import asyncio
import contextlib
import queue
from abc import abstractmethod
from typing import Any

from migrationkit._executors.clusters.base import ClusterMigrationBase, Item
from migrationkit._executors.events import STOP, WorkerEvent
from migrationkit._executors.worker import blocking_worker_main


class BlockingQueueCluster(ClusterMigrationBase):
    """Workers that each run :func:`blocking_worker_main` and talk over blocking queues."""

    @abstractmethod
    def _new_queue(self, maxsize: int) -> Any:
        """A ``queue.Queue``-like object the workers can reach."""

    @abstractmethod
    def _spawn(self, index: int, inbox: Any, events: Any) -> Any:
        """Start one worker running ``blocking_worker_main(index, job, inbox, events)``."""

    def _start_workers(self) -> None:
        self._events = self._new_queue(0)
        self._inboxes = [self._new_queue(self.queue_depth) for _ in range(self.size)]
        self._workers = [
            self._spawn(index, inbox, self._events) for index, inbox in enumerate(self._inboxes)
        ]

    _target = staticmethod(blocking_worker_main)

    async def _put(self, worker: int, item: Item | None, timeout: float) -> bool:
        inbox = self._inboxes[worker]
        try:
            inbox.put_nowait(item)
        except queue.Full:
            try:
                await asyncio.to_thread(inbox.put, item, True, timeout)
            except queue.Full:
                return False
        return True

    async def _next_event(self, timeout: float) -> WorkerEvent | None:
        try:
            if timeout <= 0:
                event: WorkerEvent = self._events.get_nowait()
            else:
                event = await asyncio.to_thread(self._events.get, True, timeout)
        except queue.Empty:
            return None
        return event

    def _drain_inboxes_and_stop(self) -> None:
        """Empty every inbox and leave one ``STOP`` in it, without ever blocking."""
        for inbox in getattr(self, "_inboxes", []):
            try:
                while True:
                    inbox.get_nowait()
            except queue.Empty:
                pass
            with contextlib.suppress(queue.Full):  # only we put; workers only take
                inbox.put_nowait(STOP)
