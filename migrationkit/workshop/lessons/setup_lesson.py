"""What lesson 00 (setup) measures and says: the two servers, what a connection costs, the doctor.

The lesson talks to each server with its own driver (pymongo's ``AsyncMongoClient``,
asyncpg), then times what the kit does once per worker (open a connection) against
what it does for every batch (a round trip on an open one). Every sentence the lesson
prints about a number is made here, from its runs; addresses go through
:meth:`~migrationkit.Endpoints.describe`, passwords hidden.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from pymongo import AsyncMongoClient

from migrationkit._servers.doctor import Diagnosis, diagnose
from migrationkit._servers.endpoints import Endpoints
from migrationkit._settings.settings import Settings
from migrationkit.workshop.lessons.overlap import TIMES, Spread, ms
from migrationkit.workshop.lessons.results import Measurement, Table

#: Rounds of the connection timings (each round times all four, in turn).
REPEATS = 7
#: What the four timings are called, on the chart and in the text.
MONGO_OPEN = "MongoDB: open, ping, close"
MONGO_TRIP = "MongoDB: ping (open client)"
PG_OPEN = "PostgreSQL: open, SELECT 1, close"
PG_TRIP = "PostgreSQL: SELECT 1 (open)"

Call = Callable[[], Awaitable[object]]


async def time_calls(calls: Sequence[tuple[str, Call]], *, repeats: int = REPEATS) -> list[Spread]:
    """Await each ``(label, call)`` once a round for ``repeats`` rounds: a Spread of each.

    Whole rounds, so that a busy moment of a shared machine hits every call alike.
    """
    trials: dict[str, list[Measurement]] = {label: [] for label, _ in calls}
    for _ in range(max(1, repeats)):
        for label, call in calls:
            started = time.perf_counter()
            await call()
            trials[label].append(Measurement(label, 1, time.perf_counter() - started))
    return [Spread(label, {"what": label}, tuple(runs)) for label, runs in trials.items()]


async def connection_costs(endpoints: Endpoints, *, repeats: int = REPEATS) -> list[Spread]:
    """Opening a connection against one round trip on an open one, for each server."""

    async def mongo_open() -> None:
        fresh: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(endpoints.mongo_uri)
        async with fresh:
            await fresh.admin.command("ping")

    async def pg_open() -> None:
        connection = await asyncpg.connect(endpoints.pg_dsn)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(endpoints.mongo_uri)
    async with client:
        await client.admin.command("ping")  # connected before the first timed ping
        connection = await asyncpg.connect(endpoints.pg_dsn)
        try:
            calls: list[tuple[str, Call]] = [
                (MONGO_OPEN, mongo_open),
                (MONGO_TRIP, lambda: client.admin.command("ping")),
                (PG_OPEN, pg_open),
                (PG_TRIP, lambda: connection.fetchval("SELECT 1")),
            ]
            return await time_calls(calls, repeats=repeats)
        finally:
            await connection.close()


@dataclass(frozen=True)
class Costs:
    """One server's median cost of opening a connection and of a round trip on it."""

    server: str
    opening: Spread
    trip: Spread

    @property
    def ratio(self) -> float:
        return self.opening.seconds / self.trip.seconds if self.trip.seconds > 0 else 0.0


def by_server(spreads: Sequence[Spread]) -> list[Costs]:
    named = {spread.label: spread for spread in spreads}
    return [
        Costs("MongoDB", named[MONGO_OPEN], named[MONGO_TRIP]),
        Costs("PostgreSQL", named[PG_OPEN], named[PG_TRIP]),
    ]


def connection_note(spreads: Sequence[Spread]) -> str:
    """Markdown: for each server, what opening cost next to one round trip (medians)."""
    lines = []
    for costs in by_server(spreads):
        low, high = costs.trip.seconds_range
        lines.append(
            f"- **{costs.server}:** opening a connection (and one request on it) took "
            f"**{ms(costs.opening.seconds)}**, **{costs.ratio:,.0f}{TIMES}** one round trip on an "
            f"open connection ({ms(costs.trip.seconds)}; {ms(low)}\u2013{ms(high)} over "
            f"{len(costs.trip.runs)} rounds)."
        )
    return "\n".join(lines)


