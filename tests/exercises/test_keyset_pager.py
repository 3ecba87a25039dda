"""Exercise 2 (keyset pager): the solution passes, the stub and common mistakes get their hints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from migrationkit.workshop.exercises import keyset_pager
from migrationkit.workshop.exercises.feedback import Feedback, Hint
from migrationkit.workshop.exercises.learner import load
from tests.exercises.conftest import EXERCISES, SOLUTIONS

pytestmark = pytest.mark.integration

NOTEBOOK = EXERCISES / "ex2_keyset_pager.ipynb"

PAGER = """
async def keyset_pages(collection, page_size):
    query = {{}}
    while True:
{body}
"""
FIND = 'page = await collection.find(query).sort("_id", 1).limit(page_size).to_list(None)'
NEXT = 'query = {"_id": {"$gt": page[-1]["_id"]}}'


STOP_ON_EMPTY = ("if not page:", "    return")
STOP_ON_SHORT = ("if len(page) < page_size:", "    return")


def pager(*lines: str) -> str:
    """A learner's ``keyset_pages`` whose loop body is ``lines``."""
    return PAGER.format(body="\n".join(f"        {line}" for line in lines))


def usual(*, find: str = FIND, next_query: str = NEXT) -> str:
    """The solution's loop (stopping on an empty page), with one line changed."""
    return pager(find, *STOP_ON_EMPTY, "yield page", next_query)


async def check(directory: Path) -> Feedback:
    """What ``exercises.check("keyset_pager", directory=...)`` answers."""
    try:
        return await keyset_pager.check(load("keyset_pager", directory))
    except Hint as problem:
        return Feedback(keyset_pager.TITLE, failed=("find your code", problem))


async def test_the_solution_passes_every_step() -> None:
    feedback = await check(SOLUTIONS)
    assert feedback.ok, str(feedback)
    assert [title for title, _ in feedback.passed][-1] == "stops after the last page, full or empty"
    assert "1,050 users in 11 pages: none missed, none twice" in str(feedback)


async def test_the_untouched_stub_fails_with_the_stub_hint() -> None:
    feedback = await check(EXERCISES)
    assert not feedback.ok
    assert feedback.hint == keyset_pager.STUB_HINT
    assert "keyset_pages() is not written yet" in str(feedback)


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        (usual(next_query=NEXT.replace("$gt", "$gte")), keyset_pager.GTE_FOREVER),
        (
            pager(FIND, "yield page", *STOP_ON_SHORT, NEXT.replace("$gt", "$gte")),
            keyset_pager.GTE,
        ),
        (usual(find=FIND.replace('.sort("_id", 1)', "")), keyset_pager.SORT),
        (usual(find=FIND.replace("(page_size)", "(page_size + 1)")), keyset_pager.BIG_PAGE),
        (usual(find=FIND.replace("(page_size)", "(page_size - 1)")), keyset_pager.SMALL_PAGE),
        (usual(find=FIND.replace("(page_size)", "(100)")), keyset_pager.BIG_PAGE),
        (pager(FIND, *STOP_ON_SHORT, "yield page", NEXT), keyset_pager.LAST_PAGE),
        (pager(FIND, "yield page", *STOP_ON_EMPTY, NEXT), keyset_pager.EMPTY_PAGE),
        (usual(next_query="pass"), keyset_pager.SAME_PAGE),
        (usual(next_query=NEXT.replace("page[-1]", "page[0]")), keyset_pager.OVERLAP),
        (
            pager(FIND, "yield page", NEXT.replace("page[-1]", "(page or [{'_id': 0}])[-1]")),
            keyset_pager.NEVER_STOPS,
        ),
    ],
    ids=[
        "gte-forever",
        "gte",
        "no-sort",
        "limit-plus-one",
        "limit-minus-one",
        "fixed-page-size",
        "drops-the-short-last-page",
        "yields-an-empty-page",
        "same-page-forever",
        "starts-after-the-first-user",
        "empty-pages-forever",
    ],
)
async def test_a_common_mistake_gets_its_own_hint(
    source: str, hint: str, variant: Callable[[str, str], Path]
) -> None:
    feedback = await check(variant("keyset_pager", source))
    assert not feedback.ok
    assert feedback.hint == hint, str(feedback)


SKIP_LIMIT = """
async def keyset_pages(collection, page_size):
    skip = 0
    while True:
        page = await collection.find({}).sort("_id", 1).skip(skip).limit(page_size).to_list(None)
        if not page:
            return
        yield page
        skip += len(page)
"""
ONE_BIG_FIND = """
async def keyset_pages(collection, page_size):
    users = await collection.find({}).sort("_id", 1).to_list(None)
    for start in range(0, len(users), page_size):
        yield users[start : start + page_size]
"""
ONE_CURSOR = """
async def keyset_pages(collection, page_size):
    page = []
    async for user in collection.find({}).sort("_id", 1).batch_size(page_size):
        page.append(user)
        if len(page) == page_size:
            yield page
            page = []
    if page:
        yield page
"""
DESCENDING = """
async def keyset_pages(collection, page_size):
    query = {}
    while True:
        page = await collection.find(query).sort("_id", -1).limit(page_size).to_list(None)
        if not page:
            return
        yield page
        query = {"_id": {"$lt": page[-1]["_id"]}}
"""
RETURNS_A_LIST = """
async def keyset_pages(collection, page_size):
    return [await collection.find({}).sort("_id", 1).limit(page_size).to_list(None)]
"""
NOT_ASYNC = """
def keyset_pages(collection, page_size):
    yield collection.find({}).sort("_id", 1).limit(page_size).to_list(None)
"""
YIELDS_USERS = """
async def keyset_pages(collection, page_size):
    async for user in collection.find({}).sort("_id", 1):
        yield user
"""


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        (SKIP_LIMIT, keyset_pager.SKIP),
        (ONE_BIG_FIND, keyset_pager.LIMIT),
        (ONE_CURSOR, keyset_pager.ONE_FIND_PER_PAGE),
        (DESCENDING, keyset_pager.ORDER),
        (RETURNS_A_LIST, keyset_pager.NOT_GENERATOR),
        (NOT_ASYNC, keyset_pager.NOT_ASYNC),
        (YIELDS_USERS, keyset_pager.PAGE_TYPE),
    ],
    ids=[
        "skip-limit",
        "one-find-sliced",
        "one-cursor",
        "descending",
        "returns-a-list",
        "not-async",
        "yields-users",
    ],
)
async def test_a_different_approach_gets_its_own_hint(
    source: str, hint: str, variant: Callable[[str, str], Path]
) -> None:
    feedback = await check(variant("keyset_pager", source))
    assert not feedback.ok
    assert feedback.hint == hint, str(feedback)


async def test_a_pager_that_never_stops_is_stopped_kindly(
    variant: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyset_pager, "TIMEOUT_S", 2.0)
    source = pager(FIND, "if page:", "    yield page", "    " + NEXT)  # asks on for ever
    feedback = await check(variant("keyset_pager", source))
    assert feedback.hint == keyset_pager.NEVER_STOPS
    assert "still running after 2 s" in str(feedback)


async def test_an_error_in_the_pager_names_the_line(variant: Callable[[str, str], Path]) -> None:
    source = pager(FIND, "yield page", NEXT, "if not page:", "    return")  # page[-1] of []
    feedback = await check(variant("keyset_pager", source))
    assert "IndexError" in str(feedback)
    assert "keyset_pager.py line" in str(feedback)


# -- the notebook -----------------------------------------------------------------------------

#: Until ``exercises.EXERCISES`` lists exercise 2, the notebook's check cell needs this.
