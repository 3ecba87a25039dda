"""Measurements the exercise-2 notebook shows, once the learner's pager passes its check.

The check itself is :mod:`migrationkit.workshop.exercises.keyset_pager`. Here are the pagers
the learner's is raced against (the original project's skip/limit, migrationkit's
one cursor), the time each page takes, and what each pager misses while users are
deleted under it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

from migrationkit._source.repository import UserMongoRepository
from migrationkit.workshop.exercises.keyset_pager import NAME, Pager, recorded_collection
from migrationkit.workshop.exercises.plug import exercise_lab
from migrationkit.workshop.lessons.results import Measurement


def skip_limit_pages(collection: Any, page_size: int) -> AsyncIterator[list[Any]]:
    """The original project's pager: ``find().skip(n).limit(page_size)``, page after page."""
    return UserMongoRepository(collection).iter_batches_skip_limit(page_size)


def one_cursor_pages(collection: Any, page_size: int) -> AsyncIterator[list[Any]]:
    """migrationkit's own reader: one cursor in ``_id`` order, cut into pages."""
    return UserMongoRepository(collection).iter_batches(page_size)


async def time_per_page(
    pagers: Mapping[str, Pager], *, rows: int, page_size: int
) -> list[Measurement]:
    """Read ``rows`` users with each pager; one measurement per page (``params["page"]``)."""
    lab = await exercise_lab(NAME, rows)
    results = []
    async with recorded_collection(lab) as collection:
        for name, pager in pagers.items():
            pages = pager(collection, page_size)
            number = 0
            while True:
                started = time.perf_counter()
                page = await anext(pages, None)
                seconds = time.perf_counter() - started
                if page is None:
                    break
                number += 1
                params = {"pager": name, "page": number, "page_size": page_size}
                results.append(Measurement(name, len(page), seconds, params))
    return results


async def read_while_users_leave(
    pagers: Mapping[str, Pager], *, rows: int, page_size: int, leaving: int
) -> list[Measurement]:
    """Read with each pager while ``leaving`` random users are deleted after every page.

    Each pager starts from the same ``rows`` users and meets the same deletions, page
    for page. ``extra["missed"]``: users still there at the end that it never read.
    """
    results = []
    for name, pager in pagers.items():
        lab = await exercise_lab(NAME, rows)
        rng = random.Random(0)
        async with recorded_collection(lab) as collection:
            users = await collection.find({}, ["_id"]).to_list(None)
            remaining = sorted(user["_id"] for user in users)
            read: Counter[Any] = Counter()
            pages = 0
            started = time.perf_counter()
            async for page in pager(collection, page_size):
                pages += 1
                read.update(user["_id"] for user in page)
                gone = rng.sample(remaining, min(leaving, len(remaining)))
                await collection.delete_many({"_id": {"$in": gone}})
                remaining = sorted(set(remaining) - set(gone))
            seconds = time.perf_counter() - started
        missed = sum(1 for user in remaining if user not in read)
        extra = {"missed": missed, "pages": pages, "deleted": rows - len(remaining)}
        results.append(Measurement(name, sum(read.values()), seconds, {"pager": name}, extra))
    return results
