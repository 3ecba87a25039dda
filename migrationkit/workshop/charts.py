"""Charts of repeated runs: medians with min-max whiskers, axes from zero, a legend for every mark.

Each function takes :class:`~migrationkit.workshop.lessons.overlap.Spread`s (several
runs of one setting) and returns a matplotlib Figure, which Jupyter stores as a PNG:
the picture reads on GitHub and in an untrusted notebook, without the code.
Like :mod:`migrationkit.workshop.plots`, matplotlib is imported only to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from migrationkit.workshop.lessons.overlap import DASH, TIMES, Spread, by_workers, series
from migrationkit.workshop.plots import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The colours of the series, in order, and of the reference line.
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")
REFERENCE_COLOUR = "dimgray"


def _whiskers(
    centre: Sequence[float], low: Sequence[float], high: Sequence[float]
) -> list[list[float]]:
    return [
        [c - lo for c, lo in zip(centre, low, strict=True)],
        [hi - c for c, hi in zip(centre, high, strict=True)],
    ]


def _worker_axis(ax: Axes, counts: Sequence[int], label: str) -> None:
    """Whole-number ticks at the worker counts, from zero."""
    ax.set_xticks(sorted(set(counts)))
    ax.set_xlim(0, max(counts) * 1.1)
    ax.set_xlabel(label)


def _finish(fig: Figure, ax: Axes, *, title: str, ylabel: str, top: float, repeats: int) -> Figure:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import StrMethodFormatter

    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if top >= 10 else "{x:,.1f}"))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    from matplotlib.container import ErrorbarContainer

    pairs = list(zip(*ax.get_legend_handles_labels(), strict=True))
    pairs.sort(key=lambda pair: not isinstance(pair[0], ErrorbarContainer))  # series first
    handles, labels = [h for h, _ in pairs], [label for _, label in pairs]
    handles += [
        Line2D([], [], color="black", marker="o", linestyle="none"),
        Line2D([], [], color="black", marker="|", markersize=12, linestyle="none"),
    ]
    labels += [f"point: median of {repeats} runs", f"whisker: their min{DASH}max"]
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
            yerr=_whiskers(medians, lows, highs),
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
) -> Figure:
    """How many times its fewest workers' median each setting reached, with the ideal Nx."""
    fig, ax = new_figure(width=9.0, height=4.2)
    top = 0.0
    counts: list[int] = []
    repeats = 0
    for index, (name, members) in enumerate(groups.items()):
        runs = sorted(by_workers(members).items())
        base, fewest = runs[0][1].rate, runs[0][0]
        xs = [count for count, _ in runs]
        medians = [spread.rate / base for _, spread in runs]
        lows = [spread.rate_range[0] / base for _, spread in runs]
        highs = [spread.rate_range[1] / base for _, spread in runs]
        ax.errorbar(
            xs,
            medians,
            yerr=_whiskers(medians, lows, highs),
            color=COLOURS[index % len(COLOURS)],
            marker="o",
            capsize=4,
            label=name,
        )
        counts += xs
        top = max(top, *highs, max(xs) / fewest)
        repeats = max(repeats, *(len(spread.runs) for spread in members))
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
    fig = _finish(fig, ax, title=title, ylabel=ylabel, top=top, repeats=repeats)
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
    ax.barh(positions, medians, color=COLOURS[0], alpha=0.8, label=f"median of ≥ {repeats} runs")
    ax.errorbar(
        medians,
        positions,
        xerr=_whiskers(medians, lows, highs),
        color="black",
        capsize=4,
        linestyle="none",
        label=f"min{DASH}max",
    )
    for position, median, high in zip(positions, medians, highs, strict=True):
        ax.annotate(
            _ms(median),
            (high, position),
            textcoords="offset points",
            xytext=(6, 0),
            va="center",
            fontsize=9,
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


def _ms(value: float) -> str:
    return f"{value:.2g} ms" if value < 10 else f"{value:,.0f} ms"
