"""Writers raced alone, for the exercise-3 notebook.

A whole migration is capped by its reading from MongoDB, whatever the writer:
:func:`time_writers_alone` times each writer by itself, on rows already in
PostgreSQL. The check of the learner's writer is
:mod:`migrationkit.workshop.exercises.insert_values`.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from migrationkit._normalize.rows import ROW_COLUMNS
from migrationkit.workshop.lessons.lab import Lab
from migrationkit.workshop.lessons.results import Measurement


async def time_writers_alone(
    lab: Lab, writers: Sequence[str], *, batch_size: int, slow_rows: int, repeats: int = 3
) -> list[Measurement]:
    """Each writer by itself, without reading or validating: rows/s into an emptied table.

    The rows are those in the lab's table (what its last migration wrote), written
    in batches through ``write_batch`` as a worker writes them; ``insert`` gets only
    the first ``slow_rows``. Each writer's best of ``repeats`` trials counts.
    """
    from migrationkit.workshop.bench.tables import create_users_table, drop_tables
    from migrationkit.workshop.bench.writers import time_writer

    table = lab.settings.pg_table.removesuffix("_users") + "_alone_users"
    connection = await asyncpg.connect(lab.endpoints.pg_dsn)
    try:
        rows = [
            tuple(record)
            for record in await connection.fetch(
                f"SELECT {', '.join(ROW_COLUMNS)} FROM {lab.settings.pg_table} ORDER BY id"
            )
        ]
        await create_users_table(connection, table)
        measurements = []
        for writer in writers:
            subset = rows[:slow_rows] if writer == "insert" else rows
            seconds = min(
                [
                    await time_writer(
                        connection, subset, table=table, writer=writer, batch_size=batch_size
                    )
                    for _ in range(repeats)
                ]
            )
            params = {"writer": writer, "run": "writer alone", "batch_size": batch_size}
            measurements.append(Measurement(writer, len(subset), seconds, params))
        await drop_tables(connection, [table])
    finally:
        await connection.close()
    return measurements
