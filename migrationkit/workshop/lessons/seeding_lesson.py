"""What lesson 01 (seeding) measures and says: making fake users, and inserting them in batches.

Each ``insert_many`` is one request: a round trip, and the server's work on the
command, paid once per batch on top of the work per document. So the time per
document is about ``per_request / batch_size + per_document``; the lesson fits those
two costs to its own runs (:func:`fit_costs`) and says, for each batch size, which
one set the pace. Every setting runs :data:`REPEATS` times in whole rounds
(:class:`~migrationkit.workshop.lessons.overlap.Spread`: median and range), and the
server's own CPU is read from ``/proc`` when the lesson runs the embedded one.
"""

from __future__ import annotations

import inspect
import os
import statistics
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from faker import Faker

from migrationkit._servers.embedded import EmbeddedServers
from migrationkit.workshop.lessons.lab import Lab
from migrationkit.workshop.lessons.overlap import (
    REPEATS,
    TIMES,
    Setting,
    Spread,
    machine_note,
    timed,
)
from migrationkit.workshop.seeding import UserFactory, seed_users

#: The batch sizes the lesson times: one document per request up to ten thousand.
BATCH_SIZES = (1, 10, 100, 1_000, 10_000)
#: A batch size inserts at most this many requests' worth of users (batch 1: 200 users),
#: enough to time it without spending minutes on the slowest setting.
MAX_REQUESTS = 200
#: ``seed_users``' own batch size, read from its signature so the text stays true.
PACKAGE_BATCH = int(inspect.signature(seed_users).parameters["batch_size"].default)
#: A share of a document's time above this was the request's fixed cost: requests bound it.
REQUEST_BOUND = 0.5
#: A process using this share of one core (or the machine this share of all) is CPU-bound.
CPU_BOUND = 0.9

YOURS, PACKAGE = "your insert_many loop", "seed_users (the package)"
REQUESTS = "the requests: a round trip and the server's work on each command"
SERVER_CPU = "the server's CPU: its one thread busy storing documents"
MACHINE = "the CPUs: all of them busy (server, notebook and other programs)"
DOCUMENTS = "the server's work per document"

#: A user maker of the lesson's own: ``make(fake, number) -> document``.
MakeUser = Callable[[Faker, int], dict[str, Any]]
#: ``insert(mongo_uri, users, batch_size=N) -> inserted``: the lesson's own seeding code.
InsertCode = Callable[..., Awaitable[int]]


def users_for(batch_size: int, rows: int) -> int:
    """How many users a batch size inserts: ``rows``, or :data:`MAX_REQUESTS` batches."""
    return min(rows, batch_size * MAX_REQUESTS)


# -- the server's CPU -------------------------------------------------------------------


def server_pid(lab: Lab, *, servers: EmbeddedServers | None = None) -> int | None:
    """The embedded MongoDB-wire server's process id, if the lab uses it; else None.

    ``servers``: the embedded servers to ask (default: those of ``MIGRATIONKIT_HOME``).
    """
    if lab.settings.mongo_uri is not None:
        return None  # a server of the user's: its CPU is not ours to read
    statuses = {status.name: status for status in (servers or EmbeddedServers()).status()}
    status = statuses.get("mongodb")
    return status.pid if status is not None and status.running else None