def servers_note(endpoints: Endpoints, *, mongo_version: str, pg_version: str) -> str:
    """Markdown: which servers answered, where, and whether the password stayed hidden."""
    password = urlsplit(endpoints.pg_dsn).password
    hidden = not password or password not in endpoints.describe()
    address = endpoints.describe().replace("\n", "  \n")  # a Markdown line break each
    return (
        f"Both servers answered: the MongoDB-wire server is version **{mongo_version}**, "
        f"PostgreSQL version **{pg_version}**.\n\n{address}\n\n"
        + (
            "The DSN's password is not in these lines: `describe()` shows `***` instead."
            if hidden
            else "**The password is visible above: do not share this output.**"
        )
    )


async def doctor(settings: Settings | None = None) -> Diagnosis:
    """What ``migrationkit doctor`` checks, from a notebook (it never starts a server)."""
    return await diagnose(settings or Settings())


def doctor_table(diagnosis: Diagnosis) -> Table:
    """The doctor's checks as a table: section, check, ok/info/FAIL, what it saw, the fix."""
    marks = {"ok": "ok", "info": "info", "problem": "FAIL"}
    rows = [
        [check.section, check.name, marks[check.level], check.detail, check.fix or ""]
        for check in diagnosis.checks
    ]
    return Table(["section", "check", "status", "detail", "fix"], rows)


def doctor_note(diagnosis: Diagnosis) -> str:
    """Markdown: how many checks passed, and what to do about the others."""
    count = len(diagnosis.checks)
    if diagnosis.ok:
        return f"The doctor made **{count} checks**: no problem found."
    problems = "; ".join(f"**{c.name}**: `{c.fix}`" for c in diagnosis.problems)
    return f"The doctor made {count} checks and found **{len(diagnosis.problems)}**: {problems}."


def runs_note(runs: Sequence[Measurement], *, read: Spread, near_share: float) -> str:
    """Markdown: how far apart repeated runs of one setting were, against the source's read."""
    rates = [run.rows_per_s for run in runs]
    low, high, median = min(rates), max(rates), statistics.median(rates)
    share = median / read.rate if read.rate else 0.0
    verdict = (
        "so the source's read set the pace"
        if share >= near_share
        else "so something else set the pace: lessons 02 and 03 find out what"
    )
    return (
        f"The same settings ({runs[0].label}) ran {len(runs)} times at "
        f"**{low:,.0f}\u2013{high:,.0f} rows/s** (median {median:,.0f}): the fastest run was "
        f"**{(high - low) / low if low else 0.0:.0%}** faster than the slowest, with nothing "
        f"changed. Between two settings, a difference smaller than that tells nothing. The "
        f"median is **{share:.0%}** of the rate at which the source alone can be read "
        f"({read.rate:,.0f} rows/s, median of {len(read.runs)} reads), {verdict}."
    )


def recap(
    costs: Sequence[Spread],
    diagnosis: Diagnosis,
    runs: Sequence[Measurement],
    *,
    mongo_version: str,
    pg_version: str,
) -> str:
    """The lesson's three lines, each number from the runs."""
    servers = by_server(costs)
    ratios = ", ".join(
        f"{c.server} {ms(c.opening.seconds)} vs {ms(c.trip.seconds)}" for c in servers
    )
    rates = [run.rows_per_s for run in runs]
    return "\n".join(
        [
            f"1. Two servers answer, found by `resolve_endpoints(Settings())` and shown by "
            f"`Endpoints.describe()` with the password hidden: a MongoDB-wire server "
            f"{mongo_version} and PostgreSQL {pg_version}.",
            f"2. Opening a connection costs "
            f"{min(c.ratio for c in servers):,.0f}\u2013{max(c.ratio for c in servers):,.0f}"
            f"{TIMES} a round trip on an open one ({ratios}): the kit opens its connections "
            f"once per worker and reuses them for every batch.",
            f"3. The doctor made {len(diagnosis.checks)} checks "
            + ("and found nothing to fix" if diagnosis.ok else "and named what to fix")
            + f"; the same migration ran {len(runs)} times at "
            f"{min(rates):,.0f}\u2013{max(rates):,.0f} rows/s: that spread is noise.",
        ]
    )
