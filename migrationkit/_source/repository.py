"""``UserMongoRepository``: count, seed and read a users collection."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any

from migrationkit._retry import RetryPolicy
from migrationkit._source.keyset import OPEN, iter_id_order

Document = Mapping[str, Any]
log = logging.getLogger(__name__)


class UserMongoRepository:
    """Reads and writes user documents in one collection (Motor or PyMongo async)."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    async def count(self) -> int:
        """Exact number of documents (a full count; may take a while on big collections)."""
        return int(await self._collection.count_documents({}))

    async def estimated_count(self) -> int:
        """Cheap count from collection metadata: good enough for a progress bar total."""
        return int(await self._collection.estimated_document_count())

    async def insert_many(self, documents: Sequence[Document]) -> int:
        """Insert documents unordered (faster; one bad document does not stop the rest)."""
        if not documents:
            return 0
        result = await self._collection.insert_many(list(documents), ordered=False)
        return len(result.inserted_ids)

    async def drop(self) -> None:
        await self._collection.drop()

    def iter_batches(
        self,
        batch_size: int,
        *,
        batch_bytes: int | None = None,
        after: Any = OPEN,
        raw: bool = False,
        policy: RetryPolicy | None = None,
    ) -> AsyncGenerator[list[Any], None]:
        """Yield every document (after the ``_id`` ``after``) once, in ``_id`` order.

        Keyset reading (:mod:`migrationkit._source.keyset`): one cursor sorted by ``_id``,
        re-opened at the last ``_id`` read after a transient fault. Never ``skip``,
        and not one query per page: a server that cannot seek an ``_id`` range
        (SecantusDB scans the collection for each query) would make that quadratic.

        A batch holds ``batch_size`` documents, or fewer when ``batch_bytes`` bytes of
        BSON come first (always at least one). With ``raw=True`` each document comes as
        its undecoded BSON ``bytes``: cheap to pickle to a worker process, which decodes
        it there.
        """
        return iter_id_order(
            self._collection,
            batch_size=batch_size,
            batch_bytes=batch_bytes,
            after=after,
            raw=raw,
            policy=policy,
        )

    async def iter_batches_skip_limit(self, batch_size: int) -> AsyncIterator[list[Document]]:
        """The original project's pager, kept as a teaching baseline: do not use it.

        Each page re-runs the query and skips everything before it, so reading N
        documents costs O(N²/batch_size) and pages shift if the collection changes.
        """
        skip = 0
        while True:
            page = await self._collection.find({}).skip(skip).limit(batch_size).to_list(None)
            if not page:
                return
            skip += len(page)
            yield page
