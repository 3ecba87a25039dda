"""Charts of repeated runs: medians with min-max whiskers, axes from zero, a legend for every mark.

Each function takes :class:`~migrationkit.workshop.lessons.overlap.Spread`s (several
runs of one setting) and returns a matplotlib Figure, which Jupyter stores as a PNG:
the picture reads on GitHub and in an untrusted notebook, without the code.
Like :mod:`migrationkit.workshop.plots`, matplotlib is imported only to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from migrationkit._run.report import MigrationReport
from migrationkit.workshop.lessons.overlap import DASH, TIMES, Spread, by_workers, series
from migrationkit.workshop.lessons.results import Measurement
from migrationkit.workshop.plots import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The colours of the series, in order, and of the reference line.
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")
REFERENCE_COLOUR = "dimgray"


def whiskers(
    centre: Sequence[float], low: Sequence[float], high: Sequence[float]
) -> list[list[float]]:
    """matplotlib's ``xerr``/``yerr`` for whiskers from each centre down to low, up to high."""
    return [
        [c - lo for c, lo in zip(centre, low, strict=True)],
        [hi - c for c, hi in zip(centre, high, strict=True)],
    ]


def ms_text(value: float) -> str:
    """Milliseconds with the digits that matter, for a label: 0.061 ms, 1.2 ms, 37 ms."""
    return f"{value:.2g} ms" if value < 10 else f"{value:,.0f} ms"


def median_bars(
    ax: Axes,
    positions: Sequence[float],
    medians: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    horizontal: bool = False,
    labels: Sequence[str] = (),
    colour: str | Sequence[str] = COLOURS[0],
    thickness: float = 0.8,
    alpha: float | None = None,
    capsize: float = 4,
    fontsize: float = 9,
    label: str | None = None,
    whisker_label: str | None = None,
    offset: float = 6,
) -> None:
    """One bar per median, a black whisker to its runs' min and max, a text past each whisker.

    ``horizontal`` lays the bars along x (``barh``); ``thickness`` is a bar's width
    across its position. ``labels`` (one per bar, or none) stand ``offset`` points
    beyond each whisker's end; ``label`` and ``whisker_label`` name the bars and the
    whiskers in the legend.
    """
    draw = ax.barh if horizontal else ax.bar
    draw(positions, medians, thickness, color=colour, alpha=alpha, label=label)
    ends = whiskers(medians, lows, highs)
    ax.errorbar(
        medians if horizontal else positions,
        positions if horizontal else medians,
        xerr=ends if horizontal else None,
        yerr=None if horizontal else ends,
        color="black",
        capsize=capsize,
        linestyle="none",
        label=whisker_label,
    )
    if not labels:
        return
    for position, high, text in zip(positions, highs, labels, strict=True):
        ax.annotate(
            text,
            (high, position) if horizontal else (position, high),
            textcoords="offset points",
            xytext=(offset, 0) if horizontal else (0, offset),
            ha="left" if horizontal else "center",  # matplotlib's default, or centred
            va="center" if horizontal else "baseline",
            fontsize=fontsize,
        )


def _worker_axis(ax: Axes, counts: Sequence[int], label: str) -> None:
    """Whole-number ticks at the worker counts, from zero."""
    ax.set_xticks(sorted(set(counts)))
    ax.set_xlim(0, max(counts) * 1.1)
    ax.set_xlabel(label)


