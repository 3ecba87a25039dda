"""What one COPY per batch costs against one long COPY, on the users table's schema.

Copies 200,000 pre-built rows in batches of 200,000 / 50,000 / 10,000 / 5,000 (best
of 2) and times a one-row COPY. Usage:
``MIGRATIONKIT_HOME=/tmp/mk-bench python docs/probes/copy_batch_sizes.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncpg
from bson import ObjectId

from migrationkit._mapping.spec import users_mapping
from migrationkit._normalize.rows import ROW_COLUMNS, document_to_row
from migrationkit._servers.embedded import EmbeddedServers
from migrationkit._target.table import UserPostgresRepository
from migrationkit._target.tables import create_target, drop_target
from migrationkit.workshop.lessons.simulation import user_documents

TABLE = "probe_copy_users"


async def main() -> None:
    home = Path(os.environ.get("MIGRATIONKIT_HOME", "/tmp/mk-bench"))
    endpoints = EmbeddedServers(home).start()
    rows = [document_to_row({**d, "_id": ObjectId()}) for d in user_documents(200_000)]
    connection = await asyncpg.connect(endpoints.pg_dsn)
    table = UserPostgresRepository(connection, table=TABLE)
    await drop_target(connection, users_mapping(TABLE))
    await create_target(connection, users_mapping(TABLE))
    try:
        for batch in (200_000, 50_000, 10_000, 5_000):
            trials = []
            for _ in range(2):
                await table.truncate()
                started = time.perf_counter()
                for start in range(0, len(rows), batch):
                    await connection.copy_records_to_table(
                        TABLE, records=rows[start : start + batch], columns=ROW_COLUMNS
                    )
                trials.append(time.perf_counter() - started)
            print(f"batches of {batch:>7,}: {min(trials):.3f} s")
        await table.truncate()
        started = time.perf_counter()
        for number in range(200):
            row = (f"one-{number}", "u", "u@example.org", 1, None)
            await connection.copy_records_to_table(TABLE, records=[row], columns=ROW_COLUMNS)
        print(f"one-row COPY: {(time.perf_counter() - started) / 200 * 1e3:.2f} ms a call")
    finally:
        await drop_target(connection, users_mapping(TABLE))
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
