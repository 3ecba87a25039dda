"""Prometheus metrics of migrations: an :class:`Observer` and its exporter.

    observer = PrometheusObserver()
    with observer.serve(port=9464):  # http://127.0.0.1:9464/metrics
        await migrate(settings, observer=observer)

Each observer keeps its metrics in its own ``CollectorRegistry``, so many runs (and
tests) in one process never collide. Labels stay few: ``backend``, the worker's index
(``worker``, 0..workers-1) and the batch ``stage``; never a document id. Needs the
``metrics`` extra (``pip install 'migrationkit[metrics]'``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from migrationkit._errors import ConfigurationError

if TYPE_CHECKING:
    from migrationkit._executors.events import BatchDone
    from migrationkit._run.report import MigrationReport

#: The exporter listens here unless told otherwise: not reachable from the network.
DEFAULT_HOST = "127.0.0.1"

#: Batch stages timed by ``migrationkit_batch_duration_seconds``.
STAGES = ("read", "transform", "write")

#: From a few milliseconds (a small batch's transform) to a minute (a write riding out retries).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: The samples each metric type exposes, by suffix of the family's name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


class PrometheusObserver:
    """Counts rows, retries and batches, times each batch stage, and tracks queues and progress."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        by_worker = ("backend", "worker")

        def counter(name: str, doc: str, labels: Sequence[str] = by_worker) -> Counter:
            return Counter(name, doc, labels, registry=self.registry)

        def gauge(name: str, doc: str, labels: Sequence[str] = ("backend",)) -> Gauge:
            return Gauge(name, doc, labels, registry=self.registry)

        self.rows_read = counter(
            "migrationkit_rows_read",
            "Documents read from MongoDB (by the one reader).",
            ["backend"],
        )
        self.rows_written = counter("migrationkit_rows_written", "Rows committed to PostgreSQL.")
        self.rows_rejected = counter(
            "migrationkit_rows_rejected", "Documents set aside in the dead-letter table."
        )
        self.batches = counter("migrationkit_batches", "Batches committed.")
        self.retries = counter("migrationkit_retries", "Transient faults retried by a worker.")
        self.batch_seconds = Histogram(
            "migrationkit_batch_duration_seconds",
            "Time per batch in each stage: read (waiting for MongoDB), transform, "
            "write (to PostgreSQL, retries included).",
            ["backend", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = gauge(
            "migrationkit_worker_queue_depth",
            "Batches handed to a worker and not yet committed (queued or being written).",
            by_worker,
        )
        self.workers = gauge("migrationkit_workers", "Workers in the current run.")
        self.workers_active = gauge(
            "migrationkit_workers_active", "Workers holding at least one batch."
        )
        self.rows_done = gauge(
            "migrationkit_run_rows_done", "Documents written or set aside so far in this run."
        )
        self.rows_expected = gauge(
            "migrationkit_run_rows_expected",
            "Documents in the source collection when the run started (an estimate).",
        )
        self.started = gauge(
            "migrationkit_run_start_time_seconds", "When the run started, in Unix time."
        )
        self.changes_applied = Counter(
            "migrationkit_follow_changes_applied",
            "Change-stream events applied to the target by the follower.",
            registry=self.registry,
        )
        self.follow_lag = Gauge(
            "migrationkit_follow_lag_seconds",
            "How far the follower is behind the source: the age of the newest event read "
            "and not yet applied (0 when it has applied everything the stream had).",
            registry=self.registry,
        )
        self.follow_waiting = Gauge(
            "migrationkit_follow_events_waiting",
            "Events read from the change stream and not yet applied.",
            registry=self.registry,
        )
        self._worker_count: dict[str, int] = {}

    # -- Observer ------------------------------------------------------------------

    def run_started(self, *, backend: str, workers: int, total: int | None) -> None:
        # Series exist from the start at 0, so that rate() sees the first batches.
        for worker in range(max(workers, self._worker_count.get(backend, 0))):
            labels = (backend, str(worker))
            for metric in (self.rows_written, self.rows_rejected, self.batches, self.retries):
                metric.labels(*labels)
            self.queue_depth.labels(*labels).set(0)
        for stage in STAGES:
            self.batch_seconds.labels(backend, stage)
        self.rows_read.labels(backend)
        self._worker_count[backend] = workers
        self.workers.labels(backend).set(workers)
        self.workers_active.labels(backend).set(0)
        self.rows_done.labels(backend).set(0)
        self.rows_expected.labels(backend).set(float("nan") if total is None else total)
        self.started.labels(backend).set(time.time())

    def batch_read(self, *, backend: str, rows: int, seconds: float) -> None:
        self.rows_read.labels(backend).inc(rows)
        self.batch_seconds.labels(backend, "read").observe(seconds)

    def batch_done(self, *, backend: str, event: BatchDone) -> None:
        labels = (backend, str(event.worker))
        rejected = len(event.rejected)
        self.rows_written.labels(*labels).inc(event.written)
        self.rows_rejected.labels(*labels).inc(rejected)
        self.batches.labels(*labels).inc()
        self.batch_seconds.labels(backend, "transform").observe(event.transform_s)
        self.batch_seconds.labels(backend, "write").observe(event.write_s)
        self.rows_done.labels(backend).inc(event.written + rejected)

    def retried(self, *, backend: str, worker: int, what: str) -> None:
        self.retries.labels(backend, str(worker)).inc()

    def queue_depths(self, *, backend: str, in_flight: Sequence[int]) -> None:
        for worker, depth in enumerate(in_flight):
            self.queue_depth.labels(backend, str(worker)).set(depth)
        self.workers_active.labels(backend).set(sum(1 for depth in in_flight if depth))

    def run_finished(self, report: MigrationReport) -> None:
        self.queue_depths(backend=report.backend, in_flight=[0] * report.workers)

    def following(self, *, applied: int, lag_s: float, waiting: int) -> None:
        self.changes_applied.inc(applied)
        self.follow_lag.set(lag_s)
        self.follow_waiting.set(waiting)

    # -- exporting -----------------------------------------------------------------

    def serve(self, *, port: int = 0, host: str = DEFAULT_HOST) -> MetricsServer:
        """Serve ``/metrics`` over HTTP (port 0: any free port); ``close()`` it when done."""
        return serve_metrics(self.registry, port=port, host=host)

    def metric_names(self) -> set[str]:
        """Every sample name this observer can expose (``…_total``, ``…_bucket``, …)."""
        return exposed_names(self.registry)


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry exposes, including metrics no label has been used for."""
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in _SUFFIXES.get(family.type, ("",))
    }


class MetricsServer:
    """The HTTP exporter running in a daemon thread; a context manager that closes it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server, self._thread = server, thread

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve_metrics(
    source: CollectorRegistry | PrometheusObserver, *, port: int = 0, host: str = DEFAULT_HOST
) -> MetricsServer:
    """Start the exporter for an observer (or a registry) on ``host:port``.

    Loopback by default; ``host="0.0.0.0"`` in a container that Prometheus scrapes.
    A port that is taken is a :class:`ConfigurationError` naming it.
    """
    registry = source.registry if isinstance(source, PrometheusObserver) else source
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return MetricsServer(server, thread)
