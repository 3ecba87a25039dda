"""What the nested benchmark measured, the targets of issue #13 it is judged by, and its table.

Every step runs once per round, the steps taking turns within a round, and the
median of the rounds counts. Two times are kept for a ``migrate()`` run: the
report's ``elapsed_s`` (workers started to last batch written: what the ratio to
the raw read uses, as ``migrationkit bench`` does) and the whole call (target
tables prepared and checked too: what the ratio to dlt uses, since dlt's
``pipeline.run`` also creates and checks its tables). Ratios are computed from
the figures they relate, never stored on their own: a ratio between two steps is
the median of the rounds' ratios (the steps of one round ran minutes apart at
most), so a busy spell on a shared machine weighs on both sides of it.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from migrationkit.workshop.bench.report import Original, ScalingPoint, Target

#: Thresholds of issue #13 item 8; the users figures are that issue's "today".
NESTED_READ_RATIO = 0.7
NESTED_DLT_RATIO = 5.0
RSS_RATIO = 1.3
USERS_READ_RATIO = 0.72
USERS_ORIGINAL_RATIO = 11.0
USERS_DLT_RATIO = 3.2


@dataclass
class Timing:
    """``rows`` moved once per round: each round's seconds, and the whole call's if longer."""

    rows: int
    trials: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)  # empty: the same as ``trials``

    def add(self, seconds: float, whole: float | None = None) -> None:
        self.trials.append(seconds)
        if whole is not None:
            self.whole.append(whole)

    @property
    def seconds(self) -> float:
        return statistics.median(self.trials)

    @property
    def whole_s(self) -> float:
        return statistics.median(self.whole or self.trials)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def whole_rows_per_s(self) -> float:
        return self.rows / self.whole_s if self.whole_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "seconds": round(self.seconds, 4),
            "trials": [round(t, 4) for t in self.trials],
            "rows_per_s": round(self.rows_per_s, 1),
            "whole_s": round(self.whole_s, 4),
            "whole_trials": [round(t, 4) for t in self.whole],
        }


@dataclass
class Shape:
    """How many tables and columns a run wrote (key and bookkeeping columns included)."""

    tables: int
    columns: int
    peak_rss_bytes: int = 0  # for a run in a child process: its tree's sampled peak


@dataclass
class Section:
    """One collection's steps: the raw read first, then the runs compared with it."""

    name: str  # "nested" or "users"
    collection: str
    count: int
    batch_size: int
    read: Timing
    runs: dict[str, Timing]  # label -> timing, in the order measured
    shapes: dict[str, Shape]  # label -> tables and columns written
    best: str  # the label of the migrationkit run the targets use
    dlt: str | None = None  # the label of the dlt run, if it ran

    def read_ratio(self, label: str) -> float:
        """Rows/s over the raw read's: the median of the rounds' ratios (each round's pair
        was measured minutes apart at most, so a busy spell hits both)."""
        run = self.runs[label]
        return paired_median(
            [run.rows * t for t in self.read.trials], [self.read.rows * t for t in run.trials]
        )

    def dlt_ratio(self, label: str) -> float | None:
        """How many times faster than dlt, whole run against whole run, paired by round."""
        if self.dlt is None:
            return None
        run, dlt = self.runs[label], self.runs[self.dlt]
        return paired_median(
            [run.rows * t for t in dlt.whole or dlt.trials],
            [dlt.rows * t for t in run.whole or run.trials],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "collection": self.collection,
            "count": self.count,
            "batch_size": self.batch_size,
            "best": self.best,
            "dlt": self.dlt,
            "source_read": self.read.to_dict(),
            "runs": {
                label: timing.to_dict()
                | {
                    "ratio_to_source_read": round(self.read_ratio(label), 4),
                    "ratio_to_dlt": _rounded(self.dlt_ratio(label)),
                }
                | ({"shape": asdict(self.shapes[label])} if label in self.shapes else {})
                for label, timing in self.runs.items()
            },
        }


@dataclass
class Memory:
    """The jsonb mapping at N and ``factor`` x N, each in a fresh child process."""

    backend: str
    factor: int
    small: ScalingPoint
    large: ScalingPoint

    @property
    def rss_ratio(self) -> float:
        return self.large.peak_rss_bytes / self.small.peak_rss_bytes

    @property
    def time_ratio(self) -> float:
        return self.large.seconds / self.small.seconds


@dataclass
class NestedReport:
    """Everything one ``run_nested_benchmark`` measured; ``to_dict()`` is the JSON file."""

    machine: dict[str, Any]
    config: dict[str, Any]
    nested: Section
    users: Section
    memory: Memory
    original: Original
    rounds: list[dict[str, float]]  # rows/s of every step, per round
    skipped: dict[str, str] = field(default_factory=dict)  # what did not run, and why

    @property
    def original_ratio(self) -> float:
        return self.users.runs[self.users.best].rows_per_s / self.original.rows_per_s

    def targets(self) -> list[Target]:
        nested, users = self.nested, self.users
        targets = [
            Target(f"nested {nested.best} / source raw read", nested.read_ratio(nested.best),
                   NESTED_READ_RATIO),
        ]  # fmt: skip
        if (ratio := nested.dlt_ratio(nested.best)) is not None:
            targets.append(Target(f"nested {nested.best} / dlt", ratio, NESTED_DLT_RATIO))
        targets += [
            Target(f"peak RSS {self.memory.factor}N / peak RSS N", self.memory.rss_ratio,
                   RSS_RATIO, at_most=True),
            Target(f"users {users.best} / source raw read", users.read_ratio(users.best),
                   USERS_READ_RATIO),
            Target(f"users {users.best} / the original", self.original_ratio,
                   USERS_ORIGINAL_RATIO),
        ]  # fmt: skip
        if (ratio := users.dlt_ratio(users.best)) is not None:
            targets.append(Target(f"users {users.best} / dlt", ratio, USERS_DLT_RATIO))
        return targets

    def unjudged(self) -> dict[str, str]:
        """Targets that could not be judged, with the reason (dlt did not run)."""
        missing = {}
        for section, threshold in ((self.nested, NESTED_DLT_RATIO), (self.users, USERS_DLT_RATIO)):
            if section.dlt is None:
                name = f"{section.name} {section.best} / dlt"
                reason = self.skipped.get(f"{section.name} dlt", "dlt did not run")
                missing[f"{name} >= {threshold:g}"] = reason
        return missing

    def to_dict(self) -> dict[str, Any]:
        memory = self.memory
        return {
            "machine": self.machine,
            "config": self.config,
            "nested": self.nested.to_dict(),
            "memory": {
                "backend": memory.backend,
                "factor": memory.factor,
                "small": asdict(memory.small),
                "large": asdict(memory.large),
                "rss_ratio": round(memory.rss_ratio, 4),
                "time_ratio": round(memory.time_ratio, 4),
            },
            "users": self.users.to_dict(),
            "original": asdict(self.original)
            | {
                "pages": [[page.skip, round(page.seconds, 4)] for page in self.original.pages],
                "extrapolated": self.original.extrapolated,
                "rows_per_s": round(self.original.rows_per_s, 1),
                "speedup": round(self.original_ratio, 3),
            },
            "rounds": [{k: round(v, 1) for k, v in r.items()} for r in self.rounds],
            "skipped": self.skipped,
            "targets": [target.to_dict() for target in self.targets()],
            "unjudged": self.unjudged(),
        }


def paired_median(numerators: list[float], denominators: list[float]) -> float:
    """The median of ``numerators[i] / denominators[i]``: ratios within each round."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
