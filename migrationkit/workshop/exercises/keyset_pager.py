"""Check for exercise 2: ``keyset_pages`` in the learner's ``keyset_pager.py``.

The learner's pager gets a collection on a client of the check's own, whose command
listener records every ``find`` it sends: so a hint can name the cause (``$gte``, no
sort, ``skip``, no limit), not only the symptom. The users go in shuffled, so the
order the server stores them in is not ``_id`` order and a pager without a sort
shows it. A pager that never stops meets a page budget and a time limit.

What the notebook measures once the check passes is in
:mod:`migrationkit.workshop.exercises.paging`.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

from pymongo import monitoring

from migrationkit._source.connection import MongoConnectionHandler
from migrationkit.workshop.exercises.feedback import (
    Feedback,
    Hint,
    Step,
    learner_code,
    run_steps,
)
from migrationkit.workshop.exercises.learner import attribute
from migrationkit.workshop.exercises.plug import exercise_lab
from migrationkit.workshop.lessons.lab import Lab

TITLE = "Exercise 2 · a keyset pager"
STUB_HINT = (
    "Loop: find at most page_size users sorted by _id, stop when none come back, "
    "yield the page, then ask for the users whose _id is greater ($gt) than its last one."
)
NAME = "keyset_pager"
ROWS, PAGE = 1_050, 100  # not a multiple: the last page is a short one
EDGE_ROWS, EDGE_PAGE = 200, 40  # a multiple: the last page is a full one
#: A pager still running after this many seconds is stuck (a right one needs < 1 s).
TIMEOUT_S = 10.0

GTE = (
    "With $gte the last user of a page matches again and opens the next page. "
    "Ask for the users whose _id is greater than ($gt) the last one you saw."
)
GTE_FOREVER = (
    "With $gte the last user matches every time, so the pager never gets past it: "
    "ask for _id greater than ($gt) the last one."
)
SORT = (
    "Without a sort the server answers in the order it stores users, not in _id order, "
    "so 'the users after the last _id' leaves some out and repeats others. "
    'Sort every find by _id: .sort("_id", 1).'
)
SKIP = (
    "Keyset paging needs no skip: the filter {'_id': {'$gt': last_id}} already starts "
    "after the last page. To skip n users the server walks past all n, for every page."
)
LIMIT = (
    "Ask for one page per query with .limit(page_size): without it the server prepares "
    "all the users after the last _id for every page, and the driver may fetch them all."
)
GT = (
    "From the second page on, filter on _id: {'_id': {'$gt': last_id}}, where last_id "
    "is the _id of the last user on the page before."
)
ONE_FIND_PER_PAGE = (
    "Each page is its own find: the users after the last _id, at most page_size of them. "
    "Reading one cursor in slices is not keyset paging (and a cursor cannot resume)."
)
OVERLAP = (
    "Pages overlap: the next page must start after the LAST user of this page, "
    'so remember page[-1]["_id"] and ask for _id greater ($gt) than it.'
)
MISSED = (
    "Some users never came: the next page must start right after the last user of "
    'this page, page[-1]["_id"], and every find must be sorted by _id.'
)
LAST_PAGE = (
    "The last page holds fewer than page_size users, and it never came: yield it before you stop."
)
BIG_PAGE = (
    "A page may hold at most page_size users: .limit(page_size), using the page_size "
    "argument (not a number of your own, and not page_size + 1)."
)
SMALL_PAGE = (
    "Only the last page may be shorter than page_size: ask for page_size users per "
    "page, .limit(page_size) (not page_size - 1)."
)
EMPTY_PAGE = (
    "Check that a page has users before you yield it: when a find returns none, "
    "stop (return) without yielding the empty list."
)
ORDER = (
    "Pages go from the smallest _id up: sort by _id ascending, .sort('_id', 1), "
    "and ask for the users after the last one with $gt."
)
NEVER_STOPS = (
    "When a find returns no users, every user has been read: stop with return "
    "(or break out of the loop)."
)
SAME_PAGE = (
    "It asks for the same users again and again: after each page, ask for the users "
    'whose _id is greater ($gt) than page[-1]["_id"].'
)
NOT_GENERATOR = (
    "keyset_pages should yield each page as it comes (async def with `yield page` "
    "in the loop), so the reader can pass one page on while the next is fetched."
)
NOT_ASYNC = (
    "Make it `async def keyset_pages(...)` and await each query: "
    "page = await collection.find(...).to_list(None)."
)
NO_PAGES = (
    "The first page is the first page_size users: find with an empty filter ({}), "
    "sorted by _id, and yield every page that has users in it."
)
PAGE_TYPE = (
    "Yield each page as a list of whole users (dicts with their _id), "
    "which is what await collection.find(...).to_list(None) returns."
)

Pager = Callable[[Any, int], Any]  # (collection, page_size) -> async iterator of pages


@dataclass(frozen=True)
class Find:
    """One ``find`` command the pager sent, as the server received it."""

    filter: Mapping[str, Any]
    sort: Mapping[str, Any]
    skip: int
    limit: int
    batch_size: int

    @classmethod
    def from_command(cls, command: Mapping[str, Any]) -> Find:
        return cls(
            filter=dict(command.get("filter") or {}),
            sort=dict(command.get("sort") or {}),
            skip=int(command.get("skip") or 0),
            limit=int(command.get("limit") or 0),
            batch_size=int(command.get("batchSize") or 0),
        )

    @property
    def sorted_by_id(self) -> bool:
        return next(iter(self.sort), None) == "_id"

    @property
    def ascending(self) -> bool:
        return self.sort.get("_id") == 1

    @property
    def at_most(self) -> int:
        """How many users one query answers with at most (0: no bound)."""
        bounds = [n for n in (self.limit, self.batch_size) if n > 0]
        return min(bounds, default=0)

    def uses(self, operator: str) -> bool:
        condition = self.filter.get("_id")
        return isinstance(condition, Mapping) and operator in condition


class FindRecorder(monitoring.CommandListener):
    """Keeps every ``find`` a client sends (and counts its ``getMore``\\ s)."""

    def __init__(self) -> None:
        self.finds: list[Find] = []
        self.get_mores = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.finds.append(Find.from_command(event.command))
        elif event.command_name == "getMore":
            self.get_mores += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class Run:
    """What one read by the learner's pager produced, and the queries it sent."""

    page_size: int
    ids: list[Any]  # the collection's _ids, in _id order
    pages: list[list[Mapping[str, Any]]] = field(default_factory=list)
    recorder: FindRecorder = field(default_factory=FindRecorder)

    @property
    def finds(self) -> list[Find]:
        return self.recorder.finds

    @property
    def read(self) -> list[Any]:
        return [user["_id"] for page in self.pages for user in page]

    @property
    def expected_pages(self) -> int:
        return -(-len(self.ids) // self.page_size)

    def any_find(self, test: Callable[[Find], bool]) -> bool:
        return any(test(find) for find in self.finds)


async def check(module: ModuleType) -> Feedback:
    pager = cast(Pager, attribute(module, "keyset_pages", kind="function"))
    main = Run(PAGE, [])

    async def exactly_once() -> str:
        nonlocal main
        main = await _run(pager, ROWS, PAGE)
        _expect_each_once(main)
        return f"{ROWS:,} users in {len(main.pages)} pages: none missed, none twice"

    async def in_order() -> str:
        _expect_order_and_sizes(main)
        sizes = [len(page) for page in main.pages]
        return (
            f"_id order throughout; {len(sizes) - 1} pages of {PAGE} and a last one of {sizes[-1]}"
        )

    async def asks_keyset() -> str:
        _expect_keyset_queries(main)
        return (
            f"{len(main.finds)} finds, each sorted by _id for at most {PAGE} users, "
            "from the second on {'_id': {'$gt': last_id}}, no skip"
        )

    async def stops() -> str:
        full = await _run(pager, EDGE_ROWS, EDGE_PAGE)
        _expect_each_once(full)
        _expect_order_and_sizes(full)
        empty = await _run(pager, 0, EDGE_PAGE)
        if empty.pages:
            raise Hint(f"on an empty collection it yielded {len(empty.pages)} page(s)", EMPTY_PAGE)
        return (
            f"{EDGE_ROWS} users in pages of {EDGE_PAGE}: {len(full.pages)} full pages, "
            "then it stopped; an empty collection: no pages"
        )

    return await run_steps(
        TITLE,
        [
            Step("reads every user exactly once", exactly_once),
            Step("pages come in _id order, page_size users each", in_order),
            Step("asks for the users after the last _id ($gt), never skips", asks_keyset),
            Step("stops after the last page, full or empty", stops),
        ],
        praise="Your pager reads like a keyset reader: every user once, each page asked "
        "for by where the last one ended. Measure it against skip/limit in the next cells.",
    )


# -- running the learner's pager ------------------------------------------------------------


async def _run(pager: Pager, rows: int, page_size: int) -> Run:
    """Seed ``rows`` users in shuffled order, then read them with the learner's pager."""
    lab = await exercise_lab(NAME, rows)
    async with recorded_collection(lab) as collection:
        users = await collection.find({}).to_list(None)
        random.Random(rows).shuffle(users)
        await collection.drop()
        if users:
            await collection.insert_many(users)
    run = Run(page_size, sorted(user["_id"] for user in users))
    async with recorded_collection(lab, run.recorder) as collection:
        try:
            await asyncio.wait_for(_read(pager, collection, run), TIMEOUT_S)
        except TimeoutError:
            _explain_no_end(run, f"it was still running after {TIMEOUT_S:.0f} s")
    return run


@asynccontextmanager
async def recorded_collection(
    lab: Lab, listener: monitoring.CommandListener | None = None
) -> AsyncIterator[Any]:
    """The exercise's collection on a Motor client of its own (recording commands if asked)."""
    if listener is None:
        async with MongoConnectionHandler(lab.endpoints.mongo_uri) as client:
            yield client[lab.settings.mongo_database][lab.settings.mongo_collection]
        return
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(lab.endpoints.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        yield client[lab.settings.mongo_database][lab.settings.mongo_collection]
    finally:
        client.close()


async def _read(pager: Pager, collection: Any, run: Run) -> None:
    """Collect the pages into ``run``; stop a pager that goes on past a page budget."""
    budget = 2 * run.expected_pages + 5
    with learner_code("keyset_pages()", stub_hint=STUB_HINT):
        pages = pager(collection, run.page_size)
        if inspect.iscoroutine(pages):
            await pages  # an untouched stub raises NotImplementedError here
            raise Hint("keyset_pages() returned instead of yielding pages", NOT_GENERATOR)
        if not hasattr(pages, "__anext__"):
            what = type(pages).__name__
            raise Hint(f"keyset_pages() gave back a {what}, not async pages", NOT_ASYNC)
        try:
            async for page in pages:
                run.pages.append(_as_page(page))
                if len(run.pages) > budget:
                    _explain_no_end(run, f"after {budget} pages it was still going")
        finally:
            await pages.aclose()


def _as_page(page: object) -> list[Mapping[str, Any]]:
    if not isinstance(page, list):
        raise Hint(f"it yielded a {type(page).__name__} where a page (a list) belongs", PAGE_TYPE)
    if not all(isinstance(user, Mapping) and "_id" in user for user in page):
        raise Hint("a page held something other than whole users with an _id", PAGE_TYPE)
    return page


# -- what went wrong ------------------------------------------------------------------------


def _explain_no_end(run: Run, what: str) -> None:
    """Raise the hint for a pager that does not stop."""
    what += f" ({len(run.ids):,} users in pages of {run.page_size} make {run.expected_pages})"
    firsts = [page[0]["_id"] for page in run.pages if page]
    if run.any_find(lambda find: find.uses("$gte")):
        raise Hint(what, GTE_FOREVER)
    if run.pages and not run.pages[-1]:
        raise Hint(what + ", yielding empty pages", NEVER_STOPS)
    if len(firsts) != len(set(firsts)):
        raise Hint(what + ", reading the same page again", SAME_PAGE)
    if len(run.read) != len(set(run.read)):
        raise Hint(what + ", reading users it had read before", OVERLAP)
    raise Hint(what, NEVER_STOPS)


def _expect_each_once(run: Run) -> None:
    counts = Counter(run.read)
    if counts == Counter(run.ids):
        return
    missed = [user for user in run.ids if user not in counts]
    twice = sum(count - 1 for count in counts.values() if count > 1)
    what = (
        f"of {len(run.ids):,} users in pages of {run.page_size}, {len(missed):,} never came "
        f"and {twice:,} came more than once ({len(run.pages)} pages)"
    )
    short = len(run.ids) % run.page_size
    if not run.pages:
        raise Hint(f"it yielded no pages for {len(run.ids):,} users", NO_PAGES)
    if run.any_find(lambda find: find.skip > 0):
        raise Hint(what, SKIP)
    if run.any_find(lambda find: find.uses("$gte")):
        raise Hint(what, GTE)
    if run.any_find(lambda find: not find.sorted_by_id):
        raise Hint(what, SORT)
    if not twice and short and missed == run.ids[-short:]:
        raise Hint(what, LAST_PAGE)
    raise Hint(what, OVERLAP if twice else MISSED)


def _expect_order_and_sizes(run: Run) -> None:
    read = run.read
    if read != sorted(read):
        first = next(n for n in range(1, len(read)) if read[n] < read[n - 1])
        what = f"user #{first + 1:,} it read has a smaller _id than user #{first:,}"
        if run.any_find(lambda find: not find.sorted_by_id):
            raise Hint(what, SORT)
        raise Hint(what, ORDER)
    sizes = [len(page) for page in run.pages]
    said = f"with page_size={run.page_size} the pages held {_listed(sizes)} users"
    if 0 in sizes:
        raise Hint(said, EMPTY_PAGE)
    if max(sizes, default=0) > run.page_size:
        raise Hint(said, BIG_PAGE)
    if any(size < run.page_size for size in sizes[:-1]):
        raise Hint(said, SMALL_PAGE)


def _listed(values: Sequence[int]) -> str:
    """``100, 100, 100, …, 100, 50 (11 in all)``: the first few and the last two."""
    if len(values) <= 6:
        return ", ".join(str(value) for value in values)
    shown = [*values[:3], "…", *values[-2:]]
    return ", ".join(str(value) for value in shown) + f" ({len(values)} in all)"


def _expect_keyset_queries(run: Run) -> None:
    finds, page_size = run.finds, run.page_size
    said = f"it sent {len(finds)} find{'s' * (len(finds) != 1)} for {len(run.pages)} pages"
    if run.any_find(lambda find: find.skip > 0):
        skips = [find.skip for find in finds if find.skip]
        raise Hint(f"{said}, with skip {_listed(skips)}", SKIP)
    if run.any_find(lambda find: not (find.sorted_by_id and find.ascending)):
        raise Hint(f"{said}, not all sorted by _id ascending", SORT)
    if run.any_find(lambda find: not 0 < find.at_most <= page_size):
        raise Hint(f"{said}, not all limited to {page_size} users", LIMIT)
    if run.recorder.get_mores:
        raise Hint(f"{said}, and {run.recorder.get_mores} getMore to read on", ONE_FIND_PER_PAGE)
    if len(finds) < len(run.pages):
        raise Hint(said, ONE_FIND_PER_PAGE)
    if not all(find.uses("$gt") for find in finds[1:]):
        raise Hint(f"{said}, not all with {{'_id': {{'$gt': ...}}}} after the first", GT)
    if len(finds) > len(run.pages) + 1:
        raise Hint(
            f"{said}; one per page, and one more that finds nothing, is all it takes",
            "Ask once per page: one find for the next page_size users after the last _id.",
        )
