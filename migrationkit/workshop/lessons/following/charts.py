"""Lesson 09's pictures: one followed run over time, and the delay at several paces.

Both read without the code: axes from zero, units on every axis, a legend for every
mark, the median of the runs with their min-max as whiskers. Matplotlib is imported
only to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from migrationkit.workshop.lessons.following.lesson import KEPT_UP_S
from migrationkit.workshop.lessons.following.recorder import FollowRecorder, change_delays
from migrationkit.workshop.lessons.following.runs import RateRun, by_rate, per_rate
from migrationkit.workshop.lessons.following.writer import SteadyWriter, WriterRun
from migrationkit.workshop.lessons.overlap import DASH

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WRITES, APPLIED, DELAY, LAG = "tab:blue", "tab:orange", "tab:green", "tab:red"
LOAD_SHADE, TARGET = "lightgray", "dimgray"


def _figure(
    *, rows: int, columns: int, width: float, height: float, **options: Any
) -> tuple[Figure, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, columns, figsize=(width, height), **options)
    plt.close(fig)  # pyplot forgets it: Jupyter shows it only where it is returned
    return fig, axes


def _from_zero(ax: Axes, *, top: float, right: float | None = None) -> None:
    ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
    if right is not None:
        ax.set_xlim(0, right)
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)


def follow_chart(
    recorder: FollowRecorder, writer: SteadyWriter, *, live: WriterRun, title: str = ""
) -> Figure:
    """Changes made and applied over time (top); each change's delay and ``lag_s`` (below)."""
    fig, (counts, seconds) = _figure(rows=2, columns=1, width=10.0, height=6.4, sharex=True)
    start = recorder.load_started if recorder.load_started is not None else recorder.created
    samples = recorder.samples
    acked = writer.acked[live.first : live.first + live.writes]
    end = max([live.ended, *(sample.at for sample in samples)]) - start
    for ax in (counts, seconds):
        if recorder.load_ended is not None:
            ax.axvspan(0, recorder.load_ended - start, color=LOAD_SHADE, alpha=0.5, linewidth=0)
    made = [at - start for at in acked]
    counts.step(made, range(1, len(made) + 1), where="post", color=WRITES, label="writes made")
    counts.step(
        [0.0, *(sample.at - start for sample in samples)],
        [0, *(sample.applied - live.first for sample in samples)],
        where="post",
        color=APPLIED,
        label="changes applied (FollowStatus.events_applied after each batch)",
    )
    counts.set_ylabel("changes (count)")
    _from_zero(counts, top=float(max(len(made), 1)), right=end * 1.02)
    delays = change_delays(acked, samples, first_event=live.first)
    seconds.scatter(
        [at - start for at, _ in delays],
        [delay for _, delay in delays],
        s=4,
        color=DELAY,
        label="delay of a change: its write to the commit that applied it",
    )
    seconds.plot(
        [sample.at - start for sample in samples],
        [sample.lag_s for sample in samples],
        color=LAG,
        marker=".",
        linewidth=1,
        label="the follower's lag_s after each batch",
    )
    top = max([*(delay for _, delay in delays), *(sample.lag_s for sample in samples), 0.1])
    seconds.set_ylabel("seconds")
    seconds.set_xlabel("seconds since the load began")
    _from_zero(seconds, top=top, right=end * 1.02)
    from matplotlib.patches import Patch

    for ax, corner in ((counts, "upper left"), (seconds, "upper right")):
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Patch(color=LOAD_SHADE, alpha=0.5))
        labels.append("the full load")
        ax.legend(handles, labels, fontsize=8, loc=corner)
    counts.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def rates_chart(runs: Sequence[RateRun], *, title: str = "") -> Figure:
    """At each pace asked: how long changes waited (left), and the pace achieved (right)."""
    fig, (waited, paced) = _figure(rows=1, columns=2, width=11.0, height=4.2)
    rates = list(by_rate(runs))
    repeats = min(len(group) for group in by_rate(runs).values())
    top = 0.0
    for name, measure, colour in (
        ("median delay of a change in a run", lambda run: run.median_delay, DELAY),
        ("longest delay in a run", lambda run: run.max_delay, LAG),
    ):
        top = max(top, _whiskered(waited, per_rate(runs, measure), colour=colour, label=name))
    waited.axhline(
        KEPT_UP_S, color=TARGET, linestyle="--", label=f"the target: under {KEPT_UP_S:g} s"
    )
    waited.set_ylabel("seconds from the write to PostgreSQL")
    _from_zero(waited, top=max(top, KEPT_UP_S), right=max(rates) * 1.15)
    achieved = per_rate(runs, lambda run: run.achieved)
    high = _whiskered(paced, achieved, colour=WRITES, label="writes/s the writer made")
    paced.plot([0, max(rates)], [0, max(rates)], color=TARGET, linestyle=":", label="as asked")
    paced.set_ylabel("writes/s achieved")
    _from_zero(paced, top=max(high, max(rates)), right=max(rates) * 1.15)
    for ax in (waited, paced):
        ax.set_xticks(rates)
        ax.set_xticklabels([f"{rate:g}" for rate in rates])
        ax.set_xlabel("writes/s asked of the writer")
        _legend(ax, repeats=repeats)
    waited.set_title(title, fontsize=11)
    paced.set_title("the pace the writer kept", fontsize=11)
    fig.tight_layout()
    return fig


def _whiskered(
    ax: Axes, values: dict[float, tuple[float, float, float]], *, colour: str, label: str
) -> float:
    """A median line with min-max whiskers; returns the highest whisker."""
    xs = list(values)
    medians = [values[x][0] for x in xs]
    below = [values[x][0] - values[x][1] for x in xs]
    above = [values[x][2] - values[x][0] for x in xs]
    ax.errorbar(xs, medians, yerr=[below, above], color=colour, marker="o", capsize=4, label=label)
    return max(values[x][2] for x in xs)


def _legend(ax: Axes, *, repeats: int) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="black", marker="o", linestyle="none"),
        Line2D([], [], color="black", marker="|", markersize=12, linestyle="none"),
    ]
    labels += [f"point: median of {repeats} runs", f"whisker: their min{DASH}max"]
    ax.legend(handles, labels, fontsize=8, loc="upper left")
