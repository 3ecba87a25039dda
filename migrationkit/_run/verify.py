"""``verify``: compare source and target beyond counts.

For each range of documents in ``_id`` order, the source says what the target
should hold: a row (the transform's output) or, for a document the transform
rejects, an entry in the dead-letter table. The target must hold each ``_id``
exactly once, in one of the two tables, and a checksum of each range's rows must
match — so a wrong value is found, not only a missing row. Ranges whose checksums
differ are compared row by row to name the first differences.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from migrationkit._normalize.rows import ROW_COLUMNS, Row, Transform, document_to_row, prepare_batch
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.repository import UserMongoRepository
from migrationkit._target.connection import ReconnectingConnection
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.tables import count_target
from migrationkit._target.users import UserPostgresRepository

RANGE_SIZE = 10_000
MAX_DIFFERENCES = 20


@dataclass
class Difference:
    mongo_id: str
    problem: str

    def __str__(self) -> str:
        return f"_id {self.mongo_id}: {self.problem}"


@dataclass
class VerifyReport:
    """The verdict: ``ok`` when every document is where it should be, with its values."""

    source_documents: int = 0
    table_rows: int = 0
    rejected_rows: int = 0
    ranges: int = 0
    ranges_differing: int = 0
    extra_rows: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ranges_differing == 0 and self.extra_rows == 0

    def summary(self) -> str:
        head = (
            f"{self.source_documents:,} source documents; {self.table_rows:,} rows in the table, "
            f"{self.rejected_rows:,} set aside; {self.ranges:,} ranges of up to "
            f"{RANGE_SIZE:,} checked"
        )
        if self.ok:
            return f"OK: {head}; every _id is there once, every checksum matches."
        lines = [f"MISMATCH: {head}; {self.ranges_differing} ranges differ."]
        if self.extra_rows:
            lines.append(f"{self.extra_rows:,} rows in the table have no source document.")
        lines += [f"  {difference}" for difference in self.differences]
        return "\n".join(lines)


def checksum(rows: list[Row]) -> str:
    """Order-independent digest of rows: equal sets of rows, equal digests."""
    digest = hashlib.sha256()
    for text in sorted(_canonical(row) for row in rows):
        digest.update(text.encode())
    return digest.hexdigest()


def _canonical(row: Row) -> str:
    # Drivers give equal instants different tzinfo objects: compare them in UTC.
    return repr(tuple(v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in row))


async def verify(
    settings: Settings,
    *,
    endpoints: Endpoints | None = None,
    transform: Transform = document_to_row,
    range_size: int = RANGE_SIZE,
) -> VerifyReport:
    """Check the target against the source, range by range; see the module docstring."""
    if endpoints is None:
        endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    report = VerifyReport()
    async with (
        MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client,
        ReconnectingConnection(endpoints.pg_dsn, policy=settings.retry_policy) as postgres,
    ):
        source = UserMongoRepository(client[settings.mongo_database][settings.mongo_collection])
        found_in_table = 0
        async for batch in source.iter_batches(range_size):
            prepared = prepare_batch(batch, transform)
            expected = {row[0]: row for row in prepared.rows}
            expected_rejected = {r.mongo_id for r in prepared.rejections}
            keys = [*expected, *expected_rejected]
            actual, rejected = await postgres.run(
                lambda db, keys=keys: _target_range(db, settings.pg_table, keys),  # type: ignore[misc]
                what="reading the target",
            )
            report.source_documents += len(batch)
            report.ranges += 1
            found_in_table += len(actual)
            # A valid row that PostgreSQL refused is rightly set aside, not missing.
            refused = (set(rejected) & expected.keys()) - actual.keys()
            wanted = [row for key, row in expected.items() if key not in refused]
            if (
                checksum(list(actual.values())) == checksum(wanted)
                and set(rejected) - refused == expected_rejected
            ):
                continue
            report.ranges_differing += 1
            _describe(report, expected, expected_rejected, actual, set(rejected))
        report.table_rows, report.rejected_rows = await postgres.run(
            lambda db: _counts(db, settings.pg_table), what="counting the target"
        )
        report.extra_rows = report.table_rows - found_in_table
    return report


async def _target_range(
    db: asyncpg.Connection, table: str, keys: list[str]
) -> tuple[dict[str, Row], list[str]]:
    rows = await UserPostgresRepository(db, table=table).rows_for(keys)
    return rows, await DeadLetterRepository(db, table=table).keys_among(keys)


async def _counts(db: asyncpg.Connection, table: str) -> tuple[int, int]:
    counts = await count_target(db, table)
    return counts.written, counts.rejected


def _describe(
    report: VerifyReport,
    expected: dict[str, Row],
    expected_rejected: set[str],
    actual: dict[str, Row],
    rejected: set[str],
) -> None:
    """Name the differences in one range (a valid row PostgreSQL refused is fine)."""
    found: list[Difference] = []
    for key, row in expected.items():
        if key in actual and key in rejected:
            found.append(Difference(key, "both in the table and set aside"))
        elif key in actual and actual[key] != row:
            changed = [
                f"{column} is {got!r}, source says {want!r}"
                for column, got, want in zip(ROW_COLUMNS, actual[key], row, strict=True)
                if got != want
            ]
            found.append(Difference(key, "; ".join(changed)))
        elif key not in actual and key not in rejected:
            found.append(Difference(key, "missing from the table"))
    for key in expected_rejected:
        if key in actual:
            found.append(Difference(key, "in the table, but the source document is invalid"))
        elif key not in rejected:
            found.append(Difference(key, "invalid in the source, but not set aside"))
    room = MAX_DIFFERENCES - len(report.differences)
    report.differences.extend(found[: max(room, 0)])


def run_verify(settings: Settings, **options: Any) -> VerifyReport:
    """Synchronous :func:`verify`, for scripts."""
    return asyncio.run(verify(settings, **options))
