"""Observers: told what a migration does, as it does it (metrics exporters implement one).

Library code reports to an :class:`Observer`; by default nobody listens
(:class:`NullObserver`). Calls come from the coordinator's event loop, never from
worker threads or processes: workers send events, the cluster turns them into calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from migrationkit._executors.events import BatchDone
    from migrationkit._run.report import MigrationReport


class Observer(Protocol):
    """Hears what a run does (batches read and done, queues, retries): metrics, widgets."""

    def run_started(self, *, backend: str, workers: int, total: int | None) -> None: ...

    def batch_read(self, *, backend: str, rows: int, seconds: float) -> None: ...

    def batch_done(self, *, backend: str, event: BatchDone) -> None: ...

    def retried(self, *, backend: str, worker: int, what: str) -> None: ...

    def queue_depths(self, *, backend: str, in_flight: Sequence[int]) -> None: ...

    def run_finished(self, report: MigrationReport) -> None: ...

    def following(self, *, applied: int, lag_s: float, waiting: int) -> None:
        """After each batch a follower read: changes applied, seconds behind, events waiting."""


class NullObserver:
    """Listens to nothing."""

    def run_started(self, *, backend: str, workers: int, total: int | None) -> None:
        pass

    def batch_read(self, *, backend: str, rows: int, seconds: float) -> None:
        pass

    def batch_done(self, *, backend: str, event: BatchDone) -> None:
        pass

    def retried(self, *, backend: str, worker: int, what: str) -> None:
        pass

    def queue_depths(self, *, backend: str, in_flight: Sequence[int]) -> None:
        pass

    def run_finished(self, report: MigrationReport) -> None:
        pass

    def following(self, *, applied: int, lag_s: float, waiting: int) -> None:
        pass
