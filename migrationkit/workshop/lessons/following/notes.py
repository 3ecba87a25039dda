"""What lesson 09 says: every sentence about a number, made from the runs' own records."""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Sequence

from migrationkit.workshop.lessons import overlap
from migrationkit.workshop.lessons.following.lesson import (
    BURST_S,
    FLAT_DELAY,
    FOLLOW_S,
    KEPT_PACE,
    KEPT_UP_S,
    LIVE_RATE,
    RATES,
    REPEATS,
    Customers,
)
from migrationkit.workshop.lessons.following.recorder import (
    FollowRecorder,
    applied_at,
    change_delays,
    commit_interval,
    since,
)
from migrationkit.workshop.lessons.following.runs import RateRun, by_rate, per_rate
from migrationkit.workshop.lessons.following.writer import SteadyWriter, WriterRun


def seconds_text(value: float) -> str:
    """0.42 s, 3.1 s, 18 s: the digits that matter."""
    if value < 1:
        return f"{value:.2f} s"
    return f"{value:.1f} s" if value < 10 else f"{value:,.0f} s"


def per_s(value: float) -> str:
    return f"{value:,.0f}/s"


def setup_note(customers: Customers) -> str:
    """Markdown: the sizes of this run, then the machine (:func:`overlap.machine_note`)."""
    return (
        f"**This run:** {customers.rows:,} customers in `{customers.settings.mongo_collection}` "
        f"(a nested address; arrays of accounts, orders with line items, tags), mapped to "
        f"{len(customers.tables)} tables ({', '.join(f'`{t}`' for t in customers.tables)}); "
        f"the load in batches of {customers.settings.batch_size:,} with "
        f"{customers.settings.workers} {customers.settings.backend} workers; the writer at "
        f"{LIVE_RATE:g} writes/s during the load and {FOLLOW_S:g} s after it; then "
        f"{', '.join(f'{r:g}' for r in RATES)} writes/s for {BURST_S:g} s each, {REPEATS} "
        f"runs a pace. {overlap.machine_note()}"
    )


def counter_rows(recorder: FollowRecorder, writer: SteadyWriter) -> list[tuple[str, str]]:
    """The counters, as (name, value): the live widget's and the static table's."""
    made = ("writes made by the writer", f"{writer.writes:,}")
    status = recorder.status
    if status is None:
        return [made]
    applied = status.events_applied
    oldest = recorder.clock() - writer.acked[applied] if 0 <= applied < writer.writes else 0.0
    return [
        made,
        ("changes applied by the follower", f"{applied:,} in {status.batches:,} batches"),
        ("writes not yet in PostgreSQL", f"{max(writer.writes - applied, 0):,}"),
        ("the oldest of them, written", f"{seconds_text(oldest)} ago"),
        ("documents written", f"{status.documents_written:,}"),
        ("documents deleted", f"{status.documents_deleted:,}"),
        ("documents read again (changed while loading)", f"{status.documents_reread:,}"),
        ("documents set aside", f"{status.documents_rejected:,}"),
        ("the follower's lag_s", seconds_text(status.lag_s)),
    ]


def load_line(recorder: FollowRecorder) -> str:
    """Where the load is: waiting, loading (n of ~total), or done (n in t s)."""
    if recorder.load_started is None:
        return "waiting for the load to begin"
    if recorder.load_ended is None:
        total = f" of ~{recorder.total:,}" if recorder.total else ""
        return f"loading: {recorder.loaded:,}{total} documents copied"
    took = seconds_text(recorder.load_ended - recorder.load_started)
    then = "following" if recorder.status is not None else "starting to follow"
    return f"loaded {recorder.loaded:,} documents in {took}; {then}"


def counters_html(recorder: FollowRecorder, writer: SteadyWriter) -> str:
    """The live counters as HTML: the load's line, then a small table."""
    cells = "".join(
        f"<tr><td>{name}</td><td style='text-align:right'><b>{value}</b></td></tr>"
        for name, value in counter_rows(recorder, writer)
    )
    return f"<div><b>{load_line(recorder)}</b></div><table>{cells}</table>"


