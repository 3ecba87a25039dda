"""A real run, watched: /metrics over HTTP during and after it, and the run id in worker logs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from migrationkit import MigrationReport, Settings, UserMongoRepository, migrate
from migrationkit._executors.events import BatchDone
from migrationkit._normalize.rows import Row, document_to_row
from migrationkit._observe.logs import HANDLER_NAME, configure_logging, run_scope
from migrationkit._observe.metrics import PrometheusObserver
from migrationkit._target.table import UserPostgresRepository
from migrationkit.workshop import seed_users

pytestmark = pytest.mark.integration

BACKENDS = ["asyncio", "threading", "multiprocessing"]
BAD_DOCUMENTS = [
    {"_id": "old", "username": "old", "email": "old@b.org", "age": 200},
    {"_id": "no-email", "username": "x", "age": 3},
    {"_id": "chatty", "username": "c", "email": "c@b.org", "age": 30},
]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        text: str = response.read().decode()
    return text


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in samples.items() if n == name and wanted <= have)


def chatty_row(document: Mapping[str, Any]) -> Row:
    """``document_to_row`` that logs when it meets the "chatty" document (module-level)."""
    if document.get("_id") == "chatty":
        logging.getLogger("migrationkit.test.chatty").warning("met the chatty document")
    return document_to_row(document)


class ScrapingObserver(PrometheusObserver):
    """Scrapes its own exporter over HTTP when the first batch is committed: mid-run."""

    url = ""
    mid_run: str | None = None

    def batch_done(self, *, backend: str, event: BatchDone) -> None:
        super().batch_done(backend=backend, event=event)
        if self.mid_run is None:
            self.mid_run = scrape(self.url)


@pytest.fixture
def our_log_handler_removed() -> Iterator[None]:
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)


def assert_metrics_match_the_report(samples: Samples, report: MigrationReport) -> None:
    backend = report.backend
    assert total(samples, "migrationkit_rows_read_total", backend=backend) == report.rows_read
    assert total(samples, "migrationkit_rows_written_total") == report.rows_written
    assert total(samples, "migrationkit_rows_rejected_total") == report.rows_rejected
    for stats in report.per_worker:
        worker = {"backend": backend, "worker": str(stats.worker)}
        assert total(samples, "migrationkit_rows_written_total", **worker) == stats.rows_written
        assert total(samples, "migrationkit_rows_rejected_total", **worker) == stats.rows_rejected
        assert total(samples, "migrationkit_batches_total", **worker) == stats.batches
        assert total(samples, "migrationkit_retries_total", **worker) == stats.retries
        assert total(samples, "migrationkit_worker_queue_depth", **worker) == 0
    batches = sum(stats.batches for stats in report.per_worker)
    for stage, count in [("read", batches), ("transform", batches), ("write", batches)]:
        name = "migrationkit_batch_duration_seconds_count"
        assert total(samples, name, backend=backend, stage=stage) == count, stage
    done = report.rows_written + report.rows_rejected
    assert total(samples, "migrationkit_run_rows_done", backend=backend) == done
    assert total(samples, "migrationkit_run_rows_expected", backend=backend) == report.rows_read
    assert total(samples, "migrationkit_workers_active", backend=backend) == 0


@pytest.mark.parametrize("backend", BACKENDS)
async def test_metrics_scraped_during_and_after_a_run_match_its_report(
    make_settings: Any, source: UserMongoRepository, target: UserPostgresRepository, backend: str
) -> None:
    await seed_users(source, 3_000)
    await source.insert_many(BAD_DOCUMENTS[:2])
    observer = ScrapingObserver()
    with observer.serve() as server:
        observer.url = server.url
        report = await migrate(make_settings(backend=backend, batch_size=250), observer=observer)
        after = parse(await asyncio.to_thread(scrape, server.url))
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (3_002, 3_000, 2)
    assert_metrics_match_the_report(after, report)

    assert observer.mid_run is not None
    during = parse(observer.mid_run)
    written_then = total(during, "migrationkit_rows_written_total")
    assert 0 < written_then < report.rows_written
    assert total(during, "migrationkit_run_rows_done") < report.rows_read
    assert total(during, "migrationkit_run_rows_expected") == report.rows_read


async def test_the_command_serves_metrics_while_it_runs_and_they_match_its_json_report(
    settings: Settings, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 4_000)
    assert settings.mongo_uri is not None
    assert settings.pg_dsn is not None
    env = os.environ | {
        "MIGRATIONKIT_MONGO_URI": settings.mongo_uri.get_secret_value(),
        "MIGRATIONKIT_PG_DSN": settings.pg_dsn.get_secret_value(),
        "MIGRATIONKIT_MONGO_COLLECTION": settings.mongo_collection,
        "MIGRATIONKIT_PG_TABLE": settings.pg_table,
        "MIGRATIONKIT_MAPPING": "users",
        "MIGRATIONKIT_WORKERS": "2",
    }
    command = ["migrate", "--backend", "threading", "--batch-size", "250", "--json"]
    command += ["--metrics-port", "0", "--metrics-linger", "3"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "migrationkit", *command,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    assert process.stdout is not None
    first_line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
    assert first_line.startswith("serving metrics at http://127.0.0.1:"), first_line
    url = first_line.split()[-1]
    scrapes = []
    while process.returncode is None:
        try:
            scrapes.append(await asyncio.to_thread(scrape, url))
        except OSError:  # closed after the linger: the run is over
            break
        await asyncio.sleep(0.1)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    report = json.loads(out)
    assert len(report["run_id"]) == 12
    counts = [total(parse(text), "migrationkit_rows_written_total") for text in scrapes]
    assert counts[-1] == report["rows_written"] == 4_000
    assert counts == sorted(counts), "counters only go up"
    assert counts[0] < counts[-1], "the first scrape came before the end of the run"


async def test_worker_process_log_lines_carry_the_run_id(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    capfd: pytest.CaptureFixture[str],
    our_log_handler_removed: None,
) -> None:
    await seed_users(source, 500)
    await source.insert_many(BAD_DOCUMENTS)
    configure_logging(log_format="json")
    with run_scope("itest-run-id"):
        await migrate(make_settings(backend="multiprocessing"), transform=chatty_row)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line[:1] == "{"]
    chatty = [line for line in lines if line["logger"] == "migrationkit.test.chatty"]
    rejected = [line for line in lines if str(line["message"]).startswith("set aside ")]
    assert len(chatty) == 1
    assert str(chatty[0]["process"]).startswith("migrationkit-worker-")
    assert len(rejected) == 2  # one summary line per reason, none per document
    assert {line["run_id"] for line in chatty + rejected} == {"itest-run-id"}
