"""Lesson 05's writers: each timed alone on pre-built batches, then inside ``migrate()``.

Inside a migration a writer shares the run with the source's read, and where the read
is the slower part every writer looks alike. So the lesson first times the learner's
own three writers (``copy_records_to_table``, ``executemany``, one ``INSERT`` per row)
on batches held in memory, with nothing else in the loop, and only then migrates
with each of the kit's writers beside the source's own read. Every sentence the lesson
prints about a number is made here, from the runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from migrationkit._normalize.rows import Row, document_to_row
from migrationkit._target.writers import WRITERS
from migrationkit.workshop.charts import median_bars
from migrationkit.workshop.lessons.lab import Choice, Lab
from migrationkit.workshop.lessons.migration_runs import choice_migrations
from migrationkit.workshop.lessons.overlap import (
    BATCH_SIZE,
    BUSY_SHARE,
    CPU_SATURATED,
    DASH,
    NEAR_READ_SHARE,
    ONE_THREAD,
    READER,
    REPEATS,
    SOURCE_READ,
    WRITES,
    Setting,
    Spread,
    empty_users_table,
    ms,
    ratio,
    repeat_rounds,
    rows_per_s,
)
from migrationkit.workshop.plots import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: ``write(connection, rows)``: one of the lesson's writers, sending one batch.
BatchWriter = Callable[[Any, list[Row]], Awaitable[None]]
#: ``write_all(pg_dsn, write, batches)``: the lesson's loop, one transaction a batch.
WriteAll = Callable[[str, BatchWriter, Sequence[list[Row]]], Awaitable[int]]

#: The slow baseline the ratios are taken against: one INSERT, one round trip, a row.
BASELINE = "insert"
#: From this share of a batch's time on, its round trips are "nearly all of it".
NEARLY_ALL = 0.9
#: The colours of the bars: the writer alone, the writer inside migrate(), the read.
ALONE_COLOUR, MIGRATED_COLOUR, READ_COLOUR = "tab:blue", "tab:orange", "dimgray"


async def prebuilt_rows(lab: Lab, *, batch_size: int = BATCH_SIZE) -> list[Row]:
    """Every user of the lab's collection as a row tuple, read once, held in memory."""
    rows: list[Row] = []
    async with lab.collection() as users:
        async for batch in users.iter_batches(batch_size):
            rows += [document_to_row(document) for document in batch]
    return rows


