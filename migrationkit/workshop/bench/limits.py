"""The two limits a migration is measured against: raw source reads and raw sink COPY.

Both use the drivers directly, with nothing of migrationkit's in the way: no
validation, no workers, no queues. The COPY goes into a scratch table with the
users table's schema (identity key, unique ``mongo_id``), so the limit is the
sink's for this table, not for an index-free heap.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from migrationkit._normalize.rows import ROW_COLUMNS, Row, document_to_row
from migrationkit._source.repository import UserMongoRepository
from migrationkit.workshop.bench.report import Rate
from migrationkit.workshop.bench.tables import create_users_table, drop_tables, empty_table

#: How a raw read asks for the documents: in any order, or in ``_id`` order as a keyset
#: reader must, with or without hinting the ``_id`` index (a server without the hint may
#: sort the whole collection in memory first, as SecantusDB does).
READ_ORDERS: dict[str, dict[str, Any]] = {
    "natural": {},
    "id_hinted": {"sort": [("_id", 1)], "hint": [("_id", 1)]},
    "id_sorted": {"sort": [("_id", 1)]},
}


async def time_source_read(collection: Any, *, batch_size: int, order: str) -> tuple[int, float]:
    """Read every document with one plain cursor and drop it: (documents, seconds)."""
    options: dict[str, Any] = {"batch_size": batch_size, **READ_ORDERS[order]}
    count = 0
    started = time.perf_counter()
    async for _document in collection.find({}, **options):
        count += 1
    return count, time.perf_counter() - started


async def measure_source_read(
    collection: Any, *, batch_size: int, order: str, repeats: int
) -> Rate:
    """The best of ``repeats`` plain reads of the whole collection."""
    trials, count = [], 0
    for _ in range(repeats):
        count, seconds = await time_source_read(collection, batch_size=batch_size, order=order)
        trials.append(seconds)
    return Rate.best(count, trials)


async def load_rows(collection: Any, *, batch_size: int) -> list[Row]:
    """Every document as a validated row, in ``_id`` order: input for the sink measurements."""
    source = UserMongoRepository(collection)
    return [document_to_row(d) async for batch in source.iter_batches(batch_size) for d in batch]


async def measure_sink_copy(
    dsn: str, rows: list[Row], *, table: str, repeats: int, batch_size: int | None = None
) -> Rate:
    """The best of ``repeats`` COPYs of all ``rows``: one call, or one per ``batch_size`` rows."""
    step = batch_size or len(rows)
    connection = await asyncpg.connect(dsn)
    try:
        await create_users_table(connection, table)
        trials = []
        for _ in range(repeats):
            await empty_table(connection, table)
            started = time.perf_counter()
            for start in range(0, len(rows), step):
                records = rows[start : start + step]
                await connection.copy_records_to_table(table, records=records, columns=ROW_COLUMNS)
            trials.append(time.perf_counter() - started)
        await drop_tables(connection, [table])
    finally:
        await connection.close()
    return Rate.best(len(rows), trials)
