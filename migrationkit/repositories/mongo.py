"""``UserMongoRepository``: count, seed and read a users collection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pymongo.errors import CursorNotFound

Document = Mapping[str, Any]

#: Give up on a collection whose cursor keeps dying rather than loop forever.
MAX_CURSOR_RESTARTS = 5


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

    async def iter_batches(
        self, batch_size: int, *, after: Any = None
    ) -> AsyncIterator[list[Document]]:
        """Yield every document exactly once, in ``_id`` order, ``batch_size`` at a time.

        Keyset paging: one cursor sorted by ``_id`` (any BSON type: MongoDB orders
        mixed types consistently), resumed with ``{"_id": {"$gt": last}}`` if the
        server drops it. Never ``skip``, and not one query per page: a server that
        cannot seek an ``_id`` range (SecantusDB scans the collection for each query)
        would make per-page queries quadratic.
        """
        last, restarts = after, 0
        batch: list[Document] = []
        while True:
            query = {} if last is None else {"_id": {"$gt": last}}
            cursor = self._collection.find(query, sort=[("_id", 1)], batch_size=batch_size)
            try:
                async for document in cursor:
                    batch.append(document)
                    if len(batch) == batch_size:
                        last = batch[-1]["_id"]
                        yield batch
                        batch = []
            except CursorNotFound:
                restarts += 1
                if restarts > MAX_CURSOR_RESTARTS:
                    raise
                if batch:
                    last = batch[-1]["_id"]
                    yield batch
                    batch = []
                continue
            finally:
                await cursor.close()
            break
        if batch:
            yield batch

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