def in_batches(rows: Sequence[Row], batch_size: int = BATCH_SIZE) -> list[list[Row]]:
    """``rows`` cut into lists of ``batch_size`` (the last one shorter)."""
    return [list(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]


async def writer_runs(
    write_all: WriteAll,
    writers: Mapping[str, BatchWriter],
    batches: Sequence[list[Row]],
    *,
    pg_dsn: str,
    table: str,
    repeats: int = REPEATS,
) -> list[Spread]:
    """Time ``write_all(pg_dsn, write, batches)`` for every writer, ``table`` emptied first.

    Nothing but the writing is timed: the rows are built, and the table emptied,
    before the clock starts. ``params``: ``writer`` (the key), ``workers`` (1:
    one connection) and ``batch_size``.
    """

    def run_with(write: BatchWriter) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            return await write_all(pg_dsn, write, batches)

        return run

    size = max((len(batch) for batch in batches), default=0)
    settings: list[Setting] = [
        (name, {"writer": name, "workers": 1, "batch_size": size}, run_with(write))
        for name, write in writers.items()
    ]
    return await repeat_rounds(
        settings, repeats=repeats, before=lambda: empty_users_table(pg_dsn, table)
    )


async def writer_migrations(
    lab: Lab,
    *,
    writers: Sequence[str] = WRITERS,
    workers: int = 1,
    batch_size: int = BATCH_SIZE,
    repeats: int = REPEATS,
) -> list[Spread]:
    """``migrate()`` of the lab's collection with each of the kit's writers, by name."""
    choices = {
        name: Choice(backend="asyncio", workers=workers, batch_size=batch_size, writer=name)
        for name in writers
    }
    return await choice_migrations(lab, choices, repeats=repeats)


# -- reading the results ------------------------------------------------------------------


def by_writer(spreads: Sequence[Spread]) -> dict[str, Spread]:
    return {str(spread.params["writer"]): spread for spread in spreads}


def batch_s(spread: Spread) -> float:
    """The median time one batch took: the run's median time over its batches."""
    size = int(spread.params["batch_size"])
    batches = max(1, -(-spread.runs[0].rows // size))
    return spread.seconds / batches


def bound_by(migrated: Spread, *, alone: Spread, read: Spread) -> str:
    """Which resource set a migration's pace: the read, the writes, or what else its runs show.

    Near the source's own read rate: the source. Near its writer's own rate alone (N
    connections, N times that): the writes. Workers often without a batch: the reader.
    A whole core busy in this process: its one thread. Else the writes.
    """
    if migrated.rate >= NEAR_READ_SHARE * read.rate:
        return SOURCE_READ
    if migrated.rate >= NEAR_READ_SHARE * alone.rate * migrated.workers:
        return WRITES
    busy = migrated.median_of("busy_share")
    if busy is not None and busy < BUSY_SHARE:
        return READER
    if (migrated.median_of("cpu_share") or 0.0) >= CPU_SATURATED:
        return ONE_THREAD
    return WRITES


def _spread_text(spread: Spread) -> str:
    low, high = spread.rate_range
    return f"**{rows_per_s(spread.rate)}** ({low:,.0f}{DASH}{high:,.0f})"


def alone_note(alone: Sequence[Spread], *, round_trip: float) -> str:
    """Markdown: each writer's rate alone, the ratios, and what one INSERT a row waits for."""
    writers = by_writer(alone)
    repeats = min(len(spread.runs) for spread in alone)
    rates = "; ".join(f"`{name}` {_spread_text(spread)}" for name, spread in writers.items())
    lines = [f"- **Alone** (median of {repeats} runs, min{DASH}max): {rates}."]
    if {"copy", "executemany", BASELINE} <= set(writers):
        copy, many, one = writers["copy"], writers["executemany"], writers[BASELINE]
        lines.append(
            f"- COPY wrote **{ratio(copy.rate / many.rate)}** as fast as executemany and "
            f"**{ratio(copy.rate / one.rate)}** as fast as one INSERT per row; executemany "
            f"{ratio(many.rate / one.rate)} as fast as one INSERT per row."
        )
    if BASELINE in writers:
        one = writers[BASELINE]
        size = int(one.params["batch_size"])
        waited = size * round_trip
        share = waited / batch_s(one)
        rest = (
            "nearly all of it: one statement per row is cheap next to waiting for its reply"
            if share >= NEARLY_ALL
            else f"{share:.0%} of it; the rest is PostgreSQL running {size:,} statements"
        )
        lines.append(
            f"- One round trip to PostgreSQL costs {ms(round_trip)} here (`SELECT 1`, median). "
            f"One INSERT per row makes {size:,} of them a batch, **{ms(waited)}**, and a batch "
            f"took **{ms(batch_s(one))}**: the waiting is {rest}."
        )
    return "\n".join(lines)


def migration_note(alone: Sequence[Spread], migrated: Sequence[Spread], *, read: Spread) -> str:
    """Markdown: each writer inside migrate() against itself alone and the source's read."""
    writers, runs = by_writer(alone), by_writer(migrated)
    lines = [f"- **The source alone** (reading, writing nothing): {_spread_text(read)}."]
    for name, spread in runs.items():
        busy = spread.median_of("busy_share")
        held = (
            f"; the worker held a batch {busy:.0%} of the copying time" if busy is not None else ""
        )
        share = (
            f", {spread.rate / writers[name].rate:.0%} of its speed alone"
            if name in writers
            else ""
        )
        bound = bound_by(spread, alone=writers[name], read=read) if name in writers else ""
        lines.append(
            f"- **`{name}` in migrate()** ({spread.workers} worker): {_spread_text(spread)}"
            f"{share}, {spread.rate / read.rate:.0%} of the source alone{held}. "
            f"Bound by **{bound}**."
        )
    if {"copy", "executemany"} <= set(runs) and {"copy", "executemany"} <= set(writers):
        inside = runs["copy"].rate / runs["executemany"].rate
        outside = writers["copy"].rate / writers["executemany"].rate
        lines.append(
            f"- COPY against executemany: {ratio(outside)} alone, {ratio(inside)} inside migrate()."
        )
    return "\n".join(lines)


def recap(alone: Sequence[Spread], migrated: Sequence[Spread], *, read: Spread) -> str:
    """The lesson's three lines, each number from the runs."""
    writers, runs = by_writer(alone), by_writer(migrated)
    copy, many, one = writers["copy"], writers["executemany"], writers[BASELINE]
    fast = [name for name in ("copy", "executemany") if name in runs]
    inside = " and ".join(f"`{name}` {rows_per_s(runs[name].rate)}" for name in fast)
    limits = " / ".join(
        dict.fromkeys(bound_by(runs[name], alone=writers[name], read=read) for name in fast)
    )
    workers = migrated[0].workers
    slow = runs.get(BASELINE)
    slow_line = (
        f" One INSERT per row, at {rows_per_s(slow.rate)}, was bound by "
        f"{bound_by(slow, alone=one, read=read)}."
        if slow is not None
        else ""
    )
    return "\n".join(
        [
            f"1. Alone on pre-built batches, COPY wrote {ratio(copy.rate / many.rate)} as fast "
            f"as executemany and {ratio(copy.rate / one.rate)} as fast as one INSERT per row, "
            f"which waits for a round trip per row.",
            f"2. Inside `migrate()` ({workers} worker{'s' if workers > 1 else ''}) the writer is "
            f"one part of the run: {inside}, against {rows_per_s(read.rate)} for the source "
            f"read alone; bound by {limits}.{slow_line}",
            "3. The package's writers are the same calls: `ROW_WRITERS` `copy` (`copy_rows`: "
            "`copy_records_to_table`), `executemany` (`executemany_rows`) and `insert` "
            "(`insert_rows`), picked with `Settings.writer`; `BatchLoader.write_batch` wraps "
            "each in the batch's transaction.",
        ]
    )


# -- the picture ----------------------------------------------------------------------------


def writers_chart(
    alone: Sequence[Spread],
    *,
    migrated: Sequence[Spread] = (),
    read: Spread | None = None,
    title: str = "",
) -> Figure:
    """Rows/s per writer: alone, and inside migrate(), with min-max whiskers; the read as a line.

    Each bar says its median and how many times the baseline writer's (one INSERT per
    row) it is, in the same setting.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import StrMethodFormatter

    names = list(by_writer(alone))
    groups: list[tuple[str, dict[str, Spread], str]] = [
        ("alone: your code on pre-built batches, 1 connection", by_writer(alone), ALONE_COLOUR)
    ]
    if migrated:
        workers = migrated[0].workers
        name = f"inside migrate(), {workers} worker{'s' if workers > 1 else ''}"
        groups.append((name, by_writer(migrated), MIGRATED_COLOUR))
    height = 0.8 / len(groups)
    fig, ax = new_figure(width=10.0, height=1.0 + 0.9 * len(names) * len(groups) ** 0.5 + 0.8)
    top = 0.0
    for index, (label, spreads, colour) in enumerate(groups):
        positions = [row + (index - (len(groups) - 1) / 2) * height for row in range(len(names))]
        present = [(p, spreads[n]) for p, n in zip(positions, names, strict=True) if n in spreads]
        ys = [position for position, _ in present]
        median_bars(
            ax,
            ys,
            [spread.rate for _, spread in present],
            [spread.rate_range[0] for _, spread in present],
            [spread.rate_range[1] for _, spread in present],
            horizontal=True,
            colour=colour,
            thickness=height * 0.9,
            alpha=0.85,
            capsize=3,
            label=label,
        )
        base = spreads.get(BASELINE)
        for y, (_, spread) in zip(ys, present, strict=True):
            times = (
                f" ({ratio(spread.rate / base.rate)} {BASELINE})"
                if base is not None and spread is not base
                else ""
            )
            ax.annotate(
                f"{spread.rate:,.0f}{times}",
                (spread.rate_range[1], y),
                textcoords="offset points",
                xytext=(6, 0),
                va="center",
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
            )
            top = max(top, spread.rate_range[1])
    handles, labels = ax.get_legend_handles_labels()
    repeats = min(len(spread.runs) for _, spreads, _ in groups for spread in spreads.values())
    handles.append(Line2D([], [], color="black", marker="|", markersize=12, linestyle="none"))
    labels.append(f"whisker: min{DASH}max of {repeats} runs (bar: their median)")
    if read is not None:
        low, high = read.rate_range
        ax.axvspan(low, high, color=READ_COLOUR, alpha=0.12, linewidth=0, zorder=0)
        line = ax.axvline(read.rate, color=READ_COLOUR, linestyle="--", zorder=1.5)
        handles.append(line)
        labels.append(f"the source alone (reading, writing nothing): {read.rate:,.0f} rows/s")
        top = max(top, high)
    ax.set_yticks(range(len(names)), [f"{name}" for name in names])
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.35 if top > 0 else 1.0)
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("rows/s (rows written per second)")
    ax.set_ylabel("writer")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    fig.tight_layout()
    return fig
