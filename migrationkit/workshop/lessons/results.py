"""What a lesson measured, and a small table that reads well in a notebook and a terminal.

No pandas: a :class:`Table` renders itself as HTML in Jupyter and as aligned text
everywhere else, which is all the notebooks need.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrationkit._run.report import MigrationReport


@dataclass(frozen=True)
class Measurement:
    """One timed run: ``rows`` handled in ``seconds``, what was varied, and any extras."""

    label: str
    rows: int
    seconds: float
    params: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    report: MigrationReport | None = field(default=None, repr=False, compare=False)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def from_report(cls, report: MigrationReport, label: str | None = None) -> Measurement:
        """A measurement of a migration, labelled ``backend/writer xN`` (N workers) by default."""
        params = {
            "backend": report.backend,
            "writer": report.writer,
            "workers": report.workers,
            "batch_size": report.batch_size,
        }
        name = label or f"{report.backend}/{report.writer} x{report.workers}"
        return cls(name, report.rows_read, report.elapsed_s, params, report=report)


def format_value(value: Any) -> str:
    """Numbers the way a reader scans them: 12,345 rows/s, 1.23 s, and text as is."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Table:
    """Rows of values under named columns; HTML in Jupyter, aligned text in ``repr``."""

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def cells(self) -> list[list[str]]:
        return [[format_value(value) for value in row] for row in self.rows]

    def __repr__(self) -> str:
        cells = self.cells()
        widths = [
            max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(self.columns)
        ]

        def line(values: Sequence[str], numeric: Sequence[bool]) -> str:
            parts = [
                value.rjust(width) if right else value.ljust(width)
                for value, width, right in zip(values, widths, numeric, strict=True)
            ]
            return "  ".join(parts).rstrip()

        header = line(self.columns, [False] * len(self.columns))
        rule = "  ".join("-" * width for width in widths)
        body = [
            line(row, [_is_number(value) for value in values])
            for row, values in zip(cells, self.rows, strict=True)
        ]
        return "\n".join([header, rule, *body])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(name)}</th>" for name in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(value)}</td>" for value in row) + "</tr>"
            for row in self.cells()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def results_table(
    measurements: Sequence[Measurement],
    *,
    extra: Sequence[str] = (),
    speedup: bool = False,
    throughput: bool = True,
) -> Table:
    """One row per measurement: label, rows, seconds, rows/s, and chosen ``extra`` values.

    ``extra`` names come from each measurement's ``extra``, else its ``params``.
    With ``speedup``, a last column says how many times faster than the first row;
    ``throughput=False`` leaves out rows and rows/s (for timings of things that move none).
    """
    columns = ["run", "rows", "seconds", "rows/s"] if throughput else ["run", "seconds"]
    base = measurements[0].rows_per_s if measurements else 0.0
    rows: list[list[Any]] = []
    for m in measurements:
        row: list[Any] = (
            [m.label, m.rows, m.seconds, m.rows_per_s] if throughput else [m.label, m.seconds]
        )
        row += [m.extra.get(name, m.params.get(name)) for name in extra]
        if speedup:
            row.append(f"{m.rows_per_s / base:.2f}x" if base else "")
        rows.append(row)
    return Table([*columns, *extra, *(["vs first"] if speedup else [])], rows)


def pivot(
    measurements: Sequence[Measurement],
    *,
    rows: Callable[[Measurement], str],
    columns: Callable[[Measurement], str],
    value: Callable[[Measurement], Any] = lambda m: m.rows_per_s,
    corner: str = "",
) -> Table:
    """A grid: one row per ``rows(m)``, one column per ``columns(m)``, cells ``value(m)``."""
    row_keys = list(dict.fromkeys(rows(m) for m in measurements))
    column_keys = list(dict.fromkeys(columns(m) for m in measurements))
    cells = {(rows(m), columns(m)): value(m) for m in measurements}
    return Table(
        [corner, *column_keys],
        [[key, *(cells.get((key, column)) for column in column_keys)] for key in row_keys],
    )


def best(measurements: Sequence[Measurement]) -> Measurement:
    """The fastest run (most rows per second)."""
    return max(measurements, key=lambda m: m.rows_per_s)
