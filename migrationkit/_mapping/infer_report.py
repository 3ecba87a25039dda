"""The report of an inference: per field what the sample held, what it became, and why.

:class:`InferenceReport` is what ``migrationkit infer`` prints (:meth:`~InferenceReport.format`)
or writes as JSON (:meth:`~InferenceReport.to_dict`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from migrationkit._mapping.field_stats import FieldStats

Nested = Literal["jsonb", "flatten", "child"]


@dataclass(frozen=True, slots=True)
class FieldReport:
    """One line of the report: a field, what the sample held, and what it became.

    ``store`` is ``column`` (typed), ``jsonb``, ``flatten`` (its sub-fields are
    columns), ``child`` (a child table), ``drop``, ``key`` (``_id``) or ``extra`` (no
    column: it lands in the catch-all).
    """

    path: str
    table: str
    present: int
    presence: float
    types: Mapping[str, int]
    store: str
    column: str | None
    pg_type: str | None
    nullable: bool
    reason: str
    warnings: tuple[str, ...]
    details: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "table": self.table,
            "present": self.present,
            "presence": round(self.presence, 2),
            "types": dict(self.types),
            "store": self.store,
            "column": self.column,
            "pg_type": self.pg_type,
            "nullable": self.nullable,
            "reason": self.reason,
            "warnings": list(self.warnings),
            **({"details": dict(self.details)} if self.details else {}),
        }


@dataclass(frozen=True, slots=True)
class InferenceReport:
    """What the sample held, field by field, what each became and why, and the warnings."""

    collection: str
    table: str
    documents: int
    sampled: int | None
    total: int | None
    nested: Nested
    catch_all: str | None
    fields: tuple[FieldReport, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def scope(self) -> str:
        """``500 of 29,000 documents (1.7%), a sample of up to 500``, or every document."""
        of = "" if self.total is None else f" of {self.total:,}"
        share = f" ({100 * self.documents / self.total:.1f}%)" if self.total else ""
        how = "every document" if self.sampled is None else f"a sample of up to {self.sampled:,}"
        return f"{self.documents:,}{of} documents{share}, {how}"

    def format(self) -> str:
        """The report as text: a header, one line per field (warnings under it), a footer."""
        lines = [
            f"Inferred mapping: collection {self.collection!r} -> table {self.table!r}",
            f"Read: {self.scope}; nested={self.nested!r}, catch-all {self.catch_all!r}",
            "",
        ]
        rows = [("path", "present", "BSON types", "column", "store", "why")]
        rows += [_format_row(line, main=self.table) for line in self.fields]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for number, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
            lines.append("  ".join([*cells, row[5]]).rstrip())
            if number:
                lines += [f"    ! {warning}" for warning in self.fields[number - 1].warnings]
        lines += ["", f"Warnings ({len(self.warnings)}):"]
        lines += [f"  - {warning}" for warning in self.warnings] or ["  (none)"]
        lines += ["", "Notes:", *(f"  - {note}" for note in self.notes)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (``migrationkit infer --json``)."""
        return {
            "collection": self.collection,
            "table": self.table,
            "documents": self.documents,
            "sampled": self.sampled,
            "total": self.total,
            "nested": self.nested,
            "catch_all": self.catch_all,
            "fields": [line.to_dict() for line in self.fields],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def _format_row(line: FieldReport, *, main: str) -> tuple[str, str, str, str, str, str]:
    present = f"{line.presence:5.1f}% {line.present:,}"
    types = ", ".join(f"{name} {count:,}" for name, count in line.types.items())
    if line.store == "child":
        column = f"table {line.table}"
    elif line.column is None:
        column = "-"
    else:
        where = "" if line.table == main else f"{line.table}."
        column = f"{where}{line.column} {line.pg_type}" + ("" if line.nullable else " NOT NULL")
    return (_clip(line.path), present, _clip(types), _clip(column, 56), line.store, line.reason)


def _clip(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def inference_notes(
    stats: FieldStats, *, sampled: int | None, total: int | None, catch_all: str | None
) -> Iterator[str]:
    if catch_all is None:
        yield (
            "catch-all off: fields the mapping does not name are dropped at load time, "
            "counted and named in the run's report"
        )
    else:
        yield (
            f"fields the sample did not see (and keys that are not columns) land in the "
            f"catch-all jsonb column {catch_all!r} at load time: nothing is dropped"
        )
    if total is None or stats.documents < total:
        aside = (
            f"goes to {catch_all!r} (the column NULL)" if catch_all else "sets the document aside"
        )
        yield (
            f"types and NOT NULL come from the {stats.documents:,} documents read, not the whole "
            f"collection: at load time a value of another type in a nullable column {aside}; "
            "in a NOT NULL column, or a NOT NULL field missing, it sets the document aside "
            "(a dead-letter row with the reason)"
        )
