"""Watching a run without servers: Prometheus metrics, the exporter, the dashboard, OTel spans."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from migrationkit._errors import ConfigurationError
from migrationkit._executors.events import BatchDone
from migrationkit._observe import tracing
from migrationkit._observe.metrics import PrometheusObserver
from migrationkit._observe.observe import NullObserver
from migrationkit._run.report import MigrationReport

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "migrationkit.json"

#: PromQL words that look like metric names but are not.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf"}
_KEYWORDS |= {"group_left", "group_right", "nan"}


def promql_metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (functions, labels, ranges and strings dropped)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    found = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        followed_by_call = text[match.end() :].lstrip().startswith("(")
        if not followed_by_call and match[0].lower() not in _KEYWORDS:
            found.add(match[0])
    return found


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"]
        expressions.append(re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", query))
    return expressions


def report(**overrides: Any) -> MigrationReport:
    values: dict[str, Any] = {
        "backend": "threading",
        "workers": 2,
        "writer": "copy",
        "batch_size": 10,
        "rows_read": 30,
        "rows_written": 29,
        "rows_rejected": 1,
        "elapsed_s": 1.0,
        "per_worker": [],
    }
    return MigrationReport(**(values | overrides))


def fake_run(observer: Any, *, now: float | None = None) -> None:
    """Three batches of ten read; two committed (one rejection), one retry, then the end."""
    now = time.monotonic() if now is None else now
    observer.run_started(backend="threading", workers=2, total=30)
    for _ in range(3):
        observer.batch_read(backend="threading", rows=10, seconds=0.02)
    observer.queue_depths(backend="threading", in_flight=[2, 1])
    observer.batch_done(
        backend="threading",
        event=BatchDone(0, 0, 9, (("bad", "age"),), now - 0.5, now, transform_s=0.1, write_s=0.4),
    )
    observer.retried(backend="threading", worker=1, what="writing a batch to PostgreSQL")
    observer.batch_done(
        backend="threading",
        event=BatchDone(1, 1, 10, (), now - 0.3, now, transform_s=0.05, write_s=3.0),
    )
    observer.queue_depths(backend="threading", in_flight=[1, 0])


# --------------------------------------------------------------------------- the observer


def test_counters_follow_the_run_by_backend_and_worker() -> None:
    observer = PrometheusObserver()
    fake_run(observer)
    value = observer.registry.get_sample_value
    worker = {"backend": "threading", "worker": "0"}
    other = {"backend": "threading", "worker": "1"}
    assert value("migrationkit_rows_read_total", {"backend": "threading"}) == 30
    assert value("migrationkit_rows_written_total", worker) == 9
    assert value("migrationkit_rows_written_total", other) == 10
    assert value("migrationkit_rows_rejected_total", worker) == 1
    assert value("migrationkit_batches_total", other) == 1
    assert value("migrationkit_retries_total", other) == 1
    assert value("migrationkit_retries_total", worker) == 0


def test_batch_stages_are_timed_in_histograms() -> None:
    observer = PrometheusObserver()
    fake_run(observer)
    value = observer.registry.get_sample_value
    read = {"backend": "threading", "stage": "read"}
    write = {"backend": "threading", "stage": "write"}
    assert value("migrationkit_batch_duration_seconds_count", read) == 3
    assert value("migrationkit_batch_duration_seconds_sum", write) == pytest.approx(3.4)
    assert value("migrationkit_batch_duration_seconds_bucket", write | {"le": "0.5"}) == 1


def test_queues_busy_workers_and_progress_are_gauges() -> None:
    observer = PrometheusObserver()
    fake_run(observer)
    value = observer.registry.get_sample_value
    backend = {"backend": "threading"}
    assert value("migrationkit_worker_queue_depth", backend | {"worker": "0"}) == 1
    assert value("migrationkit_worker_queue_depth", backend | {"worker": "1"}) == 0
    assert value("migrationkit_workers_active", backend) == 1
    assert value("migrationkit_workers", backend) == 2
    assert value("migrationkit_run_rows_done", backend) == 20
    assert value("migrationkit_run_rows_expected", backend) == 30
    observer.run_finished(report())
    assert value("migrationkit_workers_active", backend) == 0


def test_every_worker_series_exists_at_zero_from_the_start() -> None:
    observer = PrometheusObserver()
    observer.run_started(backend="asyncio", workers=3, total=None)
    labels = {"backend": "asyncio", "worker": "2"}
    assert observer.registry.get_sample_value("migrationkit_rows_written_total", labels) == 0


def test_each_observer_has_its_own_registry() -> None:
    first, second = PrometheusObserver(), PrometheusObserver()
    fake_run(first)
    labels = {"backend": "threading", "worker": "1"}
    assert second.registry.get_sample_value("migrationkit_rows_written_total", labels) is None


def test_names_and_labels_follow_prometheus_conventions() -> None:
    observer = PrometheusObserver()
    fake_run(observer)
    for family in observer.registry.collect():
        assert family.name.startswith("migrationkit_")
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            if family.type == "counter" and not sample.name.endswith("_created"):
                assert sample.name.endswith("_total")
            assert set(sample.labels) <= {"backend", "worker", "stage", "le"}, sample.name


# --------------------------------------------------------------------------- the exporter


def test_the_exporter_serves_metrics_on_loopback_and_stops_when_closed() -> None:
    observer = PrometheusObserver()
    fake_run(observer)
    with observer.serve() as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        with urllib.request.urlopen(server.url, timeout=5) as response:
            text = response.read().decode()
    assert 'migrationkit_rows_written_total{backend="threading",worker="1"} 10.0' in text
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=2)


def test_a_port_in_use_is_one_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=rf"cannot serve metrics on 127.0.0.1:{port}"):
            PrometheusObserver().serve(port=port)


# --------------------------------------------------------------------------- the dashboard


def test_promql_metric_names_skips_functions_labels_ranges_and_grouping() -> None:
    expression = (
        "histogram_quantile(0.95, sum by (le, stage) ("
        'rate(migrationkit_batch_duration_seconds_bucket{backend=~"$backend"}[$__rate_interval])'
        ")) / on (stage) group_left migrationkit_x"
    )
    assert promql_metric_names(expression) == {
        "migrationkit_batch_duration_seconds_bucket",
        "migrationkit_x",
    }


def test_the_dashboard_queries_only_metrics_the_exporter_exports() -> None:
    exported = PrometheusObserver().metric_names()
    used = {
        name for expression in dashboard_expressions() for name in promql_metric_names(expression)
    }
    assert used, "the dashboard has queries"
    assert used - exported == set(), f"not exported: {sorted(used - exported)}"


def test_the_dashboard_shows_throughput_latency_queues_and_errors() -> None:
    used = {
        name for expression in dashboard_expressions() for name in promql_metric_names(expression)
    }
    assert {
        "migrationkit_rows_written_total",
        "migrationkit_batch_duration_seconds_bucket",
        "migrationkit_worker_queue_depth",
        "migrationkit_rows_rejected_total",
        "migrationkit_retries_total",
    } <= used
    assert any("histogram_quantile(" in expression for expression in dashboard_expressions())


def test_the_dashboard_uses_the_provisioned_data_source() -> None:
    provisioned = (ROOT / "docker/grafana/provisioning/datasources/prometheus.yml").read_text()
    uid = re.search(r"uid: (\S+)", provisioned)
    assert uid is not None
    dashboard = json.loads(DASHBOARD.read_text())
    sources = {
        json.dumps(target["datasource"]) for p in dashboard["panels"] for target in p["targets"]
    }
    assert sources == {json.dumps({"type": "prometheus", "uid": uid[1]})}


# --------------------------------------------------------------------------- tracing


@pytest.fixture
def spans() -> tuple[tracing.TracingObserver, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracing.TracingObserver(provider.get_tracer("test")), exporter


def test_each_batch_is_a_span_with_read_queued_transform_and_write(
    spans: tuple[tracing.TracingObserver, InMemorySpanExporter],
) -> None:
    observer, exporter = spans
    fake_run(observer)
    observer.run_finished(report())
    finished: list[ReadableSpan] = list(exporter.get_finished_spans())
    names = [span.name for span in finished]
    assert names.count("migrationkit.batch") == 2
    assert names.count("migrationkit.run") == 1
    (run,) = [span for span in finished if span.name == "migrationkit.run"]
    batch = next(s for s in finished if s.name == "migrationkit.batch" and s.attributes
                 and s.attributes["migrationkit.worker"] == 1)  # fmt: skip
    assert batch.parent is not None
    assert batch.parent.span_id == run.context.span_id
    children = {
        span.name: span
        for span in finished
        if span.parent is not None and span.parent.span_id == batch.context.span_id
    }
    assert list(children) == ["read", "queued", "transform", "write"]
    seconds = {name: (s.end_time - s.start_time) / 1e9 for name, s in children.items()}  # type: ignore[operator]
    assert seconds["transform"] == pytest.approx(0.05, abs=1e-6)
    assert seconds["write"] == pytest.approx(0.25, abs=1e-6)  # from its start to the batch's end
    assert children["write"].end_time == batch.end_time
    assert batch.start_time == children["read"].start_time
    assert run.attributes is not None
    assert run.attributes["migrationkit.rows_written"] == 29


def test_without_opentelemetry_tracing_is_a_null_observer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "trace", None)
    assert isinstance(tracing.tracing_observer(), NullObserver)
    with pytest.raises(RuntimeError, match=r"migrationkit\[tracing\]"):
        tracing.TracingObserver()
