"""``docs/benchmark.png``: the report's rates and ratios in four panels (matplotlib, lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrationkit.workshop.bench.report import BenchmarkReport


def draw_chart(report: BenchmarkReport, path: Path) -> None:
    """Write a PNG: end-to-end vs limits, writers, CPU-heavy transform, scaling."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    _end_to_end(axes[0][0], report)
    _writers(axes[0][1], report)
    _transform(axes[1][0], report)
    _scaling(axes[1][1], report)
    figure.suptitle(
        f"migrationkit benchmark, N = {report.count:,} users "
        f"({report.machine['nproc']} CPUs, SecantusDB -> PostgreSQL "
        f"{report.machine['servers'].get('postgresql', '?')})"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axis: Any, labels: list[str], values: list[float], colors: list[str]) -> None:
    bars = axis.barh(labels, values, color=colors)
    axis.bar_label(bars, labels=[f"{value:,.0f}" for value in values], padding=3, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, max(values) * 1.25)


def _end_to_end(axis: Any, report: BenchmarkReport) -> None:
    limits = report.limits
    best = report.best_per_backend()
    labels = [f"raw read, {order}" for order in limits.source_reads]
    values = [rate.rows_per_s for rate in limits.source_reads.values()]
    colors = ["grey"] * len(values)
    for backend, point in best.items():
        labels.append(f"{backend} ({point.workers}w, {point.batch_size // 1000}k)")
        values.append(point.rate.rows_per_s)
        colors.append("tab:blue")
    labels.append("original: skip/limit" + (" (extrap.)" if report.original.extrapolated else ""))
    values.append(report.original.rows_per_s)
    colors.append("tab:red")
    _bars(axis, labels, values, colors)
    axis.axvline(0.9 * limits.source_read.rows_per_s, color="black", linestyle="--", linewidth=1)
    axis.set_title("end to end vs the source's raw read, rows/s (dashed: 0.9 x raw read)")


def _writers(axis: Any, report: BenchmarkReport) -> None:
    labels = ["raw asyncpg COPY", *report.writers]
    values = [report.limits.sink_copy.rows_per_s, *(r.rows_per_s for r in report.writers.values())]
    _bars(axis, labels, values, ["grey"] + ["tab:green"] * len(report.writers))
    axis.set_title(f"writers on pre-built rows, rows/s (batches of {report.writer_batch_size:,})")


def _transform(axis: Any, report: BenchmarkReport) -> None:
    labels = [f"{b} ({p.workers}w)" for b, p in report.transform.items()]
    values = [p.rate.rows_per_s for p in report.transform.values()]
    _bars(axis, labels, values, ["tab:purple"] * len(values))
    axis.set_title(
        f"CPU-heavy pseudonymise_email, rows/s (mp / asyncio = "
        f"{report.transform_mp_over_asyncio:.2f})"
    )


def _scaling(axis: Any, report: BenchmarkReport) -> None:
    scaling = report.scaling
    points = (scaling.small, scaling.large)
    labels = [f"{p.count:,}" for p in points]
    axis.bar(labels, [p.seconds for p in points], color="tab:orange", width=0.5)
    axis.set_ylabel("seconds", color="tab:orange")
    memory = axis.twinx()
    memory.plot(labels, [p.peak_rss_bytes / 2**20 for p in points], "o-", color="tab:blue")
    memory.set_ylabel("peak RSS, MiB", color="tab:blue")
    memory.set_ylim(0, max(p.peak_rss_bytes for p in points) / 2**20 * 1.5)
    axis.set_title(
        f"scaling ({scaling.backend}): time x {scaling.time_ratio:.2f}, "
        f"RSS x {scaling.rss_ratio:.2f} for x{scaling.factor} rows"
    )