def process_cpu_s(pid: int | None, *, proc: Path = Path("/proc")) -> float | None:
    """CPU seconds (user and system) a process used so far, from Linux's ``/proc``; else None."""
    if pid is None:
        return None
    try:
        fields = (proc / str(pid) / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def rounds(
    settings: Sequence[Setting],
    *,
    repeats: int = REPEATS,
    before: Callable[[], Awaitable[None]] | None = None,
    pid: int | None = None,
) -> list[Spread]:
    """Time every setting once a round, ``repeats`` rounds; with ``pid``, that process's CPU.

    As :func:`~migrationkit.workshop.lessons.overlap.repeat_rounds`, plus
    ``extra["server_cores"]``: the CPU process ``pid`` used over the run's wall time.
    """
    trials: dict[str, list[Any]] = {label: [] for label, _, _ in settings}
    for _ in range(max(1, repeats)):
        for label, params, run in settings:
            if before is not None:
                await before()
            cpu = process_cpu_s(pid)
            measurement = await timed(run, label=label, params=params)
            after = process_cpu_s(pid)
            cores = (
                (after - cpu) / measurement.seconds
                if cpu is not None and after is not None and measurement.seconds > 0
                else None
            )
            extra = {**measurement.extra, "server_cores": cores}
            trials[label].append(replace(measurement, extra=extra))
    return [Spread(label, runs[0].params, tuple(runs)) for label, runs in trials.items()]


# -- making users -----------------------------------------------------------------------


async def generation_runs(
    make_user: MakeUser, *, rows: int, repeats: int = REPEATS
) -> list[Spread]:
    """``rows`` users made with ``make_user`` (one Faker call per field), then by UserFactory."""

    async def with_faker() -> int:
        fake = Faker()
        fake.seed_instance(0)
        return sum(1 for number in range(rows) if make_user(fake, number))

    async def with_pools() -> int:
        return sum(1 for _ in UserFactory(seed=0).users(rows))

    settings: list[Setting] = [
        ("Faker, one call per field", {"how": "faker"}, with_faker),
        ("UserFactory (pooled names)", {"how": "pools"}, with_pools),
    ]
    return await rounds(settings, repeats=repeats)


def generation_note(making: Sequence[Spread]) -> str:
    """Markdown: how fast each way made users, and how many times faster the pools were."""
    faker, pools = making
    return (
        f"- **{faker.label}:** {faker.rate:,.0f} users/s (median of {len(faker.runs)}).\n"
        f"- **{pools.label}:** {pools.rate:,.0f} users/s: "
        f"**{pools.rate / faker.rate:,.0f}{TIMES}** as fast, as it asks Faker only to fill its "
        f"pools and then picks from them."
    )


# -- inserting --------------------------------------------------------------------------


async def seeding_runs(
    insert: InsertCode,
    lab: Lab,
    *,
    rows: int,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    repeats: int = REPEATS,
) -> list[Spread]:
    """Your ``insert`` at every batch size, and ``seed_users`` at its own, into an empty collection.

    Every run inserts fresh ``UserFactory(seed=0)`` users (``insert_many`` adds an ``_id``
    to each document it sends); the collection is dropped, untimed, before each run.
    """

    async def drop() -> None:
        async with lab.collection() as users:
            await users.drop()

    def yours(batch_size: int, count: int) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            users = UserFactory(seed=0).users(count)
            return await insert(lab.endpoints.mongo_uri, users, batch_size=batch_size)

        return run

    async def package() -> int:
        async with lab.collection() as users:
            return await seed_users(users, rows, batch_size=PACKAGE_BATCH)

    settings: list[Setting] = [
        (
            f"batch {size:,}",
            {"batch_size": size, "code": YOURS, "users": users_for(size, rows)},
            yours(size, users_for(size, rows)),
        )
        for size in batch_sizes
    ]
    settings.append(
        (PACKAGE, {"batch_size": PACKAGE_BATCH, "code": PACKAGE, "users": rows}, package)
    )
    spreads = await rounds(settings, repeats=repeats, before=drop, pid=server_pid(lab))
    lab.seeded = None  # the last run left fewer users, or others: a lab seeds again
    return spreads


def yours_only(spreads: Sequence[Spread]) -> list[Spread]:
    return [spread for spread in spreads if spread.params["code"] == YOURS]


def package_spread(spreads: Sequence[Spread]) -> Spread:
    return next(spread for spread in spreads if spread.params["code"] == PACKAGE)


@dataclass(frozen=True)
class Costs:
    """Seconds a request costs on its own, and seconds each document costs inside one."""

    per_request_s: float
    per_document_s: float

    def seconds_per_document(self, batch_size: int) -> float:
        return self.per_request_s / batch_size + self.per_document_s

    def rate(self, batch_size: float) -> float:
        """The documents/s the two costs predict at ``batch_size``."""
        return 1.0 / (self.per_request_s / batch_size + self.per_document_s)

    def request_share(self, batch_size: int) -> float:
        """The share of a document's time that was its request's fixed cost."""
        return self.per_request_s / batch_size / self.seconds_per_document(batch_size)

    @property
    def ceiling(self) -> float:
        """The documents/s no batch size passes: one over the cost per document."""
        return 1.0 / self.per_document_s if self.per_document_s > 0 else float("inf")


def fit_costs(spreads: Sequence[Spread]) -> Costs:
    """Least squares of seconds per document = per_request / batch + per_document (medians).

    Each batch size weighs by its own scale (relative errors), so the big batches'
    microseconds count as much as batch 1's milliseconds. Costs never go below zero.
    """
    points = [(1.0 / s.params["batch_size"], 1.0 / s.rate) for s in spreads if s.rate > 0]
    if len(points) < 2:
        raise ValueError("fitting the costs needs at least two batch sizes")
    # Weighted least squares with weight 1/y^2 on y = a*x + c: solve the 2x2 normal equations.
    weights = [1.0 / (y * y) for _, y in points]
    sw = sum(weights)
    sx = sum(w * x for w, (x, _) in zip(weights, points, strict=True))
    sy = sum(w * y for w, (_, y) in zip(weights, points, strict=True))
    sxx = sum(w * x * x for w, (x, _) in zip(weights, points, strict=True))
    sxy = sum(w * x * y for w, (x, y) in zip(weights, points, strict=True))
    determinant = sw * sxx - sx * sx
    per_request = (sw * sxy - sx * sy) / determinant
    per_document = (sy - per_request * sx) / sw
    if per_document <= 0:  # no sign of a per-document limit: all of it was requests
        per_document, per_request = (
            0.0,
            sum(x * y for x, y in points) / sum(x * x for x, _ in points),
        )
    if per_request < 0:  # no sign of a fixed cost: all of it was documents
        per_request, per_document = 0.0, statistics.median(y for _, y in points)
    return Costs(per_request, per_document)


def bound_by(spread: Spread, costs: Costs) -> str:
    """Which resource set this batch size's pace, judged from the fit and the CPU it used."""
    if costs.request_share(spread.params["batch_size"]) >= REQUEST_BOUND:
        return REQUESTS
    if (spread.median_of("server_cores") or 0.0) >= CPU_BOUND:
        return SERVER_CPU
    if (spread.median_of("machine_busy") or 0.0) >= CPU_BOUND:
        return MACHINE
    return DOCUMENTS


def _cores(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def seeding_table(spreads: Sequence[Spread], costs: Costs) -> str:
    """Markdown: per batch size, the users, the median rate, the CPU used and the bound."""
    lines = [
        "| batch size | users | documents/s (median) | min\u2013max | request share "
        "| server CPU (cores) | notebook CPU (cores) | bound by |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for spread in yours_only(spreads):
        low, high = spread.rate_range
        size = spread.params["batch_size"]
        lines.append(
            f"| {size:,} | {spread.params['users']:,} | {spread.rate:,.0f} | "
            f"{low:,.0f}\u2013{high:,.0f} | {costs.request_share(size):.0%} | "
            f"{_cores(spread.median_of('server_cores'))} | "
            f"{_cores(spread.median_of('cpu_share'))} | {bound_by(spread, costs)} |"
        )
    return "\n".join(lines)


def seeding_summary(spreads: Sequence[Spread], making: Sequence[Spread]) -> str:
    """Markdown: the costs the runs imply, the gain of batching, the package beside your code."""
    own = sorted(yours_only(spreads), key=lambda s: s.params["batch_size"])
    costs = fit_costs(own)
    smallest, largest = own[0], own[-1]
    fastest = max(own, key=lambda s: s.rate)
    package = package_spread(spreads)
    same = next((s for s in own if s.params["batch_size"] == PACKAGE_BATCH), None)
    pools = making[-1]
    lines = [
        f"- **{largest.params['batch_size']:,} documents per request** inserted "
        f"{largest.rate:,.0f} documents/s, **{largest.rate / smallest.rate:,.0f}{TIMES}** "
        f"the {smallest.rate:,.0f} of **{smallest.params['batch_size']:,} per request**; "
        f"the fastest was batch {fastest.params['batch_size']:,} ({fastest.rate:,.0f}).",
        f"- Fitted to these medians, a request costs about **{costs.per_request_s * 1e3:.2f} ms** "
        f"on its own and a document about **{costs.per_document_s * 1e6:,.0f} \u00b5s** inside "
        f"one: no batch size passes about {costs.ceiling:,.0f} documents/s on this server.",
    ]
    if same is not None:
        lines.append(
            f"- **`seed_users`** (batch {PACKAGE_BATCH:,}) inserted {package.rate:,.0f} "
            f"documents/s, **{package.rate / same.rate:.0%}** of your loop's "
            f"{same.rate:,.0f} at the same batch size: the same requests, plus a progress bar."
        )
    lines.append(
        f"- Making the users is not the limit: the factory makes {pools.rate:,.0f} users/s, "
        f"{pools.rate / fastest.rate:,.0f}{TIMES} what the server stores at best."
    )
    return "\n".join(lines) + "\n\n" + seeding_table(spreads, costs)


def seeding_note(lab: Lab, *, rows: int, batch_sizes: Sequence[int] = BATCH_SIZES) -> str:
    """Markdown: this lesson's sizes, then the machine note every lesson shares."""
    sizes = ", ".join(f"{size:,}" for size in batch_sizes)
    capped = [size for size in batch_sizes if users_for(size, rows) < rows]
    cap = (
        f" (batch {', '.join(f'{s:,}' for s in capped)}: {MAX_REQUESTS:,} requests' worth, "
        f"{', '.join(f'{users_for(s, rows):,}' for s in capped)} users)"
        if capped
        else ""
    )
    return (
        f"**This run:** {rows:,} users into `{lab.settings.mongo_collection}`, in batches of "
        f"{sizes}{cap}; {REPEATS} runs a setting. {machine_note()}"
    )


def recap(making: Sequence[Spread], spreads: Sequence[Spread]) -> str:
    """The lesson's three lines, each number from the runs."""
    faker, pools = making
    own = sorted(yours_only(spreads), key=lambda s: s.params["batch_size"])
    costs = fit_costs(own)
    smallest, largest = own[0], own[-1]
    package = package_spread(spreads)
    return "\n".join(
        [
            f"1. Faker makes realistic users but slowly ({faker.rate:,.0f} users/s here); "
            f"`UserFactory` asks it once for pools of names and combines them, "
            f"{pools.rate / faker.rate:,.0f}{TIMES} as fast, and the same seed gives the same "
            f"users.",
            f"2. One `insert_many` is one request: about {costs.per_request_s * 1e3:.2f} ms "
            f"each here, so {largest.params['batch_size']:,} documents per request stored "
            f"{largest.rate / smallest.rate:,.0f}{TIMES} as many per second as "
            f"{smallest.params['batch_size']:,}, up to the server's limit of about "
            f"{costs.ceiling:,.0f} documents/s.",
            f"3. `seed_users` is that loop (drop, factory, `insert_many` in batches of "
            f"{PACKAGE_BATCH:,}): {package.rate:,.0f} documents/s.",
        ]
    )


def same_users(first: Iterable[Mapping[str, Any]], second: Iterable[Mapping[str, Any]]) -> bool:
    """Whether two runs made the same users (``_id`` aside, which the server adds)."""
    strip = [{k: v for k, v in user.items() if k != "_id"} for user in first]
    return strip == [{k: v for k, v in user.items() if k != "_id"} for user in second]
