"""Lesson 06's paging: three ways to read a collection, and what one query costs the server.

The three readers, each a *pager* ``(collection, page_size) -> async iterator of pages``:

- **skip/limit**, the original project's: page *k* is ``find().skip(k * size).limit(size)``;
- **a keyset pager**, exercise 2's: each page is one query for the users after the last
  ``_id`` seen, ``find({"_id": {"$gt": last}}).sort("_id", 1).limit(size)``;
- **one cursor**, the kit's reader (:func:`migrationkit._source.keyset.iter_id_order`):
  one query sorted by ``_id`` with its index hinted, read to the end and cut into
  batches of ``size`` documents or 8 MiB of BSON, whichever comes first.

Whether a page costs the same whatever its number depends on the server, so the lesson
measures both the whole reads (each page timed, in rounds) and single queries: how
their cost follows what they ask for, and the plan the server reports (``explain``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from statistics import median
from typing import Any

from migrationkit._settings.settings import DEFAULT_BATCH_BYTES
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.keyset import id_order_options, iter_id_order
from migrationkit._source.repository import UserMongoRepository
from migrationkit.workshop.lessons.compare import overlaps, seconds_span, times
from migrationkit.workshop.lessons.lab import Lab
from migrationkit.workshop.lessons.overlap import REPEATS, TIMES, Spread, ms
from migrationkit.workshop.lessons.results import Measurement

#: Pages a whole read is cut into, as in exercise 2 (its page size is the users / 20).
PAGES = 20

#: ``pager(collection, page_size)``: every document once, a page at a time.
Pager = Callable[[Any, int], AsyncIterator[list[Any]]]

SKIP_LIMIT = "skip/limit (the original)"
KEYSET = "keyset pager (exercise 2)"
ONE_CURSOR = "one cursor (the kit's reader)"


def page_size_for(rows: int) -> int:
    """Exercise 2's page size for ``rows`` users: :data:`PAGES` pages."""
    return max(1, rows // PAGES)


# -- the three pagers ---------------------------------------------------------------------


def skip_limit_pages(collection: Any, page_size: int) -> AsyncIterator[list[Any]]:
    """The original project's pager (kept in the kit as a baseline): skip what came before."""
    return UserMongoRepository(collection).iter_batches_skip_limit(page_size)


async def keyset_pages(collection: Any, page_size: int) -> AsyncIterator[list[Any]]:
    """One query per page: at most ``page_size`` users after the last ``_id`` seen."""
    query: dict[str, Any] = {}  # the first page starts at the beginning
    while page := await collection.find(query).sort("_id", 1).limit(page_size).to_list(None):
        yield page
        if len(page) < page_size:
            return  # a short page is the last one
        query = {"_id": {"$gt": page[-1]["_id"]}}  # the next page starts after this one


def one_cursor_pages(collection: Any, page_size: int) -> AsyncIterator[list[Any]]:
    """The kit's reader, as ``migrate()`` reads: one cursor, batches of N documents or 8 MiB."""
    return iter_id_order(collection, batch_size=page_size, batch_bytes=DEFAULT_BATCH_BYTES)


PAGERS: dict[str, Pager] = {
    SKIP_LIMIT: skip_limit_pages,
    KEYSET: keyset_pages,
    ONE_CURSOR: one_cursor_pages,
}


@asynccontextmanager
async def lab_collection(lab: Lab) -> AsyncIterator[Any]:
    """The lab's users collection itself (a driver collection), on a client open for the block."""
    async with MongoConnectionHandler(
        lab.endpoints.mongo_uri, driver=lab.settings.mongo_driver
    ) as client:
        yield client[lab.settings.mongo_database][lab.settings.mongo_collection]


async def read_in_pages(collection: Any, pager: Pager, page_size: int) -> list[tuple[int, float]]:
    """Read everything with ``pager``: each page's size and seconds, from asking to having it."""
    pages = pager(collection, page_size)
    timed: list[tuple[int, float]] = []
    while True:
        started = time.perf_counter()
        page = await anext(pages, None)
        seconds = time.perf_counter() - started
        if page is None:
            return timed
        timed.append((len(page), seconds))


async def paged_reads(
    lab: Lab,
    *,
    page_size: int,
    pagers: Mapping[str, Pager] = PAGERS,
    repeats: int = REPEATS,
) -> list[Spread]:
    """Read the lab's collection with every pager, once a round for ``repeats`` rounds.

    One Spread per pager; each run's ``seconds`` is the whole read (the pages' times
    added up) and ``extra["page_s"]`` the time of every page, in order.
    """
    runs: dict[str, list[Measurement]] = {name: [] for name in pagers}
    async with lab_collection(lab) as collection:
        for _ in range(max(1, repeats)):
            for name, pager in pagers.items():
                pages = await read_in_pages(collection, pager, page_size)
                params = {"pager": name, "page_size": page_size}
                extra = {"page_s": tuple(seconds for _, seconds in pages)}
                rows = sum(size for size, _ in pages)
                total = sum(seconds for _, seconds in pages)
                runs[name].append(Measurement(name, rows, total, params, extra))
    return [Spread(name, measured[0].params, tuple(measured)) for name, measured in runs.items()]


def page_profile(spread: Spread) -> list[tuple[float, float, float]]:
    """Per page number (from 1): the median, min and max seconds over the runs.

    Runs that read a different number of pages are cut to the shortest.
    """
    per_run = [run.extra["page_s"] for run in spread.runs]
    count = min(len(pages) for pages in per_run)
    profile = []
    for page in range(count):
        times = [pages[page] for pages in per_run]
        profile.append((median(times), min(times), max(times)))
    return profile


# -- what one query costs -----------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One query the lesson times: its key, its label, and the cursor it opens."""

    key: str
    label: str
    open: Callable[[Any], Any]  # collection -> a cursor (it has to_list and explain)
    small: bool = False  # on the smaller collection


def probes(*, rows: int, page_size: int, after_id: Any, small_rows: int) -> list[Probe]:
    """The queries of the lesson, for a collection of ``rows`` users.

    ``after_id`` is the ``_id`` after which the last page starts (the keyset pager's
    last query); ``small_rows`` is the size of the smaller collection.
    """
    size, last_skip = f"{page_size:,}", rows - page_size
    id_order = id_order_options()
    return [
        Probe("one", "1 user: find().limit(1)", lambda c: c.find({}).limit(1)),
        Probe(
            "one_small",
            f"1 user, a collection of {small_rows:,}: find().limit(1)",
            lambda c: c.find({}).limit(1),
            small=True,
        ),
        Probe(
            "page",
            f"skip/limit, first page: find().limit({size})",
            lambda c: c.find({}).limit(page_size),
        ),
        Probe(
            "skip_last",
            f"skip/limit, last page: find().skip({last_skip:,}).limit({size})",
            lambda c: c.find({}).skip(last_skip).limit(page_size),
        ),
        Probe(
            "keyset_first",
            f"keyset, first page: find().sort(_id).limit({size})",
            lambda c: c.find({}).sort("_id", 1).limit(page_size),
        ),
        Probe(
            "keyset_last",
            f"keyset, last page: find({{_id: {{$gt: …}}}}).sort(_id).limit({size})",
            lambda c: c.find({"_id": {"$gt": after_id}}).sort("_id", 1).limit(page_size),
        ),
        Probe(
            "keyset_last_hinted",
            "keyset, last page, _id index hinted",
            lambda c: c.find({"_id": {"$gt": after_id}}, **id_order).limit(page_size),
        ),
        Probe(
            "all",
            f"all {rows:,} users: one cursor (the kit's query)",
            lambda c: c.find({}, **id_order),
        ),
    ]


def plan_of(explained: Mapping[str, Any]) -> str:
    """The stages of an ``explain``'s winning plan in the order data flows: ``COLLSCAN → SORT``."""
    plan = explained.get("queryPlanner", {}).get("winningPlan", {})
    plan = plan.get("queryPlan", plan)  # MongoDB's slot-based engine nests it one deeper
    stages = []
    while isinstance(plan, Mapping) and "stage" in plan:
        stages.append(str(plan["stage"]))
        plan = plan.get("inputStage")
    return " → ".join(reversed(stages)) or "unknown"


async def query_costs(
    lab: Lab, small: Lab, *, page_size: int, repeats: int = REPEATS
) -> list[Spread]:
    """Time every :func:`probes` query on the lab's collection (or ``small``'s), in rounds.

    Each run reads the query's whole answer. A Spread per query, with ``params``:
    ``key``, ``rows`` (the collection's users), ``returned`` and ``plan`` (its ``explain``).
    """
    async with lab_collection(lab) as collection, lab_collection(small) as smaller:
        rows = await collection.count_documents({})
        small_rows = await smaller.count_documents({})
        ids = [
            user["_id"] for user in await collection.find({}, ["_id"]).sort("_id", 1).to_list(None)
        ]
        after_id = ids[max(0, rows - page_size - 1)]
        chosen = probes(rows=rows, page_size=page_size, after_id=after_id, small_rows=small_rows)
        plans = {}
        for probe in chosen:
            plans[probe.key] = plan_of(
                await probe.open(smaller if probe.small else collection).explain()
            )
        runs: dict[str, list[Measurement]] = {probe.key: [] for probe in chosen}
        for _ in range(max(1, repeats)):
            for probe in chosen:
                started = time.perf_counter()
                answer = await probe.open(smaller if probe.small else collection).to_list(None)
                seconds = time.perf_counter() - started
                params = {
                    "key": probe.key,
                    "rows": small_rows if probe.small else rows,
                    "returned": len(answer),
                    "plan": plans[probe.key],
                }
                runs[probe.key].append(Measurement(probe.label, len(answer), seconds, params))
    return [
        Spread(measured[0].label, measured[0].params, tuple(measured)) for measured in runs.values()
    ]


# -- what the lesson says -----------------------------------------------------------------


def by_key(costs: Sequence[Spread]) -> dict[str, Spread]:
    return {str(spread.params["key"]): spread for spread in costs}


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole > 0 else "?"


def _times(a: float, b: float) -> str:
    return times(a / b) if b > 0 else "?"


def scans_the_collection(costs: Sequence[Spread]) -> bool:
    """Whether 1 user cost about a page, and more in a bigger collection: every query scans.

    Judged from the runs: asking for 1 user took at least half a page's time, and at
    least 1.5x the time it took in the smaller collection.
    """
    q = by_key(costs)
    one, small, page = q["one"], q["one_small"], q["page"]
    return one.seconds >= 0.5 * page.seconds and one.seconds >= 1.5 * small.seconds


def query_note(costs: Sequence[Spread]) -> str:
    """Markdown: what each query cost, against the collection, the page and the plan."""
    q = by_key(costs)
    one, small, page, whole = q["one"], q["one_small"], q["page"], q["all"]
    rows, small_rows = int(one.params["rows"]), int(small.params["rows"])
    keyset_first, keyset_last, hinted = q["keyset_first"], q["keyset_last"], q["keyset_last_hinted"]
    skip_last = q["skip_last"]
    scans = scans_the_collection(costs)
    lines = [
        (
            "- **A query costs what the collection costs, not what it returns.** "
            if scans
            else "- **What a query returns, and what it costs.** "
        )
        + f"Asking for 1 user took **{ms(one.seconds)}**, a page of "
        f"{int(page.params['returned']):,} **{ms(page.seconds)}**, and reading all {rows:,} "
        f"through one cursor **{ms(whole.seconds)}**: one user cost "
        f"{_share(one.seconds, whole.seconds)} of everything. In a collection of "
        f"{small_rows:,} users, 1 user took **{ms(small.seconds)}**: {rows / small_rows:.0f}"
        f"{TIMES} the users, {_times(one.seconds, small.seconds)} the time.",
        (
            "- **Where the page starts changes little.** "
            if _close(skip_last, page) and keyset_last.seconds >= 0.5 * keyset_first.seconds
            else "- **Where the page starts.** "
        )
        + f"skip/limit's last page took "
        f"**{ms(skip_last.seconds)}** against its first page's {ms(page.seconds)}; the keyset "
        f"pager's last page, which matches only {int(keyset_last.params['returned']):,} users, "
        f"**{ms(keyset_last.seconds)}** against its first page's {ms(keyset_first.seconds)}.",
        f"- **The keyset query also sorts.** The server's plans (`explain`): skip/limit "
        f"`{skip_last.params['plan']}`; keyset `{keyset_last.params['plan']}`. "
        "Their first pages: " + _first_pages(keyset_first, page),
        f"- **Hinting the `_id` index** changes the plan to `{hinted.params['plan']}`, yet the "
        f"keyset pager's last page still took **{ms(hinted.seconds)}**, "
        f"{_times(hinted.seconds, one.seconds)} the one-user query: "
        + (
            "the index plan did not make the page cheaper; every query still paid for the "
            "whole collection."
            if hinted.seconds >= 0.5 * one.seconds
            else "with the index the page got cheaper than a one-user query."
        ),
        "",
        (
            "So on this server every query pays for the whole collection first, whatever its "
            "`limit`, `skip` or `$gt` say: reading N users in pages of *p* costs N / *p* such "
            "queries, for skip/limit and keyset alike, and the keyset pager adds a sort of what "
            "its `$gt` leaves. The one cursor pays once."
            if scans
            else "On this server a query costs about what it returns: here a keyset pager pays "
            "for its pages only, as on MongoDB with an index."
        ),
    ]
    return "\n".join(lines)


def _close(a: Spread, b: Spread) -> bool:
    """Medians within a factor of 2 of each other."""
    return 0.5 * b.seconds <= a.seconds <= 2 * b.seconds


def _first_pages(keyset: Spread, skip: Spread) -> str:
    if overlaps(keyset, skip, span=seconds_span):
        return f"a tie, {ms(keyset.seconds)} and {ms(skip.seconds)} (their ranges overlap)."
    return f"a keyset page cost {_times(keyset.seconds, skip.seconds)} a skip/limit page."


def paging_note(reads: Sequence[Spread]) -> str:
    """Markdown: each pager's whole read and pages, and how they compare, from the runs."""
    named = {str(spread.params["pager"]): spread for spread in reads}
    lines = []
    for name, spread in named.items():
        profile = page_profile(spread)
        low, high = spread.seconds_range
        first, last = profile[0][0], profile[-1][0]
        lines.append(
            f"- **{name}:** {spread.runs[0].rows:,} users in {len(profile)} pages, "
            f"**{spread.seconds:.2f} s** (runs {low:.2f}{chr(8211)}{high:.2f} s); first page "
            f"{ms(first)}, last {ms(last)}."
        )
    skip, keyset, cursor = named.get(SKIP_LIMIT), named.get(KEYSET), named.get(ONE_CURSOR)
    if skip and keyset:
        lines.append(
            "- The keyset pager and skip/limit: a tie (their ranges overlap)."
            if overlaps(skip, keyset, span=seconds_span)
            else f"- The keyset pager took {_times(keyset.seconds, skip.seconds)} the time of "
            "skip/limit."
        )
    if cursor and skip and keyset:
        first_share = page_profile(cursor)[0][0] / cursor.seconds if cursor.seconds > 0 else 0.0
        lines.append(
            f"- The one cursor read everything {_times(skip.seconds, cursor.seconds)} faster "
            f"than skip/limit and {_times(keyset.seconds, cursor.seconds)} faster than the "
            f"keyset pager: one query, whose first page took {first_share:.0%} of its time; "
            "the later pages came from the open cursor."
        )
    return "\n".join(lines)