def final_counts(recorder: FollowRecorder, writer: SteadyWriter) -> str:
    """Markdown: the counters' values now, as a table that reads without widgets."""
    rows = counter_rows(recorder, writer)
    kinds = ", ".join(f"{count:,} {name}" for name, count in writer.kinds.most_common())
    return "\n".join(
        [
            f"**{load_line(recorder).capitalize()}.**",
            "",
            "| counter | value |",
            "|---|---:|",
            *(f"| {name} | {value} |" for name, value in rows),
            "",
            f"The writes, by operation: {kinds or 'none yet'}.",
        ]
    )


def live_note(recorder: FollowRecorder, writer: SteadyWriter, *, live: WriterRun) -> str:
    """Markdown: what the live run shows, each number from its records."""
    if recorder.load_started is None or recorder.load_ended is None or not recorder.samples:
        return "The follower has not reported yet."
    acked = writer.acked[live.first : live.first + live.writes]
    delays = change_delays(acked, recorder.samples, first_event=live.first)
    during = [delay for at, delay in delays if at <= recorder.load_ended]
    caught = applied_at(acked, recorder.samples, moment=recorder.load_ended, first_event=live.first)
    load_s = recorder.load_ended - recorder.load_started
    written = [at for at in acked if at <= recorder.load_ended]
    gap = longest_gap([recorder.load_started, *written, recorder.load_ended])
    held = (
        f" The longest stretch of the load without a write was {seconds_text(gap)}, against "
        f"{seconds_text(1 / live.asked)} between writes asked: the writer shares this "
        "notebook's thread, and the server, with the load."
        if gap > HELD_UP * (1 / live.asked)
        else ""
    )
    lines = [
        f"- **The load** copied {recorder.loaded:,} documents in {seconds_text(load_s)}; the "
        f"writer made {len(written):,} writes meanwhile ({per_s(live.asked)} asked; "
        f"{per_s(live.achieved)} over its whole run).{held}",
    ]
    status = recorder.status
    if during and caught is not None and status is not None:
        catching = [s.lag_s for s in recorder.samples if s.at <= caught]
        lines.append(
            f"- **The changes made during the load** waited for it: up to "
            f"{seconds_text(max(during))} (median {seconds_text(statistics.median(during))}). "
            f"The follower had applied them all {seconds_text(caught - recorder.load_ended)} "
            f"after the load ended; its own `lag_s` peaked at {seconds_text(max(catching))} "
            f"meanwhile. {status.documents_reread:,} documents were read again from the "
            "source, their change being no newer than the load's re-read floor."
        )
    start = caught if caught is not None else recorder.load_ended
    after = [delay for at, delay in delays if at > start]
    if after:
        lags = [s.lag_s for s in recorder.samples if s.at > start]
        every = commit_interval(since(recorder.samples, start))
        cycle = (
            ""
            if every is None
            else f"; the follower committed a batch every {seconds_text(every)} (median)"
        )
        lines.append(
            f"- **Once caught up**, a change reached PostgreSQL "
            f"{seconds_text(statistics.median(after))} after its write (median of "
            f"{len(after):,}; longest {seconds_text(max(after))})"
            f"{cycle}. The follower's `lag_s` stayed at or below "
            f"{seconds_text(max(lags, default=0.0))}: it is how far behind the newest change "
            "it *read* was, 0 whenever the stream had nothing more waiting."
        )
    return "\n".join(lines)


#: A gap between two writes this many times the asked interval counts as held up.
HELD_UP = 5.0


def longest_gap(moments: Sequence[float]) -> float:
    """The longest time between two consecutive moments (0 for fewer than two)."""
    ordered = sorted(moments)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=0.0)


def kept_up(run_spreads: dict[float, tuple[float, float, float]]) -> list[float]:
    """The paces whose longest delay stayed under :data:`KEPT_UP_S` in every run."""
    return [rate for rate, (_, _, high) in run_spreads.items() if high < KEPT_UP_S]


