"""What a benchmark run measured, the targets it is judged against, and how it prints.

Every ratio is computed here from the rates it relates, never stored on its own,
so the JSON file and the table cannot disagree with the numbers they show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Rate:
    """``rows`` moved in ``seconds`` (the best of ``trials``, all of which are kept)."""

    rows: int
    seconds: float
    trials: list[float] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def best(cls, rows: int, trials: list[float]) -> Rate:
        return cls(rows, min(trials), list(trials))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "seconds": round(self.seconds, 4),
            "trials": [round(trial, 4) for trial in self.trials],
            "rows_per_s": round(self.rows_per_s, 1),
        }


@dataclass
class Limits:
    """What the servers can do with nothing of ours in the way."""

    source_reads: dict[str, Rate]  # one plain cursor per read order (see limits.READ_ORDERS)
    sink_copy: Rate  # one copy_records_to_table of pre-built rows, one connection

    @property
    def source_read(self) -> Rate:
        """The reference: ``find({})`` in whatever order the server likes, nothing else."""
        return self.source_reads["natural"]


@dataclass
class SweepPoint:
    """One end-to-end ``migrate()`` run."""

    backend: str
    workers: int
    batch_size: int
    rate: Rate


def best_per_backend(points: Sequence[SweepPoint]) -> dict[str, SweepPoint]:
    """The fastest point of each backend, in the order the backends were swept."""
    best: dict[str, SweepPoint] = {}
    for point in points:
        current = best.get(point.backend)
        if current is None or point.rate.rows_per_s > current.rate.rows_per_s:
            best[point.backend] = point
    return best


@dataclass
class PageTime:
    """One skip/limit page of the original's pager: how far it skipped, how long it took."""

    skip: int
    seconds: float


@dataclass
class Original:
    """The seed project's approach: skip/limit pages dealt round-robin to writers."""

    backend: str
    workers: int
    batch_size: int
    rows_total: int
    rows_measured: int
    seconds_measured: float
    seconds_total: float  # == seconds_measured unless extrapolated
    pages: list[PageTime]
    page_intercept_s: float  # least-squares fit: page time = intercept + slope * skip
    page_slope_s_per_row: float
    page_fit_r2: float

    @property
    def extrapolated(self) -> bool:
        return self.rows_measured < self.rows_total

    @property
    def rows_per_s(self) -> float:
        return self.rows_total / self.seconds_total if self.seconds_total > 0 else 0.0


@dataclass
class ScalingPoint:
    """One migration in a fresh child process, with the memory its process tree held."""

    count: int
    seconds: float  # the best of the trials
    peak_rss_bytes: int  # sampled peak of the summed RSS of the child and its workers (max)
    hwm_bytes: int  # kernel high-water marks (VmHWM) of those processes, summed (max)
    processes: int
    trials: list[float] = field(default_factory=list)

    @classmethod
    def combine(cls, runs: Sequence[ScalingPoint]) -> ScalingPoint:
        """The fastest time and the largest memory of several runs of the same migration."""
        return cls(
            count=runs[0].count,
            seconds=min(run.seconds for run in runs),
            peak_rss_bytes=max(run.peak_rss_bytes for run in runs),
            hwm_bytes=max(run.hwm_bytes for run in runs),
            processes=max(run.processes for run in runs),
            trials=[round(run.seconds, 4) for run in runs],
        )


@dataclass
class Scaling:
    """The best configuration at N and ``factor`` x N; the source's raw read at both sizes."""

    backend: str
    workers: int
    batch_size: int
    factor: int
    small: ScalingPoint
    large: ScalingPoint
    large_skip_limit_page: PageTime  # one page of the original's pager at the end of kN
    source_small: Rate  # raw find({}) of the N collection
    source_large: Rate  # raw find({}) of the kN collection

    @property
    def source_time_ratio(self) -> float:
        """How the source alone scales: a floor under ``time_ratio``."""
        return self.source_large.seconds / self.source_small.seconds

    @property
    def original_projected_s(self) -> float:
        """The original's pager alone at kN, if every page cost what its last one did."""
        pages = -(-self.large.count // self.batch_size)
        return pages * self.large_skip_limit_page.seconds

    @property
    def time_ratio(self) -> float:
        return self.large.seconds / self.small.seconds

    @property
    def rss_ratio(self) -> float:
        return self.large.peak_rss_bytes / self.small.peak_rss_bytes


@dataclass
class Target:
    """One goal: ``measured`` must be at least ``threshold`` (or at most, if ``at_most``)."""

    name: str
    measured: float
    threshold: float
    at_most: bool = False

    @property
    def passed(self) -> bool:
        if self.at_most:
            return self.measured <= self.threshold
        return self.measured >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": round(self.measured, 3),
            "threshold": round(self.threshold, 3),
            "comparison": "<=" if self.at_most else ">=",
            "passed": self.passed,
        }


