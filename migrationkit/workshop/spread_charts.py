"""Charts of lessons 06 and 07: pages read one by one, and a grid of settings as bars.

Like :mod:`migrationkit.workshop.charts` (whose conventions these follow: the median of
the runs with min-max whiskers, axes from zero with units, a legend for every mark, the
source's own read as a dashed reference line), each function returns a matplotlib
Figure, stored as a PNG; matplotlib is imported only to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from migrationkit.workshop.charts import COLOURS, REFERENCE_COLOUR, median_bars, whiskers
from migrationkit.workshop.lessons.overlap import DASH, Spread
from migrationkit.workshop.lessons.paging import page_profile
from migrationkit.workshop.plots import new_figure

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _median_marks(repeats: int) -> tuple[list[Artist], list[str]]:
    """Legend entries for the point and whisker every series shares."""
    from matplotlib.lines import Line2D

    handles: list[Artist] = [
        Line2D([], [], color="black", marker="o", linestyle="none"),
        Line2D([], [], color="black", marker="|", markersize=12, linestyle="none"),
    ]
    return handles, [f"point/bar: median of {repeats} runs", f"whisker: their min{DASH}max"]


def _style(ax: Axes, *, title: str, ylabel: str, top: float) -> None:
    from matplotlib.ticker import StrMethodFormatter

    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if top >= 10 else "{x:,.2f}"))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def paged_reads(reads: Sequence[Spread], *, title: str = "") -> Figure:
    """Left: each page's time against its number, per pager. Right: each whole read.

    ``reads`` are :func:`~migrationkit.workshop.lessons.paging.paged_reads`' Spreads.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (pages_ax, total_ax) = plt.subplots(
        1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    plt.close(fig)  # as plots.new_figure: shown only where it is returned
    repeats = min(len(spread.runs) for spread in reads)
    top_page = 0.0
    for index, spread in enumerate(reads):
        colour = COLOURS[index % len(COLOURS)]
        profile = page_profile(spread)
        numbers = list(range(1, len(profile) + 1))
        medians = [1e3 * middle for middle, _, _ in profile]
        lows = [1e3 * low for _, low, _ in profile]
        highs = [1e3 * high for _, _, high in profile]
        pages_ax.errorbar(
            numbers,
            medians,
            yerr=whiskers(medians, lows, highs),
            color=colour,
            marker="o",
            markersize=3,
            capsize=2,
            label=spread.label,
        )
        top_page = max(top_page, *highs)
    pages_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    pages_ax.set_xlim(0, max(len(page_profile(spread)) for spread in reads) + 1)
    pages_ax.set_xlabel("page number")
    _style(pages_ax, title="each page", ylabel="milliseconds for the page (ms)", top=top_page)

    positions = list(range(len(reads)))
    medians = [spread.seconds for spread in reads]
    lows = [spread.seconds_range[0] for spread in reads]
    highs = [spread.seconds_range[1] for spread in reads]
    median_bars(
        total_ax,
        positions,
        medians,
        lows,
        highs,
        labels=[f"{median:.2f} s" for median in medians],
        colour=[COLOURS[index % len(COLOURS)] for index in positions],
        alpha=0.85,
        offset=4,
    )
    total_ax.set_xticks(positions, [f"({index + 1})" for index in positions])
    total_ax.set_xlabel("pager (as numbered in the legend)")
    _style(total_ax, title="the whole read", ylabel="seconds (s)", top=max(highs))

    handles, labels = pages_ax.get_legend_handles_labels()
    labels = [f"({index + 1}) {label}" for index, label in enumerate(labels)]
    marks, mark_labels = _median_marks(repeats)
    fig.legend([*handles, *marks], [*labels, *mark_labels], fontsize=8, loc="lower center", ncol=3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def grid(
    spreads: Sequence[Spread],
    *,
    group: str,
    series: str,
    reference: Spread | None = None,
    seconds: bool = False,
    title: str = "",
) -> Figure:
    """Bars: one cluster per ``params[group]``, one bar per ``params[series]``.

    Each bar is a setting's median rows/s (or, with ``seconds``, its median time), its
    whisker the runs' min-max; ``reference`` (the source read alone) is a dashed line
    across, its range shaded.
    """
    groups = list(dict.fromkeys(str(spread.params[group]) for spread in spreads))
    members = list(dict.fromkeys(str(spread.params[series]) for spread in spreads))
    cells = {(str(s.params[group]), str(s.params[series])): s for s in spreads}
    fig, ax = new_figure(width=9.0, height=5.0)
    width = 0.8 / len(members)
    top = 0.0
    for index, member in enumerate(members):
        colour = COLOURS[index % len(COLOURS)]
        xs, medians, lows, highs = [], [], [], []
        for position, name in enumerate(groups):
            cell = cells.get((name, member))
            if cell is None:
                continue
            xs.append(position + (index - (len(members) - 1) / 2) * width)
            low, high = cell.seconds_range if seconds else cell.rate_range
            medians.append(cell.seconds if seconds else cell.rate)
            lows.append(low)
            highs.append(high)
        median_bars(
            ax,
            xs,
            medians,
            lows,
            highs,
            labels=[f"{median:.2f} s" if seconds else f"{median / 1e3:.1f}k" for median in medians],
            colour=colour,
            thickness=width * 0.92,
            alpha=0.85,
            capsize=3,
            fontsize=7,
            label=member,
            offset=3,
        )
        top = max(top, *highs)
    if reference is not None:
        low, high = reference.rate_range
        ax.axhspan(low, high, color=REFERENCE_COLOUR, alpha=0.12, linewidth=0)
        ax.axhline(
            reference.rate,
            color=REFERENCE_COLOUR,
            linestyle="--",
            label=f"{reference.label}, reading only: {reference.rate:,.0f} rows/s "
            f"(band: min{DASH}max)",
        )
        top = max(top, high)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlabel(group)
    _style(ax, title=title, ylabel="seconds (s)" if seconds else "rows/s", top=top)
    handles, labels = ax.get_legend_handles_labels()
    repeats = min(len(spread.runs) for spread in spreads)
    marks, mark_labels = _median_marks(repeats)
    ax.legend(
        [*handles, *marks[1:]],
        [*labels, mark_labels[1]],
        title=f"bar: median of {repeats} runs",
        title_fontsize=8,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncol=3,
    )
    fig.tight_layout()
    return fig


def query_costs(costs: Sequence[Spread], *, title: str = "") -> Figure:
    """One horizontal bar per query: its median time, min-max whiskers, and its plan.

    ``costs`` are :func:`~migrationkit.workshop.lessons.paging.query_costs`' Spreads
    (``params["plan"]``: the stages the server reported).
    """
    fig, ax = new_figure(width=11.0, height=0.5 * len(costs) + 1.8)
    positions = list(range(len(costs)))
    medians = [1e3 * spread.seconds for spread in costs]
    lows = [1e3 * spread.seconds_range[0] for spread in costs]
    highs = [1e3 * spread.seconds_range[1] for spread in costs]
    repeats = min(len(spread.runs) for spread in costs)
    median_bars(
        ax,
        positions,
        medians,
        lows,
        highs,
        horizontal=True,
        labels=[
            f"{median:,.0f} ms   plan: {spread.params['plan']}"
            for median, spread in zip(medians, costs, strict=True)
        ],
        alpha=0.85,
        fontsize=8,
        label=f"median of {repeats} runs",
        whisker_label=f"min{DASH}max",
    )
    ax.set_yticks(positions, [spread.label for spread in costs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(highs) * 1.9)
    ax.set_xlabel("milliseconds for the query, read to the end (ms)")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