def rates_note(runs: Sequence[RateRun]) -> str:
    """Markdown: per pace, what the writer achieved and how long its changes waited."""
    achieved = per_rate(runs, lambda run: run.achieved)
    median = per_rate(runs, lambda run: run.median_delay)
    longest = per_rate(runs, lambda run: run.max_delay)
    catch = per_rate(runs, lambda run: run.catch_up_s)
    count = len(next(iter(by_rate(runs).values())))
    lines = []
    for rate in achieved:
        got, low, high = achieved[rate]
        pace = "kept" if low >= KEPT_PACE * rate else f"fell short of {per_s(rate)} in some runs"
        lines.append(
            f"- **{per_s(rate)} asked:** the writer made {per_s(got)} (median of {count} runs, "
            f"{per_s(low)}{overlap.DASH}{per_s(high)}; it {pace}); a change waited "
            f"{seconds_text(median[rate][0])} (median), the longest "
            f"{seconds_text(longest[rate][0])} ({seconds_text(longest[rate][1])}"
            f"{overlap.DASH}{seconds_text(longest[rate][2])}); after the writer stopped, the "
            f"follower had everything within {seconds_text(catch[rate][2])}."
        )
    ok = kept_up(longest)
    rates = list(achieved)
    if ok == rates:
        fastest = max(values[0] for values in achieved.values())
        verdict = (
            f"At every pace measured, up to {per_s(fastest)} achieved, no change "
            f"waited {seconds_text(KEPT_UP_S)} or more: the follower kept up."
        )
    elif ok:
        verdict = (
            f"Up to {per_s(ok[-1])} asked no change waited {seconds_text(KEPT_UP_S)} or more; "
            "above that some did: the follower fell behind there."
        )
    else:
        verdict = (
            f"At every pace measured some change waited {seconds_text(KEPT_UP_S)} or more: "
            "the follower fell behind."
        )
    short = [rate for rate, (_, low, _) in achieved.items() if low < KEPT_PACE * rate]
    if short:
        verdict += " " + shortfall_note(by_rate(runs), short)
    return "\n".join([*lines, "", verdict])


def shortfall_note(groups: dict[float, list[RateRun]], short: Sequence[float]) -> str:
    """What the runs measured about the writer's shortfall: this process's CPU, the machine's."""
    runs = [run for rate in short for run in groups[rate]]
    busy = [run.machine_busy for run in runs if run.machine_busy is not None]
    used = statistics.median(run.cpu_share for run in runs)
    machine = statistics.median(busy) if busy else None
    text = (
        f"The writer fell short of {', '.join(per_s(rate) for rate in short)} asked in some "
        f"runs; meanwhile this process (writer and follower, one thread) used {used:.2f} of a "
        "core"
    )
    if machine is not None:
        text += f" and the machine's {os.cpu_count()} CPUs were {machine:.0%} busy"
    text += " (medians of those runs)"
    if used >= overlap.CPU_SATURATED:
        return text + ": the notebook's one thread was the limit."
    if machine is not None and machine >= overlap.CPU_SATURATED:
        return text + (
            ": not this thread, but the machine's CPUs, shared with both servers and every "
            "other program, set the pace."
        )
    return text + ": neither this thread nor the machine's CPUs were saturated."


def recap(
    recorder: FollowRecorder, writer: SteadyWriter, runs: Sequence[RateRun], *, cutover_s: float
) -> str:
    """The lesson's three lines, each number from the runs."""
    status = recorder.status
    assert status is not None
    longest = per_rate(runs, lambda run: run.max_delay)
    median = per_rate(runs, lambda run: run.median_delay)
    achieved = per_rate(runs, lambda run: run.achieved)
    low, top = min(achieved), max(achieved)
    medians = [values[0] for values in median.values()]
    flat = max(medians) <= FLAT_DELAY * min(medians)
    trend = (
        f"the median delay stayed within {seconds_text(min(medians))}{overlap.DASH}"
        f"{seconds_text(max(medians))} at every pace"
        if flat
        else f"the median delay went from {seconds_text(median[low][0])} to "
        f"{seconds_text(median[top][0])}"
    )
    made = ", ".join(per_s(values[0]) for values in achieved.values())
    return "\n".join(
        [
            "1. The stream's position is taken *before* the load, so every change after it "
            f"comes through the stream: {writer.writes:,} writes, {status.events_applied:,} "
            f"changes applied; {status.documents_reread:,} documents changed while the load "
            "ran were read again from the source rather than patched.",
            "2. Each batch of changes and the stream's position are committed in one "
            "PostgreSQL transaction, so a stopped or killed follower resumes exactly after "
            f"the last change the table holds; cutover waited {seconds_text(cutover_s)} for "
            "the follower and verify found source and target equal.",
            f"3. From {per_s(low)} to {per_s(top)} asked (the writer made {made}), {trend}, "
            f"and no change waited more than {seconds_text(max(v[2] for v in longest.values()))} "
            f"({len(runs)} runs).",
        ]
    )
