"""The three writers (COPY, ``executemany``, one INSERT per row) on the same pre-built rows.

Each writes as a worker does, through :meth:`UserPostgresRepository.write_batch`
(one transaction per batch, the load inside a savepoint), in batches, on one
connection, into an emptied table with the users schema: the cost of the writer
alone, without reading or validating anything.
"""

from __future__ import annotations

import time

import asyncpg

from migrationkit._mapping.spec import users_mapping
from migrationkit._normalize.rows import PreparedBatch, Row
from migrationkit._settings.settings import Writer
from migrationkit._target.loader import BatchLoader
from migrationkit._target.writers import WRITERS
from migrationkit.workshop.bench.report import Rate
from migrationkit.workshop.bench.tables import create_users_table, drop_tables, empty_table


async def time_writer(
    connection: asyncpg.Connection, rows: list[Row], *, table: str, writer: Writer, batch_size: int
) -> float:
    """Seconds to write ``rows`` into the emptied ``table``, ``batch_size`` at a time."""
    loader = BatchLoader(connection, mapping=users_mapping(table), writer=writer)
    await empty_table(connection, table)
    started = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        batch = PreparedBatch(rows=rows[start : start + batch_size], rejections=[], documents=[])
        await loader.write_batch(batch)
    return time.perf_counter() - started


async def measure_writers(
    dsn: str,
    rows: list[Row],
    *,
    table: str,
    batch_size: int,
    insert_rows: int,
    repeats: int,
) -> dict[str, Rate]:
    """rows/s of every writer; ``insert`` only on the first ``insert_rows`` rows (it is slow).

    COPY gets ``repeats`` trials, like the raw COPY it is compared with; the
    slower writers one each.
    """
    connection = await asyncpg.connect(dsn)
    try:
        await create_users_table(connection, table)
        rates: dict[str, Rate] = {}
        for writer in WRITERS:
            subset = rows[:insert_rows] if writer == "insert" else rows
            trials = [
                await time_writer(
                    connection, subset, table=table, writer=writer, batch_size=batch_size
                )
                for _ in range(repeats if writer == "copy" else 1)
            ]
            rates[writer] = Rate.best(len(subset), trials)
        await drop_tables(connection, [table])
    finally:
        await connection.close()
    return rates
