"""What a migration reports: totals, speed and what each worker did."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from migrationkit._executors.stats import RejectionGroup, WorkerStats


@dataclass
class MigrationReport:
    """The outcome of one migration; ``to_dict()`` is what ``migrate --json`` prints."""

    backend: str
    workers: int
    writer: str
    batch_size: int
    rows_read: int
    rows_written: int
    rows_rejected: int
    elapsed_s: float
    per_worker: list[WorkerStats]
    rejected_samples: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""
    target: str = ""
    resumed_after: str | None = None  # the checkpoint's _id when this run resumed
    collection: str = ""  # the source collection, and the table it went to
    table: str = ""

    @property
    def fields_dropped(self) -> dict[str, int]:
        """Field path → documents whose value the mapping dropped (never in silence)."""
        return dict(sum((w.fields_dropped for w in self.per_worker), Counter()))

    def rejections_by_reason(self) -> list[tuple[str, int, list[str]]]:
        """``(reason, documents, first _ids)`` for every reason, the most common first."""
        groups: dict[str, RejectionGroup] = {}
        for worker in self.per_worker:
            for reason, group in worker.rejection_groups.items():
                groups.setdefault(reason, RejectionGroup()).add(group.count, group.ids)
        ranked = sorted(groups.items(), key=lambda item: (-item[1].count, item[0]))
        return [(reason, group.count, group.ids) for reason, group in ranked]

    @property
    def fields_kept_aside(self) -> dict[str, int]:
        """Field path → documents whose value went to the catch-all: its type did not fit."""
        return dict(sum((w.fields_kept_aside for w in self.per_worker), Counter()))

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self, *, include_spans: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["rows_per_s"] = round(self.rows_per_s, 1)
        data["fields_dropped"] = self.fields_dropped
        data["fields_kept_aside"] = self.fields_kept_aside
        data["rejections_by_reason"] = [
            {"reason": reason, "documents": count, "ids": ids}
            for reason, count, ids in self.rejections_by_reason()
        ]
        data["elapsed_s"] = round(self.elapsed_s, 3)
        for worker, stats in zip(data["per_worker"], self.per_worker, strict=True):
            worker["busy_s"] = round(worker["busy_s"], 3)
            # asdict() rebuilds a Counter from (key, count) pairs, counting the pairs.
            worker["fields_dropped"] = dict(stats.fields_dropped)
            worker["fields_kept_aside"] = dict(stats.fields_kept_aside)
            del worker["rejection_groups"]  # the report's rejections_by_reason has them
            if not include_spans:
                del worker["spans"]
        data["rejected_samples"] = [
            {"mongo_id": mongo_id, "reason": reason} for mongo_id, reason in self.rejected_samples
        ]
        return data


def format_reports(reports: Sequence[MigrationReport], *, by_collection: bool = False) -> str:
    """The table ``migrationkit migrate`` and ``demo`` print: one line per run.

    ``by_collection`` (several collections in one command) names each run's collection
    and table first, and ends with the totals.
    """
    first = "collection -> table" if by_collection else "backend"
    width = max([16, *(len(_first(r, by_collection)) for r in reports)])
    header = (
        f"{first:<{width}} {'writer':<12} {'workers':>7} {'rows':>10} "
        f"{'rejected':>8} {'seconds':>8} {'rows/s':>10}  check"
    )
    lines = [header, "-" * len(header)]
    for r in reports:
        ok = "ok" if r.rows_written + r.rows_rejected == r.rows_read else "MISMATCH"
        lines.append(
            f"{_first(r, by_collection):<{width}} {r.writer:<12} {r.workers:>7} "
            f"{r.rows_written:>10,} {r.rows_rejected:>8,} {r.elapsed_s:>8.2f} "
            f"{r.rows_per_s:>10,.0f}  {ok}"
        )
    if by_collection:
        written = sum(r.rows_written for r in reports)
        rejected = sum(r.rows_rejected for r in reports)
        seconds = sum(r.elapsed_s for r in reports)
        lines.append("-" * len(header))
        lines.append(
            f"{f'{len(reports)} collections':<{width}} {'':<12} {'':>7} {written:>10,} "
            f"{rejected:>8,} {seconds:>8.2f}"
        )
    return "\n".join(lines)


def _first(report: MigrationReport, by_collection: bool) -> str:
    return f"{report.collection} -> {report.table}" if by_collection else report.backend
