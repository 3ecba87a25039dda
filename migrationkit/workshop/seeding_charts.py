"""Lesson 01's charts: users made per second, and documents stored per second by batch size.

Like :mod:`migrationkit.workshop.charts`, each takes
:class:`~migrationkit.workshop.lessons.overlap.Spread`s and draws their medians with
min-max whiskers, from zero, with a legend for every mark; matplotlib is imported
only to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from migrationkit.workshop.charts import COLOURS, REFERENCE_COLOUR, median_bars, whiskers
from migrationkit.workshop.lessons.overlap import DASH, Spread
from migrationkit.workshop.lessons.seeding_lesson import (
    PACKAGE,
    fit_costs,
    package_spread,
    yours_only,
)
from migrationkit.workshop.plots import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _whiskers(spreads: Sequence[Spread]) -> list[list[float]]:
    """:func:`~migrationkit.workshop.charts.whiskers` of each spread's rate."""
    return whiskers(
        [spread.rate for spread in spreads],
        [spread.rate_range[0] for spread in spreads],
        [spread.rate_range[1] for spread in spreads],
    )


def _repeats(spreads: Sequence[Spread]) -> int:
    return min(len(spread.runs) for spread in spreads)


def generation(making: Sequence[Spread], *, title: str = "") -> Figure:
    """One horizontal bar per way of making users: median users/s, min-max whiskers."""
    fig, ax = new_figure(width=8.5, height=0.7 * len(making) + 1.8)
    positions = list(range(len(making)))
    median_bars(
        ax,
        positions,
        [spread.rate for spread in making],
        [spread.rate_range[0] for spread in making],
        [spread.rate_range[1] for spread in making],
        horizontal=True,
        labels=[f"{spread.rate:,.0f} users/s" for spread in making],
        alpha=0.85,
        label="median",
        whisker_label=f"min{DASH}max of {_repeats(making)} runs",
    )
    top = max(spread.rate_range[1] for spread in making)
    ax.set_yticks(positions, [spread.label for spread in making])
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.35)
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.set_xlabel("users made per second (users/s), in memory")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def by_batch_size(spreads: Sequence[Spread], *, title: str = "") -> Figure:
    """Documents/s against documents per request: your loop, ``seed_users``, and the fit.

    The x axis is logarithmic (1 to 10,000 documents per request); the y axis starts
    at zero. The dotted curve is what the fitted costs predict, the dashed line the
    limit they leave: one over the cost per document.
    """
    from matplotlib.lines import Line2D

    own = sorted(yours_only(spreads), key=lambda s: s.params["batch_size"])
    package = package_spread(spreads)
    costs = fit_costs(own)
    sizes = [s.params["batch_size"] for s in own]
    fig, ax = new_figure(width=10.0, height=4.4)
    ax.errorbar(
        sizes,
        [s.rate for s in own],
        yerr=_whiskers(own),
        color=COLOURS[0],
        marker="o",
        capsize=4,
        label="your insert_many loop",
    )
    ax.errorbar(
        [package.params["batch_size"]],
        [package.rate],
        yerr=_whiskers([package]),
        color=COLOURS[1],
        marker="D",
        markersize=7,
        capsize=4,
        linestyle="none",
        label=f"{PACKAGE}, batch {package.params['batch_size']:,}",
    )
    low, high = min(sizes), max(sizes)
    curve = [low * (high / low) ** (step / 199) for step in range(200)]
    ax.plot(
        curve,
        [costs.rate(size) for size in curve],
        ":",
        color=REFERENCE_COLOUR,
        label=(
            f"fit: {costs.per_request_s * 1e3:.2f} ms a request + "
            f"{costs.per_document_s * 1e6:,.0f} \u00b5s a document"
        ),
    )
    ax.axhline(
        costs.ceiling,
        color=REFERENCE_COLOUR,
        linestyle="--",
        label=f"the fit's limit: {costs.ceiling:,.0f} documents/s",
    )
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{size:,}" for size in sizes])
    ax.minorticks_off()
    ax.set_xlabel("documents per insert_many request (log scale)")
    top = max(max(s.rate_range[1] for s in spreads), costs.ceiling)
    ax.set_ylim(0, top * 1.15)
    ax.yaxis.set_major_formatter("{x:,.0f}")
    ax.set_ylabel("documents stored per second")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    handles, labels = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="black", marker="o", linestyle="none"),
        Line2D([], [], color="black", marker="|", markersize=12, linestyle="none"),
    ]
    labels += [f"point: median of {_repeats(spreads)} runs", f"whisker: their min{DASH}max"]
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
