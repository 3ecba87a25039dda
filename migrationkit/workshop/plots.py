"""Charts for the notebooks: each function takes measurements and returns a matplotlib Figure.

matplotlib is imported only when a chart is drawn, so the core package does not
need it (install it with ``pip install -e '.[notebooks]'``). Figures come from
pyplot, which makes Jupyter show a returned figure as a PNG, and are closed from
pyplot at once, so a figure appears exactly once: where the notebook returns it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from migrationkit._run.report import MigrationReport
from migrationkit.workshop.lessons.results import Measurement

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Key = Callable[[Measurement], Any]


def _rows_per_s(measurement: Measurement) -> float:
    return measurement.rows_per_s


def new_figure(*, rows: int = 1, width: float = 8.0, height: float = 3.6) -> tuple[Figure, Any]:
    """A figure with ``rows`` stacked axes (an array of them when ``rows > 1``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(width, height), sharex=True)
    plt.close(fig)  # pyplot forgets it: Jupyter shows it only where it is returned
    return fig, axes


def _finish(fig: Figure, ax: Axes, title: str, ylabel: str) -> Figure:
    from matplotlib.ticker import StrMethodFormatter

    if ax.get_yscale() == "linear":
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if _big(ax) else "{x:,.2g}"))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    return fig


def _big(ax: Axes) -> bool:
    return bool(ax.get_ylim()[1] >= 10)


def bars(
    values: Mapping[str, float], *, title: str = "", ylabel: str = "rows/s", fmt: str = "{:,.0f}"
) -> Figure:
    """One labelled bar per entry; the largest is drawn darker."""
    fig, ax = new_figure(width=max(5.0, 1.1 * len(values) + 2))
    heights = list(values.values())
    top = max(heights, default=0.0)
    colours = ["tab:blue" if h == top else "tab:gray" for h in heights]
    container = ax.bar(list(values), heights, color=colours)
    ax.bar_label(container, labels=[fmt.format(h) for h in heights], padding=2, fontsize=8)
    ax.margins(y=0.15)
    if len(values) > 4:
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    return _finish(fig, ax, title, ylabel)


def throughput(
    measurements: Sequence[Measurement],
    *,
    title: str = "Throughput",
    value: Key = _rows_per_s,
    ylabel: str = "rows/s",
    fmt: str = "{:,.0f}",
) -> Figure:
    """One bar per measurement (rows/s unless ``value`` says otherwise)."""
    return bars({m.label: value(m) for m in measurements}, title=title, ylabel=ylabel, fmt=fmt)


def grouped_bars(
    measurements: Sequence[Measurement],
    *,
    group: Key,
    series: Key,
    value: Key = _rows_per_s,
    relative_to: str | None = None,
    title: str = "",
    ylabel: str = "rows/s",
) -> Figure:
    """Bars side by side: one cluster per ``group(m)``, one colour per ``series(m)``.

    With ``relative_to`` (a series name), each group is divided by that series' value
    in the group, so groups of very different sizes read on one scale.
    """
    groups = list(dict.fromkeys(str(group(m)) for m in measurements))
    names = list(dict.fromkeys(str(series(m)) for m in measurements))
    cells = {(str(group(m)), str(series(m))): float(value(m)) for m in measurements}
    if relative_to is not None:
        cells = {(g, n): v / (cells.get((g, relative_to)) or 1.0) for (g, n), v in cells.items()}
        ylabel = f"{ylabel} relative to {relative_to}"
    fig, ax = new_figure(width=max(6.0, 0.45 * len(groups) * len(names) + 2))
    width = 0.8 / max(1, len(names))
    for index, name in enumerate(names):
        offsets = [g + (index - (len(names) - 1) / 2) * width for g in range(len(groups))]
        heights = [cells.get((g, name), 0.0) for g in groups]
        container = ax.bar(offsets, heights, width, label=name)
        if relative_to is not None:
            ax.bar_label(container, labels=[f"{h:.2f}x" for h in heights], fontsize=8)
    ax.set_xticks(range(len(groups)), groups)
    ax.legend(fontsize=8)
    return _finish(fig, ax, title, ylabel)


def lines(
    measurements: Sequence[Measurement],
    *,
    x: Key,
    series: Key,
    value: Key = _rows_per_s,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "rows/s",
    logx: bool = False,
    logy: bool = False,
) -> Figure:
    """One line with markers per ``series(m)``, through the points ``(x(m), value(m))``."""
    fig, ax = new_figure()
    names = list(dict.fromkeys(str(series(m)) for m in measurements))
    for name in names:
        points = sorted((x(m), value(m)) for m in measurements if str(series(m)) == name)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    if len(names) > 1:
        ax.legend(fontsize=8)
    return _finish(fig, ax, title, ylabel)


def _draw_timeline(ax: Axes, report: MigrationReport, origin: float, title: str) -> None:
    for stats in report.per_worker:
        spans = [(start - origin, end - start) for start, end in stats.spans]
        ax.broken_barh(
            spans,
            (stats.worker - 0.4, 0.8),
            facecolor=f"C{stats.worker % 10}",
            edgecolor="white",  # a gap between back-to-back batches
            linewidth=0.8,
        )
    ax.set_yticks(
        [s.worker for s in report.per_worker], [f"worker {s.worker}" for s in report.per_worker]
    )
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def timelines(runs: Mapping[str, MigrationReport], *, title: str = "") -> Figure:
    """Who was busy when: one row per worker, one bar per batch, one panel per run.

    Each run's clock starts at its first batch; panels share the time axis, so
    a shorter panel is a faster run.
    """
    heights = sum(0.35 * len(r.per_worker) + 0.7 for r in runs.values())
    fig, axes = new_figure(rows=len(runs), height=max(2.2, heights))
    panels = [axes] if len(runs) == 1 else list(axes)
    for ax, (name, report) in zip(panels, runs.items(), strict=True):
        starts = [start for s in report.per_worker for start, _ in s.spans]
        _draw_timeline(ax, report, min(starts, default=0.0), f"{name}: {report.elapsed_s:.2f} s")
    panels[-1].set_xlabel("seconds since the first batch")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def timeline(report: MigrationReport, *, title: str = "Worker timeline") -> Figure:
    """One run's worker timeline (see :func:`timelines`)."""
    return timelines({title: report})


def memory_over_time(measurements: Sequence[Measurement], *, title: str = "") -> Figure:
    """Traced memory (MiB) against time, one line per measurement's ``extra["samples"]``."""
    fig, ax = new_figure()
    for m in measurements:
        samples = m.extra.get("samples", [])
        ax.plot([t for t, _ in samples], [b / 2**20 for _, b in samples], label=m.label)
    ax.set_xlabel("seconds")
    ax.legend(fontsize=8)
    return _finish(fig, ax, title, "traced memory (MiB)")


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (for an ipywidgets ``Image``)."""
    from io import BytesIO

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