def _finish(
    fig: Figure,
    ax: Axes,
    *,
    title: str,
    ylabel: str,
    top: float,
    repeats: int,
    legend_below: bool = False,
) -> Figure:
    """Y from zero, labels, and one legend naming every mark (series first)."""
    from matplotlib.container import ErrorbarContainer
    from matplotlib.lines import Line2D
    from matplotlib.ticker import StrMethodFormatter

    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if top >= 10 else "{x:,.1f}"))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    pairs = list(zip(*ax.get_legend_handles_labels(), strict=True))
    pairs.sort(key=lambda pair: not isinstance(pair[0], ErrorbarContainer))  # series first
    handles, labels = [h for h, _ in pairs], [label for _, label in pairs]
    handles += [
        Line2D([], [], color="black", marker="o", linestyle="none"),
        Line2D([], [], color="black", marker="|", markersize=12, linestyle="none"),
    ]
    labels += [f"point: median of {repeats} runs", f"whisker: their min{DASH}max"]
    if legend_below:
        fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=2)
        fig.tight_layout(rect=(0, 0.02 + 0.045 * ((len(labels) + 1) // 2), 1, 1))
    else:
        ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
    return fig


def scaling(
    spreads: Sequence[Spread],
    *,
    reference: Spread | None = None,
    title: str = "",
    xlabel: str = "workers",
    group: str = "delay",
) -> Figure:
    """Rows/s against workers, one line per ``params[group]``, with each run's min-max.

    A far series (``params["pg_delay_s"]`` set) gets its ideal beside it: N times its
    fewest workers' median, dotted, and each point says how many times the fewest it
    reached. ``reference`` (the source read alone) is a dashed line with its range.
    """
    fig, ax = new_figure(width=10.0, height=4.2)
    top = 0.0
    counts: list[int] = []
    repeats = max(len(spread.runs) for spread in spreads)
    for index, (name, members) in enumerate(series(spreads, group).items()):
        colour = COLOURS[index % len(COLOURS)]
        runs = sorted(by_workers(members).items())
        xs = [count for count, _ in runs]
        medians = [spread.rate for _, spread in runs]
        lows = [spread.rate_range[0] for _, spread in runs]
        highs = [spread.rate_range[1] for _, spread in runs]
        ax.errorbar(
            xs,
            medians,
            yerr=whiskers(medians, lows, highs),
            color=colour,
            marker="o",
            capsize=4,
            label=f"PostgreSQL {name}" if group == "delay" else name,
        )
        counts += xs
        top = max(top, *highs)
        if members[0].params.get("pg_delay_s") is not None:
            base, fewest = medians[0], xs[0]
            ideal = [base * count / fewest for count in xs]
            ax.plot(
                xs,
                ideal,
                linestyle=":",
                color=colour,
                label=f"{name}, ideal: N {TIMES} the median of {fewest}",
            )
            for count, median in zip(xs[1:], medians[1:], strict=True):
                ax.annotate(
                    f"{median / base:.1f}{TIMES}",
                    (count, median),
                    textcoords="offset points",
                    xytext=(8, -4),
                    fontsize=8,
                    color=colour,
                )
            top = max(top, min(max(ideal), 1.3 * max(highs)))
    if reference is not None:
        low, high = reference.rate_range
        ax.axhspan(low, high, color=REFERENCE_COLOUR, alpha=0.12, linewidth=0)
        ax.axhline(
            reference.rate,
            color=REFERENCE_COLOUR,
            linestyle="--",
            label=f"{reference.label} (reading, writing nothing): {reference.rate:,.0f} rows/s",
        )
        top = max(top, high)
    _worker_axis(ax, counts, xlabel)
    return _finish(fig, ax, title=title, ylabel="rows/s", top=top, repeats=repeats)


def speedup(
    groups: Mapping[str, Sequence[Spread]],
    *,
    title: str = "",
    xlabel: str = "workers",
    cores: bool = False,
) -> Figure:
    """How many times its fewest workers' median each setting reached, with the ideal N x.

    With ``cores``, a second panel shows the CPU the process used (``extra["cpu_share"]``,
    in cores) beside the one core that Python threads share and the machine's CPUs.
    """
    import os

    if cores:
        import matplotlib.pyplot as plt

        fig, (ax, cpu_ax) = plt.subplots(1, 2, figsize=(11.0, 5.2))
        plt.close(fig)  # as plots.new_figure: shown only where it is returned
    else:
        fig, ax = new_figure(width=9.0, height=4.2)
        cpu_ax = None
    top = 0.0
    counts: list[int] = []
    repeats = 0
    for index, (name, members) in enumerate(groups.items()):
        colour = COLOURS[index % len(COLOURS)]
        runs = sorted(by_workers(members).items())
        base, fewest = runs[0][1].rate, runs[0][0]
        xs = [count for count, _ in runs]
        medians = [spread.rate / base for _, spread in runs]
        lows = [spread.rate_range[0] / base for _, spread in runs]
        highs = [spread.rate_range[1] / base for _, spread in runs]
        ax.errorbar(
            xs,
            medians,
            yerr=whiskers(medians, lows, highs),
            color=colour,
            marker="o",
            capsize=4,
            label=name,
        )
        counts += xs
        top = max(top, *highs, max(xs) / fewest)
        repeats = max(repeats, *(len(spread.runs) for spread in members))
        if cpu_ax is not None:
            shares = [[float(run.extra["cpu_share"]) for run in spread.runs] for _, spread in runs]
            middle = [sorted(values)[(len(values) - 1) // 2] for values in shares]
            cpu_ax.errorbar(
                xs,
                middle,
                yerr=whiskers(middle, [min(v) for v in shares], [max(v) for v in shares]),
                color=colour,
                marker="o",
                capsize=4,
            )
    ideal = sorted(set(counts))
    ax.plot(
        ideal,
        [count / min(ideal) for count in ideal],
        ":",
        color=REFERENCE_COLOUR,
        label=f"ideal: N {TIMES}",
    )
    _worker_axis(ax, counts, xlabel)
    ylabel = f"speed-up ({TIMES} the median rows/s of {min(ideal)})"
    if cpu_ax is not None:
        machine = os.cpu_count() or 1
        # Drawn below zero, out of sight: the legend's entries for the right panel's lines.
        ax.axhline(-1, color=REFERENCE_COLOUR, linestyle="--", label="right: 1 core")
        ax.axhline(-1, color="black", linestyle="-.", label=f"right: this machine's {machine} CPUs")
        cpu_ax.axhline(1.0, color=REFERENCE_COLOUR, linestyle="--")
        cpu_ax.axhline(machine, color="black", linestyle="-.")
        _worker_axis(cpu_ax, counts, xlabel)
        cpu_ax.set_ylim(0, machine * 1.15)
        cpu_ax.set_ylabel("CPU used by this process (cores)")
        cpu_ax.set_title("CPU used (median, min\u2013max)", fontsize=10)
        cpu_ax.grid(axis="y", alpha=0.3)
    fig = _finish(fig, ax, title=title, ylabel=ylabel, top=top, repeats=repeats, legend_below=cores)
    ax.yaxis.set_major_formatter("{x:g}" + TIMES)
    return fig


def durations(spreads: Sequence[Spread], *, title: str = "") -> Figure:
    """One horizontal bar per setting: its median time in milliseconds, min-max whiskers."""
    fig, ax = new_figure(width=7.5, height=0.55 * len(spreads) + 1.6)
    names = [spread.label for spread in spreads]
    medians = [spread.seconds * 1e3 for spread in spreads]
    lows = [spread.seconds_range[0] * 1e3 for spread in spreads]
    highs = [spread.seconds_range[1] * 1e3 for spread in spreads]
    repeats = min(len(spread.runs) for spread in spreads)
    positions = list(range(len(spreads)))
    median_bars(
        ax,
        positions,
        medians,
        lows,
        highs,
        horizontal=True,
        labels=[ms_text(median) for median in medians],
        alpha=0.8,
        label=f"median of ≥ {repeats} runs",
        whisker_label=f"min{DASH}max",
    )
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(highs) * 1.3)
    ax.set_xlabel("milliseconds (ms)")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def timelines(runs: Mapping[str, Measurement], *, title: str = "") -> Figure:
    """Who held a batch when: one panel per run, one lane per worker, one bar per batch.

    Each panel's clock starts when ``migrate()`` was called (``extra["called_at"]``, as
    :func:`~migrationkit.workshop.lessons.overlap.migrations` records it), so the wait
    for the first batch shows; all panels share the time axis, from zero.
    """
    from matplotlib.patches import Patch

    lanes = sum(len(_report(run).per_worker) for run in runs.values())
    height = max(2.4, 0.3 * lanes + 0.9 * len(runs))
    fig, axes = new_figure(rows=len(runs), width=9.0, height=height)
    panels = [axes] if len(runs) == 1 else list(axes)
    end = 0.0
    for ax, (name, run) in zip(panels, runs.items(), strict=True):
        report = _report(run)
        origin = float(run.extra["called_at"])
        starts = [start for stats in report.per_worker for start, _ in stats.spans]
        ax.axvspan(0, min(starts, default=origin) - origin, color=REFERENCE_COLOUR, alpha=0.15)
        for stats in report.per_worker:
            bars = [(start - origin, finish - start) for start, finish in stats.spans]
            end = max([end, *(start + width for start, width in bars)])
            ax.broken_barh(
                bars,
                (stats.worker - 0.4, 0.8),
                facecolor=COLOURS[stats.worker % len(COLOURS)],
                edgecolor="white",  # a gap between back-to-back batches
                linewidth=0.6,
            )
        workers = [stats.worker for stats in report.per_worker]
        ax.set_yticks(workers, [f"worker {worker}" for worker in workers])
        ax.set_ylim(max(workers) + 0.6, -0.6)
        ax.set_title(f"{name}: copy {run.seconds:.2f} s", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    panels[0].set_xlim(0, end * 1.02 if end > 0 else 1.0)
    panels[-1].set_xlabel("seconds since migrate() was called (s)")
    handles = [
        Patch(facecolor=COLOURS[0], edgecolor="white", label="one batch: taken \u2192 committed"),
        Patch(facecolor=REFERENCE_COLOUR, alpha=0.15, label="before the first batch arrived"),
    ]
    panels[0].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _report(run: Measurement) -> MigrationReport:
    if run.report is None:
        raise ValueError(f"{run.label}: no report to draw (only migrations keep theirs)")
    return run.report
