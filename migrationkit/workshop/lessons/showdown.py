"""Lesson 07's grid: every backend with every writer, each setting run in whole rounds.

Every setting is a real ``migrate()`` of the lab's users, run ``repeats`` times, once a
round (a busy spell on a shared machine then hits every setting alike), and kept as a
:class:`~migrationkit.workshop.lessons.overlap.Spread`. Settings whose min-max ranges
overlap are a tie (:mod:`~migrationkit.workshop.lessons.compare`); a ratio is stated only
between settings that part, and every sentence is made here, from the runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from migrationkit._run.migration import migrate
from migrationkit._run.report import MigrationReport
from migrationkit._settings.settings import Backend, Writer
from migrationkit.workshop.lessons import overlap as O
from migrationkit.workshop.lessons.compare import overlaps, rate_cell, tiers, times_as_fast
from migrationkit.workshop.lessons.lab import Choice, Lab
from migrationkit.workshop.lessons.overlap import (
    BATCH_SIZE,
    DASH,
    REPEATS,
    TIMES,
    Setting,
    Spread,
    bound_by,
    repeat_rounds,
    rows_per_s,
)
from migrationkit.workshop.lessons.results import Measurement, Table

BACKENDS: tuple[Backend, ...] = ("asyncio", "threading", "multiprocessing")
WRITERS: tuple[Writer, ...] = ("copy", "executemany", "insert")
#: Workers of every setting: this machine's 2 cores, and the kit's default on it.
WORKERS = 2
#: A run that spent this share of its time outside the batches was bound by its set-up.
OVERHEAD_SHARE = 0.5
#: The resource of a run mostly spent before the first batch and after the last.
STARTUP = "the start and the end (workers starting, the source's first answer, workers stopping)"
#: How the limits table names each resource (the notes use the full names).
SHORT = {
    STARTUP: "start and end",
    O.SOURCE_READ: "the source's read",
    O.ONE_THREAD: "Python's one thread",
    O.MACHINE_CPU: "the CPUs",
    O.WRITES: "the writes",
    O.READER: "the reader",
    O.ROUND_TRIPS: "round trips",
}


def label(backend: str, writer: str) -> str:
    return f"{backend}/{writer}"


async def grid(
    lab: Lab,
    *,
    backends: Sequence[Backend] = BACKENDS,
    writers: Sequence[Writer] = WRITERS,
    workers: int = WORKERS,
    batch_size: int = BATCH_SIZE,
    repeats: int = REPEATS,
) -> list[Spread]:
    """``migrate()`` with every backend and writer, ``repeats`` whole rounds; a Spread each.

    A run's ``seconds`` are its report's ``elapsed_s``: from starting the workers to the
    last batch committed (connecting and creating the table before it are left out).
    ``extra``: ``cpu_share`` (this process's CPU over the wall time), ``machine_busy``
    (the share of all CPUs busy) and ``busy_share`` (the share of the copy each worker
    had a batch in hand).
    """
    reports: dict[str, list[MigrationReport]] = {}

    def run_with(backend: Backend, writer: Writer) -> Callable[[], Awaitable[int]]:
        choice = Choice(backend=backend, workers=workers, batch_size=batch_size, writer=writer)
        settings = lab.settings_for(choice)
        name = label(backend, writer)

        async def run() -> int:
            report = await migrate(settings, endpoints=lab.endpoints)
            reports.setdefault(name, []).append(report)
            return report.rows_written

        return run

    settings: list[Setting] = [
        (
            label(backend, writer),
            {"backend": backend, "writer": writer, "workers": workers, "batch_size": batch_size},
            run_with(backend, writer),
        )
        for backend in backends
        for writer in writers
    ]
    spreads = await repeat_rounds(settings, repeats=repeats)
    return [timed_by_report(spread, reports[spread.label]) for spread in spreads]


def timed_by_report(spread: Spread, reports: Sequence[MigrationReport]) -> Spread:
    """The spread with each run's time taken from its report, and what the workers did.

    Adds ``busy_share`` and ``overhead_s``: the time outside the batches, from starting
    the workers to the first batch taken and from the last committed to the end.
    """
    runs = []
    for run, report in zip(spread.runs, reports, strict=True):
        elapsed = report.elapsed_s
        in_hand = sum(stats.busy_s for stats in report.per_worker)
        busy = in_hand / (elapsed * report.workers) if elapsed > 0 else 0.0
        extra = {**run.extra, "busy_share": busy, "overhead_s": overhead_s(report)}
        runs.append(Measurement(run.label, run.rows, elapsed, run.params, extra, report=report))
    return Spread(spread.label, spread.params, tuple(runs))


def overhead_s(report: MigrationReport) -> float:
    """The report's copy time outside its batches: start-up, the first read, shutdown."""
    spans = [span for stats in report.per_worker for span in stats.spans]
    if not spans:
        return report.elapsed_s
    batches = max(end for _, end in spans) - min(start for start, _ in spans)
    return max(0.0, report.elapsed_s - batches)


# -- reading the grid -----------------------------------------------------------------------


def cell(spreads: Sequence[Spread], backend: str, writer: str) -> Spread:
    return next(
        s for s in spreads if s.params["backend"] == backend and s.params["writer"] == writer
    )


def _axis(spreads: Sequence[Spread], name: str) -> list[str]:
    return list(dict.fromkeys(str(spread.params[name]) for spread in spreads))


def grid_table(spreads: Sequence[Spread]) -> Table:
    """Backends down, writers across; each cell the median rows/s and the runs' range."""
    writers = _axis(spreads, "writer")
    rows = [
        [backend, *(rate_cell(cell(spreads, backend, writer)) for writer in writers)]
        for backend in _axis(spreads, "backend")
    ]
    return Table([f"rows/s: median (min{DASH}max)", *writers], rows)


def limit_of(spread: Spread, *, read: Spread) -> str:
    """Which resource bounded this setting, judged from its runs.

    Mostly outside the batches: the start-up. Else as lessons 02 and 03 judge
    (:func:`~migrationkit.workshop.lessons.overlap.bound_by`).
    """
    overhead = spread.median_of("overhead_s")
    if overhead is not None and overhead >= OVERHEAD_SHARE * spread.seconds:
        return STARTUP
    return bound_by(spread, read_rate=read.rate, fewest_rate=spread.rate, fewest=spread.workers)


def limits_table(spreads: Sequence[Spread], *, read: Spread) -> Table:
    """Backends down, writers across; each cell the resource that bounded the setting."""
    writers = _axis(spreads, "writer")
    rows = [
        [
            backend,
            *(SHORT.get(limit_of(cell(spreads, backend, w), read=read), "?") for w in writers),
        ]
        for backend in _axis(spreads, "backend")
    ]
    return Table(["bound by", *writers], rows)


def _names(group: Sequence[Spread]) -> str:
    return ", ".join(f"`{spread.label}`" for spread in group)


def ranking_note(spreads: Sequence[Spread]) -> str:
    """Markdown: the settings in tiers; a tier's members overlap and are not ranked."""
    lines = []
    for number, group in enumerate(tiers(spreads), start=1):
        low = min(spread.rate_range[0] for spread in group)
        high = max(spread.rate_range[1] for spread in group)
        span = f"{low:,.0f}{DASH}{high:,.0f} rows/s"
        if len(group) == 1:
            lines.append(f"{number}. {_names(group)}: {span}.")
        else:
            lines.append(f"{number}. **A tie** between {_names(group)}: {span} (ranges overlap).")
    return "\n".join(lines)


def _ratio(a: Spread, b: Spread) -> str:
    return "a tie" if overlaps(a, b) else f"{times_as_fast(a, b):.1f}{TIMES}"


def writer_ratios(
    spreads: Sequence[Spread], *, fast: str = "copy", slow: str = "insert"
) -> dict[str, float | None]:
    """Per backend, how many times ``slow``'s median rows/s ``fast``'s is; None for a tie."""
    ratios: dict[str, float | None] = {}
    for backend in _axis(spreads, "backend"):
        a, b = cell(spreads, backend, fast), cell(spreads, backend, slow)
        ratios[backend] = None if overlaps(a, b) else times_as_fast(a, b)
    return ratios


def writer_note(spreads: Sequence[Spread], *, fast: str = "copy", slow: str = "insert") -> str:
    """Markdown: ``fast`` over ``slow`` within each backend, from the medians (ties named)."""
    ratios = writer_ratios(spreads, fast=fast, slow=slow)
    parts = [
        f"{backend} {'a tie' if ratio is None else f'{ratio:.1f}{TIMES}'}"
        for backend, ratio in ratios.items()
    ]
    known = [ratio for ratio in ratios.values() if ratio is not None]
    if not known:
        verdict = f"`{fast}` and `{slow}` tie in every backend"
    elif min(known) > 1 and len(known) == len(ratios):
        verdict = (
            f"`{fast}` beat `{slow}` in every backend, by "
            f"{min(known):.1f}{TIMES}{DASH}{max(known):.1f}{TIMES}"
        )
    else:
        verdict = f"`{fast}` against `{slow}` differs by backend"
    return f"{verdict} ({'; '.join(parts)}; medians, a tie where the ranges overlap)."


def backend_note(spreads: Sequence[Spread]) -> str:
    """Markdown: for each writer, the backends from fastest, ties named."""
    lines = []
    for writer in _axis(spreads, "writer"):
        row = [cell(spreads, backend, writer) for backend in _axis(spreads, "backend")]
        groups = tiers(row)
        text = " > ".join(
            " = ".join(str(spread.params["backend"]) for spread in group) for group in groups
        )
        lines.append(f"- **{writer}:** {text}")
    return "\n".join(lines) + "\n\n(`=`: ranges overlap, a tie; `>`: the ranges part.)"


def limits_note(spreads: Sequence[Spread], *, read: Spread) -> str:
    """Markdown: the source's rate, and each resource with the settings it bounded."""
    named: dict[str, list[Spread]] = {}
    for spread in spreads:
        named.setdefault(limit_of(spread, read=read), []).append(spread)
    lines = [
        f"- **The source alone** (the kit's reader, writing nothing): {rows_per_s(read.rate)} "
        f"(runs {read.rate_range[0]:,.0f}{DASH}{read.rate_range[1]:,.0f})."
    ]
    for resource, group in named.items():
        share = max(spread.rate for spread in group) / read.rate if read.rate > 0 else 0.0
        detail = (
            "; outside the batches: "
            + ", ".join(
                f"{spread.label} {spread.median_of('overhead_s') or 0.0:.2f} s of "
                f"{spread.seconds:.2f} s"
                for spread in group
            )
            if resource == STARTUP
            else ""
        )
        lines.append(
            f"- Bound by **{resource}**: {_names(group)} (the fastest of them at {share:.0%} "
            f"of the source's rate{detail})."
        )
    return "\n".join(lines)


def again_note(again: Measurement, setting: Spread) -> str:
    """Markdown: one more run of a setting against the range of its grid runs."""
    low, high = setting.rate_range
    inside = low <= again.rows_per_s <= high
    where = "inside" if inside else ("above" if again.rows_per_s > high else "below")
    return (
        f"Once more, `{setting.label}`: **{again.rows_per_s:,.0f} rows/s**, {where} its "
        f"{len(setting.runs)} grid runs' range ({low:,.0f}{DASH}{high:,.0f})."
    )


def recap(spreads: Sequence[Spread], *, read: Spread) -> str:
    """The lesson's three lines, each number from the runs."""
    top = tiers(spreads)[0]
    top_text = (
        f"`{top[0].label}` was fastest ({rows_per_s(top[0].rate)})"
        if len(top) == 1
        else f"{len(top)} settings tie at the top ({_names(top)})"
    )
    limits = dict.fromkeys(limit_of(spread, read=read) for spread in top)
    return "\n".join(
        [
            f"1. {top_text}, bound by {' / '.join(limits)}; the source alone reads "
            f"{rows_per_s(read.rate)}.",
            f"2. The writer: {writer_note(spreads)}",
            f"3. Settings whose min{DASH}max ranges overlap are a tie: these runs cannot rank "
            f"them, however their medians fall ({len(tiers(spreads))} tiers among "
            f"{len(spreads)} settings).",
        ]
    )
