"""What each worker did, counted in one place, and how rejections are logged."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from migrationkit._executors.events import BatchDone

_log = logging.getLogger("migrationkit")

#: How many rejected documents a report lists by id and reason (all are counted).
REJECTION_SAMPLES = 100
#: How many ``_id``s a report keeps for each reason documents were set aside for.
IDS_PER_REASON = 3

_GOT = re.compile(r" \(got [^;]*\)")


def reason_kind(reason: str) -> str:
    """A rejection's reason without the value it quotes: what documents are grouped by."""
    return _GOT.sub("", reason)


@dataclass
class RejectionGroup:
    """Documents set aside for one reason: how many, and the first few ``_id``s."""

    count: int = 0
    ids: list[str] = field(default_factory=list)

    def add(self, count: int, ids: list[str]) -> None:
        self.count += count
        self.ids.extend(ids[: IDS_PER_REASON - len(self.ids)])


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
    #: Field path → documents: what the mapping dropped, and what went to the catch-all.
    fields_dropped: Counter[str] = field(default_factory=Counter)
    fields_kept_aside: Counter[str] = field(default_factory=Counter)
    #: Reason (without the value it quotes) → the documents set aside for it.
    rejection_groups: dict[str, RejectionGroup] = field(default_factory=dict)

    def add_batch(self, event: BatchDone) -> None:
        """Count one committed batch (the one place a batch's numbers are summed)."""
        self.batches += 1
        self.rows_written += event.written
        self.rows_rejected += len(event.rejected)
        self.busy_s += event.finished - event.started
        self.spans.append((event.started, event.finished))
        self.fields_dropped.update(dict(event.dropped))
        self.fields_kept_aside.update(dict(event.kept_aside))
        for mongo_id, reason in event.rejected:
            self.rejection_groups.setdefault(reason_kind(reason), RejectionGroup()).add(
                1, [mongo_id]
            )

    def merge(self, other: WorkerStats) -> None:
        """Add another share of work done by the same worker (a range run's ranges)."""
        self.batches += other.batches
        self.rows_written += other.rows_written
        self.rows_rejected += other.rows_rejected
        self.busy_s += other.busy_s
        self.retries += other.retries
        self.spans.extend(other.spans)
        self.fields_dropped.update(other.fields_dropped)
        self.fields_kept_aside.update(other.fields_kept_aside)
        for reason, group in other.rejection_groups.items():
            self.rejection_groups.setdefault(reason, RejectionGroup()).add(group.count, group.ids)


def log_rejections(rejected: tuple[tuple[str, str], ...]) -> None:
    """Log each rejected document at DEBUG; the run's summary groups them by reason."""
    for mongo_id, reason in rejected:
        _log.debug("rejected document _id=%s: %s", mongo_id, reason)
