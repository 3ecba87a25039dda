"""When does the first batch arrive, and does a smaller ``_id`` range arrive sooner?

Reads the benchmark's collection (``migrationkit bench`` seeds ``bench_users``) whole,
then from its median and third-quartile ``_id`` on, with query operators and with
index bounds, and prints the time to the first batch and to the last. Usage:
``MIGRATIONKIT_HOME=/tmp/mk-bench python docs/probes/first_batch_and_ranges.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from bson.raw_bson import RawBSONDocument
from motor.motor_asyncio import AsyncIOMotorClient

from migrationkit._servers.embedded import EmbeddedServers

BATCH = 10_000
BY_ID = [("_id", 1)]


async def drain(cursor: Any) -> tuple[float, float, int]:
    started, first, count = time.perf_counter(), 0.0, 0
    while documents := await cursor.to_list(BATCH):
        first = first or time.perf_counter() - started
        count += len(documents)
    return first, time.perf_counter() - started, count


async def main() -> None:
    home = Path(os.environ.get("MIGRATIONKIT_HOME", "/tmp/mk-bench"))
    endpoints = EmbeddedServers(home).start()
    client: Any = AsyncIOMotorClient(endpoints.mongo_uri, document_class=RawBSONDocument)
    users = client["migrationkit"]["bench_users"]
    ids = [d["_id"] async for d in users.find({}, {"_id": 1}, batch_size=50_000).sort(BY_ID)]
    median, quartile = ids[len(ids) // 2], ids[len(ids) * 3 // 4]

    def whole() -> Any:
        return users.find({}, batch_size=BATCH).sort(BY_ID).hint(BY_ID)

    cases = {
        "whole, sorted + hint": whole,
        "_id >= median": lambda: (
            users.find({"_id": {"$gte": median}}, batch_size=BATCH).sort(BY_ID).hint(BY_ID)
        ),
        "_id >= 3rd quartile": lambda: (
            users.find({"_id": {"$gte": quartile}}, batch_size=BATCH).sort(BY_ID).hint(BY_ID)
        ),
        "index min = median": lambda: whole().min([("_id", median)]),
        "index min = 3rd quartile": lambda: whole().min([("_id", quartile)]),
    }
    for label, make in cases.items():
        first, total, count = await drain(make())
        print(f"{label:<26} first batch {first:5.2f} s  all {total:5.2f} s  {count:,} documents")
    client.close()


if __name__ == "__main__":
    asyncio.run(main())
