"""A real Prometheus server scrapes a migration's exporter and answers for it over its HTTP API.

Prometheus runs on loopback with a throwaway config (1 s scrape interval) and storage,
on a free port, and is stopped at the end. Debian's ``prometheus`` package provides the
binary (``.ci/run`` installs it); without it these tests are skipped, saying so.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrationkit import UserMongoRepository, migrate
from migrationkit._observe.metrics import MetricsServer, PrometheusObserver
from migrationkit._target.table import UserPostgresRepository
from migrationkit.workshop import seed_users

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = Path(__file__).resolve().parents[2] / "docker/grafana/dashboards/migrationkit.json"
#: What Grafana puts in place of the dashboard's variables.
GRAFANA_VARIABLES = {"$backend": ".*", "$__rate_interval": "1m", "$__range": "5m"}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="no `prometheus` binary: apt-get install prometheus (.ci/run does it)",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def query(base: str, expression: str) -> list[dict[str, Any]]:
    """Evaluate PromQL at the current time through ``/api/v1/query``; the result vector."""
    answer = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def scalar(base: str, expression: str) -> float | None:
    result = query(base, expression)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def observer() -> PrometheusObserver:
    return PrometheusObserver()


@pytest.fixture(scope="module")
def exporter(observer: PrometheusObserver) -> Iterator[MetricsServer]:
    with observer.serve() as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(exporter: MetricsServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the exporter every second; its base URL."""
    assert PROMETHEUS is not None
    home = tmp_path_factory.mktemp("prometheus")
    config = home / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: migrationkit\n    static_configs:\n"
        f'      - targets: ["127.0.0.1:{exporter.port}"]\n'
    )
    port = free_port()
    log = (home / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Prometheus did not start:\n" + (home / "prometheus.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_for(base: str, expression: str, expected: float, timeout: float = 30) -> float | None:
    """Query until ``expression`` equals ``expected`` (scrapes are a second apart)."""
    deadline = time.monotonic() + timeout
    value = scalar(base, expression)
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.25)
        value = scalar(base, expression)
    return value


async def test_prometheus_scrapes_the_rows_a_migration_wrote(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    observer: PrometheusObserver,
    prometheus: str,
) -> None:
    await seed_users(source, 5_000)
    report = await migrate(make_settings(backend="threading", batch_size=500), observer=observer)
    assert report.rows_written == 5_000

    written = 'sum(migrationkit_rows_written_total{job="migrationkit"})'
    assert wait_for(prometheus, written, report.rows_written) == report.rows_written
    assert scalar(prometheus, "sum(migrationkit_rows_read_total)") == report.rows_read
    assert scalar(prometheus, 'up{job="migrationkit"}') == 1
    workers = query(prometheus, "migrationkit_rows_written_total")
    assert sorted(series["metric"]["worker"] for series in workers) == ["0", "1"]


def test_every_dashboard_query_is_valid_promql_for_prometheus(prometheus: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert expressions
    for expression in expressions:
        for variable, value in GRAFANA_VARIABLES.items():
            expression = expression.replace(variable, value)
        query(prometheus, expression)  # a parse or evaluation error fails here
