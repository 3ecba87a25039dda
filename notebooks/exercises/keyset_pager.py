# Your copy of the exercise: fill in the parts marked TODO, then run the check
# in the notebook. (Generated from solutions/keyset_pager.py by
# `python -m migrationkit.workshop.exercises.stubs`; `--reset keyset_pager` restores it.)
"""Exercise 2 · Page by _id: the keyset pager that replaces skip/limit.

The original project read the users page by page with ``find().skip(n).limit(size)``.
To skip ``n`` users the server walks past every one of them, so page ``k`` re-reads
the ``k`` pages before it: a page costs more the later it comes, and reading the
whole collection costs O(N²/size). If users are deleted meanwhile, every later page
shifts and some users are never read.

A *keyset* pager remembers where the last page ended and asks for the users after
it: ``{"_id": {"$gt": last_id}}``, sorted by ``_id``. MongoDB's ``_id`` index takes
it straight there, whatever the page number, and a deleted user moves nothing.
"""

from collections.abc import AsyncIterator
from typing import Any


async def keyset_pages(collection: Any, page_size: int) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield every user in ``collection`` once, in ``_id`` order, ``page_size`` at a time.

    Each page is one query: at most ``page_size`` users sorted by ``_id``, starting
    after the last ``_id`` of the page before (the first page starts at the
    beginning). When a query finds no users, the collection is done.
    ``collection`` is a Motor collection: ``await collection.find(...).to_list(None)``.
    """
    # TODO: loop: find at most page_size users sorted by _id, stop when none come
    # back, yield the page, then ask for the users after its last _id ($gt).
    raise NotImplementedError("keyset_pager: write this part")
