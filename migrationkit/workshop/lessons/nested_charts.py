"""Lesson 08's charts: query times, table sizes and copy rates, each readable without the code.

Bars are medians with min-max whiskers, every axis starts at zero and says its unit,
and every mark is in a legend. Like :mod:`migrationkit.workshop.charts` (whose colours
these share), matplotlib is imported only to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from migrationkit.workshop.charts import COLOURS, REFERENCE_COLOUR, median_bars, ms_text
from migrationkit.workshop.lessons.nested import (
    INDEXED,
    NO_INDEX,
    MiB,
    TableSize,
    Timings,
    layout_bytes,
)
from migrationkit.workshop.lessons.nested_sql import LAYOUT_NAMES, LAYOUTS, Layout, Question
from migrationkit.workshop.lessons.overlap import DASH, Spread
from migrationkit.workshop.plots import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The colours of the two ways each query is timed, and of the parts of a table's size.
STATE_COLOURS = {NO_INDEX: "tab:gray", INDEXED: COLOURS[0]}
PART_COLOURS = ("tab:blue", "tab:purple", "tab:orange", "tab:green")


def query_times(timings: Timings, questions: Sequence[Question], *, title: str = "") -> Figure:
    """One panel per question: each layout's median time with no index and indexed."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    # Each panel its own time axis: the questions take from a fraction of a ms to seconds.
    fig, axes = plt.subplots(len(questions), 1, figsize=(9.5, 1.8 * len(questions) + 1.2))
    plt.close(fig)  # as plots.new_figure: shown only where it is returned
    panels: list[Axes] = list(axes) if len(questions) > 1 else [axes]
    repeats = min(len(spread.runs) for spread in timings.spreads)
    for ax, question in zip(panels, questions, strict=True):
        top = 0.0
        for offset, state in ((-0.2, NO_INDEX), (0.2, INDEXED)):
            spreads = [timings.get(question.key, layout, state) for layout in LAYOUTS]
            medians = [spread.seconds * 1e3 for spread in spreads]
            highs = [spread.seconds_range[1] * 1e3 for spread in spreads]
            median_bars(
                ax,
                [row + offset for row in range(len(LAYOUTS))],
                medians,
                [spread.seconds_range[0] * 1e3 for spread in spreads],
                highs,
                horizontal=True,
                labels=[ms_text(median) for median in medians],
                colour=STATE_COLOURS[state],
                thickness=0.38,
                capsize=3,
                fontsize=8,
                offset=5,
            )
            top = max(top, *highs)
        ax.set_yticks(range(len(LAYOUTS)), [LAYOUT_NAMES[layout] for layout in LAYOUTS])
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.25 if top > 0 else 1.0)
        ax.set_xlabel("milliseconds (ms), from zero", fontsize=8)
        ax.set_title(question.title, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    handles = [
        Patch(color=STATE_COLOURS[NO_INDEX]),
        Patch(color=STATE_COLOURS[INDEXED]),
        Line2D([], [], color="black", marker="|", markersize=12, linestyle="none"),
    ]
    labels = [
        f"{NO_INDEX} (the planner may use none): median of {repeats} runs",
        f"{INDEXED} (the kit's keys + the lesson's indexes): median of {repeats} runs",
        f"whisker: min{DASH}max of the runs",
    ]
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.7 / fig.get_figheight(), 1, 1))
    return fig


def table_sizes(sizes: Sequence[TableSize], *, bson_bytes: int, title: str = "") -> Figure:
    """Each layout's bytes on disk, stacked by part, beside the documents' size as BSON."""
    fig, ax = new_figure(width=9.5, height=3.4)
    parts = layout_bytes(sizes)
    names = [name for name in next(iter(parts.values())) if name != "total"]
    for row, layout in enumerate(LAYOUTS):
        left = 0.0
        for name, colour in zip(names, PART_COLOURS, strict=True):
            width = parts[layout][name] / MiB
            ax.barh(row, width, left=left, color=colour, label=name if row == 0 else None)
            left += width
        ax.annotate(
            f"{parts[layout]['total'] / MiB:,.1f} MiB",
            (left, row),
            textcoords="offset points",
            xytext=(5, 0),
            va="center",
            fontsize=9,
        )
    reference = bson_bytes / MiB
    ax.axvline(
        reference,
        color=REFERENCE_COLOUR,
        linestyle="--",
        label=f"the documents as BSON: {reference:,.1f} MiB",
    )
    most = max(values["total"] for values in parts.values()) / MiB
    ax.set_xlim(0, max(most, reference) * 1.2)
    ax.set_yticks(range(len(LAYOUTS)), [LAYOUT_NAMES[layout] for layout in LAYOUTS])
    ax.invert_yaxis()
    ax.set_xlabel("MiB on disk (pg_total_relation_size: tables, TOAST, indexes), from zero")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def copy_rates(runs: Mapping[Layout, Spread], *, read: Spread, title: str = "") -> Figure:
    """Each layout's ``migrate()`` rate (median, min-max) beside the source read alone."""
    from matplotlib.lines import Line2D

    fig, ax = new_figure(width=9.5, height=3.0)
    repeats = min(len(spread.runs) for spread in runs.values())
    spreads = [runs[layout] for layout in LAYOUTS]
    rates = [spread.rate for spread in spreads]
    highs = [spread.rate_range[1] for spread in spreads]
    median_bars(
        ax,
        range(len(LAYOUTS)),
        rates,
        [spread.rate_range[0] for spread in spreads],
        highs,
        horizontal=True,
        labels=[f"{rate:,.0f}/s" for rate in rates],
        colour=[COLOURS[row % len(COLOURS)] for row in range(len(LAYOUTS))],
        thickness=0.6,
        offset=5,
    )
    top = max(read.rate_range[1], *highs)
    ax.axvspan(*read.rate_range, color=REFERENCE_COLOUR, alpha=0.15, linewidth=0)
    ax.axvline(read.rate, color=REFERENCE_COLOUR, linestyle="--")
    ax.set_xlim(0, top * 1.25)
    ax.set_yticks(range(len(LAYOUTS)), [LAYOUT_NAMES[layout] for layout in LAYOUTS])
    ax.invert_yaxis()
    ax.set_xlabel("customers per second (documents/s), from zero")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [
        Line2D([], [], color=REFERENCE_COLOUR, linestyle="--"),
        Line2D([], [], color="black", marker="|", markersize=12, linestyle="none"),
    ]
    labels = [
        f"the source alone (reading, writing nothing): {read.rate:,.0f}/s, band: its min{DASH}max",
        f"bar: median of {repeats} migrate() runs; whisker: min{DASH}max",
    ]
    ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1)
    fig.tight_layout()
    return fig
