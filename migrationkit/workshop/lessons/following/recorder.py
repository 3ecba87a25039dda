"""The follower's reports on one clock, and each change's delay from its write to PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from migrationkit._run.follow import FollowStatus
from migrationkit.workshop.lessons.following.lesson import Clock


@dataclass(frozen=True)
class FollowSample:
    """The follower's :class:`FollowStatus` just after one batch was committed."""

    at: float
    applied: int
    written: int
    deleted: int
    reread: int
    rejected: int
    batches: int
    lag_s: float

    @classmethod
    def of(cls, status: FollowStatus, at: float) -> FollowSample:
        return cls(
            at=at,
            applied=status.events_applied,
            written=status.documents_written,
            deleted=status.documents_deleted,
            reread=status.documents_reread,
            rejected=status.documents_rejected,
            batches=status.batches,
            lag_s=status.lag_s,
        )


class FollowRecorder:
    """The follower's reports on one clock: the load (a Progress) and every batch after it.

    Pass it as ``progress=`` and ``on_follow_batch=`` of a :class:`Migration`;
    ``listeners`` are called after each report (a live widget redraws there).
    """

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self.clock = clock
        self.created = clock()
        self.samples: list[FollowSample] = []
        self.status: FollowStatus | None = None
        self.total: int | None = None
        self.loaded = 0
        self.load_started: float | None = None
        self.load_ended: float | None = None
        self.listeners: list[Callable[[], None]] = []
        self.reported = asyncio.Event()

    # Progress: the full load
    def start(self, total: int | None, description: str) -> None:
        self.total, self.load_started = total, self.clock()
        self._told()

    def advance(self, count: int) -> None:
        self.loaded += count
        self._told()

    def close(self) -> None:
        self.load_ended = self.clock()
        self._told()

    # on_follow_batch: every batch after it
    def __call__(self, status: FollowStatus) -> None:
        self.status = status
        self.samples.append(FollowSample.of(status, self.clock()))
        self._told()

    def _told(self) -> None:
        self.reported.set()
        for listener in self.listeners:
            listener()

    @property
    def following(self) -> bool:
        return self.status is not None


def change_delays(
    acked: Sequence[float], samples: Sequence[FollowSample], *, first_event: int = 0
) -> list[tuple[float, float]]:
    """(written at, delay) of every write a sample shows applied, in write order.

    ``acked[j]`` is when the write that became change ``first_event + j`` (0-based,
    counted as ``FollowStatus.events_applied`` counts) was acknowledged; it is applied
    at the first sample whose ``applied`` exceeds its number. Writes no sample covers
    yet are left out.
    """
    delays: list[tuple[float, float]] = []
    ordered = sorted(samples, key=lambda sample: sample.at)
    position = 0
    for offset, written_at in enumerate(acked):
        number = first_event + offset
        while position < len(ordered) and ordered[position].applied <= number:
            position += 1
        if position == len(ordered):
            break
        delays.append((written_at, max(ordered[position].at - written_at, 0.0)))
    return delays


def applied_at(
    acked: Sequence[float], samples: Sequence[FollowSample], *, moment: float, first_event: int = 0
) -> float | None:
    """When every write acknowledged by ``moment`` was applied (``None``: not yet)."""
    needed = first_event + sum(1 for written in acked if written <= moment)
    return next((s.at for s in sorted(samples, key=lambda s: s.at) if s.applied >= needed), None)


def commit_interval(samples: Sequence[FollowSample]) -> float | None:
    """The median time between two batches that applied changes (``None``: fewer than two)."""
    applied = [
        later.at
        for earlier, later in itertools.pairwise(samples)
        if later.applied > earlier.applied
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(applied)]
    return statistics.median(gaps) if gaps else None


def since(samples: Sequence[FollowSample], start: float) -> list[FollowSample]:
    return [sample for sample in samples if sample.at >= start]
