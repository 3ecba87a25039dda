"""Repeated runs of one setting: how each is timed, and the :class:`Spread` that keeps them.

Every setting of a lesson runs ``repeats`` times in whole rounds (a busy spell on a
shared machine then hits every setting alike) and is kept as a Spread: its median and
range, which the charts draw as whiskers and the notes quote.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrationkit.workshop.lessons.results import Measurement

#: Runs of every setting; the charts show their median and range.
REPEATS = 3
#: The multiplication sign and the en dash of the lessons' text and charts (2.5x, 1-4).
TIMES, DASH = "\u00d7", "\u2013"
#: Where Linux counts every CPU's busy and idle time.
PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class Spread:
    """Several runs of one setting: the median and the range of their speed and time."""

    label: str
    params: Mapping[str, Any]
    runs: tuple[Measurement, ...] = field(repr=False)

    @property
    def workers(self) -> int:
        return int(self.params["workers"])

    @property
    def rates(self) -> list[float]:
        return [run.rows_per_s for run in self.runs]

    @property
    def rate(self) -> float:
        """The median rows/s."""
        return statistics.median(self.rates)

    @property
    def rate_range(self) -> tuple[float, float]:
        return min(self.rates), max(self.rates)

    @property
    def seconds(self) -> float:
        """The median duration."""
        return statistics.median(run.seconds for run in self.runs)

    @property
    def seconds_range(self) -> tuple[float, float]:
        durations = [run.seconds for run in self.runs]
        return min(durations), max(durations)

    @property
    def median_run(self) -> Measurement:
        """The run whose rows/s is the median (the lower middle one of an even count)."""
        ordered = sorted(self.runs, key=lambda run: run.rows_per_s)
        return ordered[(len(ordered) - 1) // 2]

    def median_of(self, name: str) -> float | None:
        """The median of ``extra[name]`` over the runs that have it (CPU share, busy share)."""
        values = [float(run.extra[name]) for run in self.runs if run.extra.get(name) is not None]
        return statistics.median(values) if values else None


# -- timing -------------------------------------------------------------------------------


def _process_cpu_s() -> float:
    """CPU time of this whole process (every thread, the proxy's too), user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_cpu_ticks(stat: Path = PROC_STAT) -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from Linux's ``/proc/stat``; else None."""
    try:
        fields = stat.read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(value) for value in fields[1:]]
    idle = sum(ticks[3:5])  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of all CPUs' time that was busy between two :func:`machine_cpu_ticks`."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


async def timed(
    run: Callable[[], Awaitable[int]], *, label: str, params: Mapping[str, Any] | None = None
) -> Measurement:
    """Await ``run()`` (it returns the rows it moved): its wall time, and the CPU it used.

    ``extra``: ``cpu_share``, this process's CPU time over the wall time (1.0 is one
    core busy throughout); ``machine_busy``, the share of all the machine's CPUs that
    were busy, every program included (``None`` without ``/proc/stat``).
    """
    ticks, cpu, started = machine_cpu_ticks(), _process_cpu_s(), time.perf_counter()
    rows = await run()
    seconds = time.perf_counter() - started
    extra = {
        "cpu_share": (_process_cpu_s() - cpu) / seconds if seconds > 0 else 0.0,
        "machine_busy": busy_share(ticks, machine_cpu_ticks()),
    }
    return Measurement(label, rows, seconds, dict(params or {}), extra)


Setting = tuple[str, Mapping[str, Any], Callable[[], Awaitable[int]]]


async def repeat_rounds(
    settings: Sequence[Setting],
    *,
    repeats: int = REPEATS,
    before: Callable[[], Awaitable[None]] | None = None,
) -> list[Spread]:
    """Time every ``(label, params, run)`` once a round for ``repeats`` rounds; a Spread each.

    ``before`` runs, untimed, before every run (to empty a table, say).
    """
    trials: dict[str, list[Measurement]] = {label: [] for label, _, _ in settings}
    for _ in range(max(1, repeats)):
        for label, params, run in settings:
            if before is not None:
                await before()
            trials[label].append(await timed(run, label=label, params=params))
    return [Spread(label, runs[0].params, tuple(runs)) for label, runs in trials.items()]