@dataclass
class BenchmarkReport:
    """Everything one ``run_benchmark`` measured; ``to_dict()`` is the JSON file."""

    count: int
    machine: dict[str, Any]
    config: dict[str, Any]
    limits: Limits
    sweep: list[SweepPoint]  # one run per configuration: only used to choose
    backends: dict[str, SweepPoint]  # each backend's chosen configuration, re-measured
    rounds: list[dict[str, float]]  # rows/s per round: "source_read" then each backend
    original: Original
    writers: dict[str, Rate]
    writer_batch_size: int
    sink_copy_batched: Rate  # raw COPY again, in the writers' batches: the per-call cost
    scaling: Scaling
    transform: dict[str, SweepPoint]
    transform_name: str

    def best_per_backend(self) -> dict[str, SweepPoint]:
        return self.backends

    def best(self) -> SweepPoint:
        return max(self.best_per_backend().values(), key=lambda p: p.rate.rows_per_s)

    def read_ratio(self, point: SweepPoint) -> float:
        """The target's ratio: against the best raw read of the whole run (the strictest)."""
        return point.rate.rows_per_s / self.limits.source_read.rows_per_s

    def paired_read_ratio(self, backend: str) -> float:
        """Diagnostic: the best ratio to the raw read measured in the same round."""
        return max(r[backend] / r["source_read"] for r in self.rounds if backend in r)

    @property
    def speedup_over_original(self) -> float:
        return self.best().rate.rows_per_s / self.original.rows_per_s

    @property
    def transform_mp_over_asyncio(self) -> float:
        return (
            self.transform["multiprocessing"].rate.rows_per_s
            / self.transform["asyncio"].rate.rows_per_s
        )

    @property
    def copy_writer_ratio(self) -> float:
        return self.writers["copy"].rows_per_s / self.limits.sink_copy.rows_per_s

    def targets(self) -> list[Target]:
        factor = self.scaling.factor
        targets = [Target("best backend / source raw read", self.read_ratio(self.best()), 0.9)]
        targets += [
            Target(f"{backend} / source raw read", self.read_ratio(point), 0.75)
            for backend, point in self.best_per_backend().items()
        ]
        targets += [
            Target(
                f"speed-up over the original (N={self.count:,})", self.speedup_over_original, 10
            ),
            Target(f"time {factor}N / time N", self.scaling.time_ratio, 1.1 * factor, at_most=True),
            Target(f"peak RSS {factor}N / peak RSS N", self.scaling.rss_ratio, 1.3, at_most=True),
            Target("CPU-heavy: multiprocessing / asyncio", self.transform_mp_over_asyncio, 1.5),
            Target("COPY writer / raw asyncpg COPY", self.copy_writer_ratio, 0.9),
        ]
        return targets

    def to_dict(self) -> dict[str, Any]:
        point = _point_dict
        return {
            "count": self.count,
            "machine": self.machine,
            "config": self.config,
            "limits": {
                "source_read": self.limits.source_read.to_dict(),
                "source_reads": {
                    order: rate.to_dict()
                    | {
                        "ratio_to_source_read": round(
                            rate.rows_per_s / self.limits.source_read.rows_per_s, 4
                        )
                    }
                    for order, rate in self.limits.source_reads.items()
                },
                "sink_copy": self.limits.sink_copy.to_dict(),
            },
            "sweep": [point(p) for p in self.sweep],
            "backends": {
                backend: point(p)
                | {
                    "ratio_to_source_read": round(self.read_ratio(p), 4),
                    "paired_ratio_to_source_read": round(self.paired_read_ratio(backend), 4),
                }
                for backend, p in self.best_per_backend().items()
            },
            "rounds": [{k: round(v, 1) for k, v in r.items()} for r in self.rounds],
            "original": _original_dict(self.original)
            | {"speedup": round(self.speedup_over_original, 3)},
            "writers": {
                "batch_size": self.writer_batch_size,
                "rates": {name: rate.to_dict() for name, rate in self.writers.items()},
                "ratio_to_copy": {
                    name: round(rate.rows_per_s / self.writers["copy"].rows_per_s, 4)
                    for name, rate in self.writers.items()
                },
                "copy_ratio_to_raw_copy": round(self.copy_writer_ratio, 4),
                "raw_copy_batched": self.sink_copy_batched.to_dict(),
                "copy_ratio_to_raw_copy_batched": round(
                    self.writers["copy"].rows_per_s / self.sink_copy_batched.rows_per_s, 4
                ),
            },
            "scaling": asdict(self.scaling)
            | {
                "source_small": self.scaling.source_small.to_dict(),
                "source_large": self.scaling.source_large.to_dict(),
                "source_time_ratio": round(self.scaling.source_time_ratio, 4),
                "time_ratio": round(self.scaling.time_ratio, 4),
                "rss_ratio": round(self.scaling.rss_ratio, 4),
                "original_projected_s": round(self.scaling.original_projected_s, 1),
            },
            "transform": {
                "name": self.transform_name,
                "backends": {backend: point(p) for backend, p in self.transform.items()},
                "multiprocessing_over_asyncio": round(self.transform_mp_over_asyncio, 4),
            },
            "targets": [target.to_dict() for target in self.targets()],
        }


def _point_dict(point: SweepPoint) -> dict[str, Any]:
    return {
        "backend": point.backend,
        "workers": point.workers,
        "batch_size": point.batch_size,
        **point.rate.to_dict(),
    }


def _original_dict(original: Original) -> dict[str, Any]:
    data = asdict(original)
    data["pages"] = [[page.skip, round(page.seconds, 4)] for page in original.pages]
    data["extrapolated"] = original.extrapolated
    data["rows_per_s"] = round(original.rows_per_s, 1)
    return data
