"""What each worker did, counted in one place, and how rejections are logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from migrationkit._executors.events import BatchDone

_log = logging.getLogger("migrationkit")

#: How many rejected documents a report lists by id and reason (all are counted and logged).
REJECTION_SAMPLES = 100


@dataclass
class WorkerStats:
    """One worker's share of a run; ``spans`` are (start, end) monotonic times of its batches."""

    worker: int
    batches: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    busy_s: float = 0.0
    retries: int = 0
    spans: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def add_batch(self, event: BatchDone) -> None:
        """Count one committed batch (the one place a batch's numbers are summed)."""
        self.batches += 1
        self.rows_written += event.written
        self.rows_rejected += len(event.rejected)
        self.busy_s += event.finished - event.started
        self.spans.append((event.started, event.finished))

    def merge(self, other: WorkerStats) -> None:
        """Add another share of work done by the same worker (a range run's ranges)."""
        self.batches += other.batches
        self.rows_written += other.rows_written
        self.rows_rejected += other.rows_rejected
        self.busy_s += other.busy_s
        self.retries += other.retries
        self.spans.extend(other.spans)


def log_rejections(rejected: tuple[tuple[str, str], ...]) -> None:
    """Log every rejected document by id and reason: reported, never silently dropped."""
    for mongo_id, reason in rejected:
        _log.warning("rejected document _id=%s: %s", mongo_id, reason)
