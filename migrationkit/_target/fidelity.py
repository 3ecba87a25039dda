"""The fidelity table: every BSON type written by each writer, read back, compared.

For each sample value (:data:`SAMPLES`: every BSON type and its awkward values), one
row is written by each writer (``copy``, ``executemany``, ``insert``) into a column of
the type's default PostgreSQL type (:data:`.types.DEFAULT_PG_TYPE`) and, beside it,
into a ``jsonb`` column with :func:`.types.to_jsonb`. Each value read back is turned
back into BSON (:func:`.types.from_column`) and compared with the source, bit for bit
(:func:`.types.same_bson`). :func:`format_fidelity_table` prints the result.

A value a column cannot hold exactly is never written to it (the normalizer sets it
aside); the table says so and why, and shows that the ``jsonb`` catch-all keeps it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation
from bson.datetime_ms import DatetimeMS

from migrationkit._mapping.types import (
    DEFAULT_PG_TYPE,
    UnfitValue,
    bson_type,
    from_column,
    same_bson,
    to_column,
    to_jsonb,
)
from migrationkit._target.writers import ROW_WRITERS, RowWriter, quote_identifier
from migrationkit._target.writers import WRITERS as BUILT_IN_WRITERS

_UUID = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")

#: ``(label, value)``: every BSON type, with the values that usually break something.
SAMPLES: tuple[tuple[str, Any], ...] = (
    ("int 0", 0),
    ("int min", -(2**31)),
    ("int max", 2**31 - 1),
    ("long 0", Int64(0)),
    ("long min", Int64(-(2**63))),
    ("long max", Int64(2**63 - 1)),
    ("double 1.5", 1.5),
    ("double 0.1", 0.1),
    ("double 5.0", 5.0),
    ("double -0.0", -0.0),
    ("double NaN", float("nan")),
    ("double +Infinity", float("inf")),
    ("double -Infinity", float("-inf")),
    ("double 1e300", 1e300),
    ("double 5e-324", 5e-324),
    ("decimal 1.50", Decimal128("1.50")),
    ("decimal 0.1", Decimal128("0.1")),
    ("decimal 100", Decimal128("100")),
    ("decimal 0.00", Decimal128("0.00")),
    ("decimal 34 digits", Decimal128("1234567890123456789012345678901234")),
    ("decimal max", Decimal128("9.999999999999999999999999999999999E+6144")),
    ("decimal 1E-6176", Decimal128("1E-6176")),
    ("decimal 1E+5", Decimal128("1E+5")),
    ("decimal NaN", Decimal128("NaN")),
    ("decimal Infinity", Decimal128("Infinity")),
    ("decimal -Infinity", Decimal128("-Infinity")),
    ("decimal -0", Decimal128("-0")),
    ("decimal -NaN", Decimal128("-NaN")),
    ("decimal sNaN", Decimal128("sNaN")),
    ("string", "plain"),
    ("string empty", ""),
    ("string non-ASCII", "é 中 😀"),
    ("string NUL", "a\x00b"),
    ("string lone surrogate", "bad \udcff byte"),
    ("bool true", True),
    ("bool false", False),
    ("date ms", datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
    ("date before 1970", datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ("date year 1", datetime(1, 1, 1, tzinfo=UTC)),
    ("date year 9999", datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ("date year -29719", DatetimeMS(-(10**15))),
    ("date year 10000", DatetimeMS(253402300800000)),
    ("null", None),
    ("objectId", ObjectId("65a1b2c3d4e5f60718293a4b")),
    ("binData subtype 0", b"\x00\xffbytes"),
    ("binData subtype 3", Binary.from_uuid(_UUID, UuidRepresentation.PYTHON_LEGACY)),
    ("binData subtype 5", Binary(b"\x01" * 16, 5)),
    ("binData subtype 0x80", Binary(b"user", 0x80)),
    ("uuid", _UUID),
    ("regex", Regex("^a.*b$", "imx")),
    ("javascript", Code("function () { return 1 }")),
    ("javascriptWithScope", Code("function () { return x }", {"x": 1})),
    ("timestamp", Timestamp(1_700_000_000, 7)),
    ("minKey", MinKey()),
    ("maxKey", MaxKey()),
    ("object", {"b": 1, "a": {"$x": Int64(2), "a.b": [1, "x"], "": None, "É": 1.0}}),
    ("object awkward keys", {"Name": 1, "name": 2, "with space": 3, "$": 4, "_extra": 5}),
    ("array mixed", [1, Int64(2), 3.0, Decimal128("4"), "5", None, [6], {"seven": 7}]),
)

#: The writers compared: the built-in ones of :mod:`migrationkit._target.writers`.
WRITERS: dict[str, RowWriter] = {name: ROW_WRITERS.get(name) for name in BUILT_IN_WRITERS}


@dataclass
class Fidelity:
    """One sample: how its column and its jsonb copy came back from each writer.

    Outcomes are ``"exact"``, ``"set aside"`` (never written to the column, kept in the
    jsonb catch-all) or ``"differs"``; ``notes`` says why, for any that is not exact.
    """

    label: str
    bson_type: str
    pg_type: str
    column: dict[str, str] = field(default_factory=dict)
    jsonb: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self, outcomes: dict[str, str], writer: str, outcome: str, note: str) -> None:
        outcomes[writer] = outcome
        if note and note not in self.notes:
            self.notes.append(note)


def _outcome(pg_type: str, kind: str, source: Any, read: Any) -> tuple[str, str]:
    try:
        back = from_column(pg_type, kind, read)
    except (ValueError, TypeError, ArithmeticError) as exc:
        return "differs", f"reads back as {read!r}, which is not BSON {kind}: {exc}"
    if same_bson(back, source):
        return "exact", ""
    return "differs", f"{pg_type} reads back as {to_jsonb(back)}"


async def measure_fidelity(connection: Any, *, table: str = "mk_fidelity") -> list[Fidelity]:
    """Write every sample with every writer through ``connection``; the table of outcomes.

    Creates and drops ``table`` (one column per sample and a jsonb twin of each).
    """
    results = []
    columns: list[str] = []
    definitions: list[str] = []
    written: list[Any] = []
    for index, (label, value) in enumerate(SAMPLES):
        kind = bson_type(value)
        pg_type = DEFAULT_PG_TYPE[kind]
        result = Fidelity(label, kind, pg_type)
        try:
            written.append(to_column(pg_type, value))
        except UnfitValue as exc:
            written.append(None)
            for name in WRITERS:
                result.record(result.column, name, "set aside", f"set aside: {exc}")
        written.append(to_jsonb(value))
        columns += [f"c{index}", f"j{index}"]
        definitions += [f"c{index} {pg_type}", f"j{index} jsonb"]
        results.append(result)
    quoted = quote_identifier(table)
    for name, writer in WRITERS.items():
        await connection.execute(f"DROP TABLE IF EXISTS {quoted}")
        await connection.execute(f"CREATE TABLE {quoted} ({', '.join(definitions)})")
        try:
            await writer(connection, table, [tuple(written)], columns)
            record = await connection.fetchrow(f"SELECT * FROM {quoted}")
        finally:
            await connection.execute(f"DROP TABLE IF EXISTS {quoted}")
        for index, ((_, value), result) in enumerate(zip(SAMPLES, results, strict=True)):
            column, twin = record[2 * index], record[2 * index + 1]
            if name not in result.column:
                outcome, note = _outcome(result.pg_type, result.bson_type, value, column)
                result.record(result.column, name, outcome, note)
            outcome, note = _outcome("jsonb", result.bson_type, value, twin)
            result.record(result.jsonb, name, outcome, f"jsonb: {note}" if note else "")
    return results


def format_fidelity_table(results: Sequence[Fidelity]) -> str:
    """Markdown: one line per sample, one column per writer, the jsonb copy, and why."""
    head = ["value", "BSON type", "column", *WRITERS, "jsonb (each writer)", "how it differs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        jsonb = sorted(set(result.jsonb.values()))
        cells = [
            result.label,
            result.bson_type,
            result.pg_type,
            *(result.column[name] for name in WRITERS),
            "/".join(jsonb),
            "; ".join(result.notes),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)
