"""What lessons 02 and 03 say: Markdown made from the runs, never a hard-coded number.

The set-up and machine notes are shared by the later lessons too (:func:`setup_note`,
:func:`machine_note`).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence

from migrationkit.workshop.lessons.lab import Lab
from migrationkit.workshop.lessons.overlap_reading import (
    CPU_SATURATED,
    LINEAR_SHARE,
    batch_in_hand_s,
    bound_by,
    by_workers,
    cores,
    first_batch_s,
    held_batch_s,
    overlap_limit,
    series,
    speedups,
)
from migrationkit.workshop.lessons.overlap_runs import BATCH_SIZE, DELAY_S, delay_name
from migrationkit.workshop.lessons.results import Measurement
from migrationkit.workshop.lessons.spreads import DASH, REPEATS, TIMES, Spread


def ratio(value: float) -> str:
    return f"{value:.1f}{TIMES}"


def rows_per_s(value: float) -> str:
    return f"{value:,.0f} rows/s"


def ms(seconds: float) -> str:
    """Milliseconds with the digits that matter: 0.061 ms, 1.2 ms, 37 ms."""
    value = seconds * 1e3
    return f"{value:.2g} ms" if value < 10 else f"{value:,.0f} ms"


def singular(unit: str) -> str:
    return unit.removesuffix("s")


def series_line(spreads: Sequence[Spread], *, unit: str) -> str:
    """``1 worker 3,008 rows/s; 2: 5,209 (1.7x); ...`` for one series, from the medians."""
    runs, gains = by_workers(spreads), speedups(spreads)
    counts = sorted(runs)
    name = singular(unit) if counts[0] == 1 else unit
    first = f"{counts[0]} {name} {rows_per_s(runs[counts[0]].rate)}"
    rest = [f"{n}: {runs[n].rate:,.0f} ({ratio(gains[n])})" for n in counts[1:]]
    return "; ".join([first, *rest])


def scaling_summary(spreads: Sequence[Spread], *, read: Spread, unit: str = "workers") -> str:
    """Markdown: each series' medians and gains, the source's rate, and each run's limit."""
    groups = series(spreads)
    lines = [
        f"- **PostgreSQL {name}:** {series_line(group, unit=unit)}."
        for name, group in groups.items()
    ]
    lines.append(f"- **The source alone** (reading, writing nothing): {rows_per_s(read.rate)}.")
    for name, group in groups.items():
        if group[0].params.get("pg_delay_s") is None:
            continue
        lines.append(f"- {name.capitalize()}: {_overlap_sentence(group, unit=unit)}")
    lines += ["", "| " + unit + " | " + " | ".join(f"{name}: bound by" for name in groups) + " |"]
    lines.append("|---:|" + "---|" * len(groups))
    counts = sorted({spread.workers for spread in spreads})
    for count in counts:
        cells = []
        for group in groups.values():
            runs = by_workers(group)
            fewest = min(runs)
            cells.append(
                bound_by(
                    runs[count], read_rate=read.rate, fewest_rate=runs[fewest].rate, fewest=fewest
                )
                if count in runs
                else ""
            )
        lines.append(f"| {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _overlap_sentence(spreads: Sequence[Spread], *, unit: str) -> str:
    counts = sorted(by_workers(spreads))
    top = overlap_limit(spreads)
    share = f"{LINEAR_SHARE:.0%} of N {TIMES} the speed of {counts[0]}"
    if top == counts[-1]:
        return f"every count, up to {top} {unit}, kept within {share}."
    after = counts[counts.index(top) + 1]
    if top == counts[0]:
        return f"already {after} {unit} fell below {share}."
    return f"up to {top} {unit} kept within {share}; from {after} on, another limit took over."


# -- the set-up ---------------------------------------------------------------------------


def machine_note() -> str:
    """Markdown: the machine the run is on, and how busy it was (every lesson's note ends so)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    busy = (
        f" Load average over the minute before this cell: {load:.1f} on {os.cpu_count()} CPUs"
        + (" (other programs are running: expect spread between runs)." if load > 1 else ".")
        if load is not None
        else ""
    )
    return (
        f"**Machine:** {platform.system()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; both servers on this machine.{busy}"
    )


def setup_note(lab: Lab, *, rows: int) -> str:
    """Markdown: the sizes of this run and the machine it ran on."""
    return (
        f"**This run:** {lab.seeded or rows:,} users in `{lab.settings.mongo_collection}`, "
        f"batches of {BATCH_SIZE}, PostgreSQL {delay_name(DELAY_S)} when far, "
        f"{REPEATS} runs a setting. {machine_note()}"
    )


# -- the runs -----------------------------------------------------------------------------


def _fewest(spreads: Sequence[Spread]) -> Spread:
    runs = by_workers(spreads)
    return runs[min(runs)]


def _top_gain(spreads: Sequence[Spread]) -> tuple[int, float]:
    gains = speedups(spreads)
    count = max(gains, key=lambda n: gains[n])
    return count, gains[count]


def _limits(spreads: Sequence[Spread], *, read: Spread) -> str:
    fewest = _fewest(spreads)
    names = [
        bound_by(s, read_rate=read.rate, fewest_rate=fewest.rate, fewest=fewest.workers)
        for s in spreads
    ]
    return " / ".join(dict.fromkeys(names))


def timeline_note(runs: Mapping[str, Measurement]) -> str:
    """Markdown: each run's wait for its first batch, its copy, and how long a batch was held."""
    lines = []
    first = None
    for name, run in runs.items():
        assert run.report is not None, "only migrations() keep their reports"
        held = held_batch_s(run.report)
        versus = f", {ratio(held / first)} the first run's" if first else ""
        first = first or held
        batches = sum(stats.batches for stats in run.report.per_worker)
        lines.append(
            f"- **{name}:** the first batch reached a worker {first_batch_s(run):.2f} s after "
            f"`migrate()` was called; the copy took **{run.seconds:.2f} s**; a worker held a "
            f"batch for **{ms(held)}** (median of {batches}{versus})."
        )
    return "\n".join(lines)


def batch_note(far: Sequence[Spread], round_trip: float) -> str:
    """Markdown: how long one far worker held a batch, in round trips of the proxy."""
    one = _fewest(far)
    held = batch_in_hand_s(one)
    return (
        f"With {one.workers} worker {delay_name(one.params['pg_delay_s'])}, a worker held "
        f"each batch for **{ms(held)}** (median): about **{held / round_trip:.0f} round trips** "
        f"of {ms(round_trip)}. That is the wait more workers overlap."
    )


def _flat(direct: Sequence[Spread]) -> tuple[float, float]:
    gains = speedups(direct).values()
    return min(gains), max(gains)


def recap_asyncio(
    tasks: Sequence[Spread], far: Sequence[Spread], direct: Sequence[Spread], *, read: Spread
) -> str:
    """The lesson's three lines, each number from the runs."""
    own = series(tasks)
    far_own = next(group for group in own.values() if group[0].params["pg_delay_s"] is not None)
    own_count, own_gain = _top_gain(far_own)
    count, gain = _top_gain(far)
    low, high = _flat(direct)
    return "\n".join(
        [
            f"1. Tasks on one event loop overlap their waits: with PostgreSQL "
            f"{far[0].params['delay']}, {own_count} of your tasks copied {ratio(own_gain)} as "
            f"fast as one, and `migrate()` reached {ratio(gain)} with {count} workers.",
            f"2. With nothing to wait for there is nothing to overlap: direct, every worker "
            f"count ran at {ratio(low)}{DASH}{ratio(high)} of one worker's rate, bound by "
            f"{_limits(direct, read=read)}; the source alone reads {rows_per_s(read.rate)}.",
            "3. `migrate()` runs the same pattern: `ClusterMigrationAsyncio` starts one "
            "`run_worker` task per worker, each fed through a bounded `asyncio.Queue`.",
        ]
    )


def startup_note(startup: Sequence[Spread]) -> str:
    """Markdown: what each start-up step took, and how the connections compare."""
    steps = {
        spread.params["what"]: spread for spread in startup if spread.params["what"] != "cluster"
    }
    clusters = [spread for spread in startup if spread.params["what"] == "cluster"]
    thread, loop = steps["thread"], steps["loop"]
    lines = [
        f"- A thread started and ended in **{ms(thread.seconds)}**; one that ran its own event "
        f"loop in **{ms(loop.seconds)}** (medians of {len(thread.runs)}).",
    ]
    for spread in clusters:
        lines.append(
            f"- The kit's {spread.params['workers']} workers, each connecting to PostgreSQL "
            f"{spread.params['delay']}: **{ms(spread.seconds)}**, "
            f"{spread.seconds / loop.seconds:,.0f}{TIMES} a thread with its loop."
        )
    return "\n".join(lines)


#: Below this many times the fewest threads' speed, a CPU-bound run counts as flat.
FLAT_GAIN = 1.25
#: A process using at most this many cores ran Python on one thread at a time.
ONE_CORE = 1.1


def _crowded(spreads: Sequence[Spread]) -> bool:
    """Every CPU of the machine busy while this process got less than a core: a shared machine."""
    return any(
        (s.median_of("machine_busy") or 0.0) >= CPU_SATURATED
        and (s.median_of("cpu_share") or 0.0) < CPU_SATURATED
        for s in spreads
    )


def gil_note(computing: Sequence[Spread], waiting: Sequence[Spread]) -> str:
    """Markdown: the speed-ups and CPU of computing and of waiting threads, side by side."""

    def gains(spreads: Sequence[Spread]) -> str:
        return ", ".join(f"{n}: {ratio(g)}" for n, g in speedups(spreads).items() if n > 1)

    def used(spreads: Sequence[Spread]) -> str:
        return " / ".join(f"{c:.2f}" for c in cores(spreads).values())

    counts = " / ".join(str(n) for n in sorted(by_workers(computing)))
    top = max(cores(computing).values())
    lines = [
        f"- **Computing** ({rows_per_s(_fewest(computing).rate)} on one thread): "
        f"{gains(computing)}. The process used {used(computing)} cores with {counts} threads: "
        + (
            "never more than one, as the GIL allows one thread to run Python at a time."
            if top <= ONE_CORE
            else f"up to {top:.2f}, so part of the work ran outside the GIL (C code releases it)."
        ),
        f"- **Waiting** on PostgreSQL {waiting[0].params['delay']}: {gains(waiting)}, using "
        f"{used(waiting)} cores.",
    ]
    if _crowded(computing):
        lines.append(
            "- Every CPU of this machine was busy during the computing runs (other programs "
            "included) and the process got less than a core: their speed follows the share of "
            "CPU the operating system gave it, so the computing line can move up or down "
            "without two threads ever computing at once (the right panel)."
        )
    return "\n".join(lines)


def recap_threading(
    startup: Sequence[Spread],
    far: Sequence[Spread],
    direct: Sequence[Spread],
    computing: Sequence[Spread],
    *,
    read: Spread,
) -> str:
    """The lesson's three lines, each number from the runs."""
    loop = next(spread for spread in startup if spread.params["what"] == "loop")
    connect = next(spread for spread in startup if spread.params["what"] == "cluster")
    count, gain = _top_gain(far)
    low, high = _flat(direct)
    cpu_count, cpu_gain = max(speedups(computing).items())
    top = max(cores(computing).values())
    used = cores(computing)
    counts = sorted(used)
    computing_line = (
        f"3. They do not overlap Python work: the CPU-bound transform ran {ratio(cpu_gain)} "
        f"as fast on {cpu_count} threads as on one, the process never above {top:.2f} cores."
        if cpu_gain < FLAT_GAIN
        else f"3. The CPU-bound transform ran {ratio(cpu_gain)} as fast on {cpu_count} threads, "
        f"the process using {used[counts[0]]:.2f} {DASH} {used[counts[-1]]:.2f} cores: "
        f"never more than {top:.2f} at a time."
    )
    return "\n".join(
        [
            f"1. A thread with its own event loop starts in {ms(loop.seconds)}; the kit's "
            f"{connect.params['workers']} workers with their PostgreSQL connections took "
            f"{ms(connect.seconds)} ({connect.params['delay']}): connecting is the start-up cost.",
            f"2. Threads overlap waits: with PostgreSQL {far[0].params['delay']}, {count} thread "
            f"workers ran {ratio(gain)} as fast as one; direct, {ratio(low)}{DASH}{ratio(high)}, "
            f"bound by {_limits(direct, read=read)}.",
            computing_line + " For computing in parallel: processes, lesson 04.",
        ]
    )
