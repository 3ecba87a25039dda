"""OpenTelemetry spans for a migration, one per batch: read → queued → transform → write.

    from migrationkit._observe.tracing import tracing_observer
    await migrate(settings, observer=tracing_observer())

Workers only measure (``BatchDone`` carries their monotonic times); the spans are
made afterwards, in the coordinator, with explicit start and end times: tracing adds
no work to the workers and no message between them. Each batch is a
``migrationkit.batch`` span under the run's ``migrationkit.run`` span. Needs the
``tracing`` extra (opentelemetry-api and -sdk); without it :func:`tracing_observer`
returns a :class:`~migrationkit._observe.observe.NullObserver`, which costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from migrationkit._observe.logs import current_run_id
from migrationkit._observe.observe import NullObserver, Observer

try:
    from opentelemetry import trace
except ImportError:  # the tracing extra is not installed
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

    from migrationkit._executors.events import BatchDone
    from migrationkit._run.report import MigrationReport

TRACER_NAME = "migrationkit"


def tracing_available() -> bool:
    return trace is not None


def tracing_observer(tracer: Tracer | None = None) -> Observer:
    """A :class:`TracingObserver`, or a :class:`NullObserver` when OpenTelemetry is missing."""
    return TracingObserver(tracer) if tracing_available() else NullObserver()


class TracingObserver:
    """Turns the timings the workers report into OpenTelemetry spans.

    The reader's k-th batch is the cluster's batch ``seq == k`` (``migrate`` reports a
    batch read, then submits it), which is how a batch's read span finds its batch.
    """

    def __init__(self, tracer: Tracer | None = None) -> None:
        if trace is None:
            raise RuntimeError("tracing needs OpenTelemetry: pip install 'migrationkit[tracing]'")
        self._tracer = tracer or trace.get_tracer(TRACER_NAME)
        # Workers time with time.monotonic(); spans want nanoseconds since the epoch.
        self._epoch_offset_ns = time.time_ns() - time.monotonic_ns()
        self._run: Span | None = None
        self._reads: dict[int, tuple[float, float]] = {}  # seq -> monotonic (start, end)
        self._next_read = 0

    def _ns(self, monotonic_s: float) -> int:
        return int(monotonic_s * 1e9) + self._epoch_offset_ns

    def _context(self, parent: Span | None) -> Context | None:
        assert trace is not None
        return None if parent is None else trace.set_span_in_context(parent)

    def _span(self, name: str, parent: Span, start: float, end: float) -> None:
        span = self._tracer.start_span(name, self._context(parent), start_time=self._ns(start))
        span.end(end_time=self._ns(end))

    def run_started(self, *, backend: str, workers: int, total: int | None) -> None:
        attributes: dict[str, str | int] = {
            "migrationkit.backend": backend,
            "migrationkit.workers": workers,
        }
        if total is not None:
            attributes["migrationkit.rows_expected"] = total
        if (run_id := current_run_id()) is not None:
            attributes["migrationkit.run_id"] = run_id
        self._run = self._tracer.start_span("migrationkit.run", attributes=attributes)
        self._reads.clear()
        self._next_read = 0

    def batch_read(self, *, backend: str, rows: int, seconds: float) -> None:
        end = time.monotonic()
        self._reads[self._next_read] = (end - seconds, end)
        self._next_read += 1

    def batch_done(self, *, backend: str, event: BatchDone) -> None:
        read = self._reads.pop(event.seq, None)
        batch = self._tracer.start_span(
            "migrationkit.batch",
            self._context(self._run),
            start_time=self._ns(read[0] if read else event.started),
            attributes={
                "migrationkit.backend": backend,
                "migrationkit.worker": event.worker,
                "migrationkit.seq": event.seq,
                "migrationkit.rows_written": event.written,
                "migrationkit.rows_rejected": len(event.rejected),
            },
        )
        if read is not None:
            self._span("read", batch, *read)
            self._span("queued", batch, read[1], max(read[1], event.started))
        transformed = event.started + event.transform_s
        self._span("transform", batch, event.started, transformed)
        self._span("write", batch, transformed, event.finished)
        batch.end(end_time=self._ns(event.finished))

    def retried(self, *, backend: str, worker: int, what: str) -> None:
        if self._run is not None:
            self._run.add_event("retry", {"migrationkit.worker": worker, "migrationkit.what": what})

    def queue_depths(self, *, backend: str, in_flight: Sequence[int]) -> None:
        pass

    def following(self, *, applied: int, lag_s: float, waiting: int) -> None:
        pass

    def run_finished(self, report: MigrationReport) -> None:
        if self._run is None:
            return
        self._run.set_attributes(
            {
                "migrationkit.rows_read": report.rows_read,
                "migrationkit.rows_written": report.rows_written,
                "migrationkit.rows_rejected": report.rows_rejected,
            }
        )
        self._run.end()
        self._run = None
