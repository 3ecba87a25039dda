"""Log lines: a run id on each, text or JSON, passwords hidden, and the same in every worker."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.worker import Sink, WorkerJob
from migrationkit._normalize.rows import PreparedBatch, Rejection
from migrationkit._observe.logs import (
    HANDLER_NAME,
    WorkerLogging,
    configure_logging,
    current_run_id,
    run_scope,
    with_run_id,
)
from tests.unit import fakes

log = logging.getLogger("migrationkit.test")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Our handler writing into a string; removed afterwards."""
    buffer = io.StringIO()
    yield buffer
    remove_our_handler()


def remove_our_handler() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@asynccontextmanager
async def chatty_sink(target: object) -> AsyncIterator[Sink]:
    """Logs one warning per batch, from wherever the worker runs (module-level: picklable)."""

    async def write(batch: PreparedBatch) -> list[Rejection]:
        logging.getLogger("migrationkit.test.sink").warning("writing %d rows", len(batch.rows))
        return batch.rejections

    yield write


def test_every_line_carries_the_run_id(stream: io.StringIO) -> None:
    configure_logging(stream=stream)
    with run_scope("abc123"):
        log.warning("inside")
    log.warning("outside")
    inside, outside = stream.getvalue().splitlines()
    assert "WARNING run=abc123 migrationkit.test: inside" in inside
    assert "run=- migrationkit.test: outside" in outside


def test_json_lines_are_one_object_each_with_the_run_id(stream: io.StringIO) -> None:
    configure_logging(log_format="json", stream=stream)
    with run_scope("abc123"):
        log.warning("copied %d rows", 5)
    (line,) = json_lines(stream.getvalue())
    assert line["run_id"] == "abc123"
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING",
        "migrationkit.test",
        "copied 5 rows",
    )
    assert {"time", "process", "thread"} <= line.keys()


def test_exceptions_are_part_of_the_json_object(stream: io.StringIO) -> None:
    configure_logging(log_format="json", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    (line,) = json_lines(stream.getvalue())
    assert "ValueError: boom" in str(line["exception"])


def test_configuring_again_replaces_the_handler(stream: io.StringIO) -> None:
    configure_logging(stream=io.StringIO())
    configure_logging(log_format="json", stream=stream)
    ours = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
    assert len(ours) == 1
    log.warning("once")
    assert len(json_lines(stream.getvalue())) == 1


def test_passwords_in_messages_and_tracebacks_are_hidden(stream: io.StringIO) -> None:
    configure_logging(stream=stream)
    log.warning("cannot reach %s", "postgresql://app:s3cret@db:5432/app")
    try:
        raise ConnectionError("mongodb://root:s3cret@mongo:27017/ refused")
    except ConnectionError:
        log.exception("connecting")
    text = stream.getvalue()
    assert "s3cret" not in text
    assert "postgresql://app:***@db:5432/app" in text
    assert "mongodb://root:***@mongo:27017/" in text


def test_a_nested_scope_keeps_the_run_id_unless_given_one() -> None:
    with run_scope() as outer:
        with run_scope() as inner:
            assert inner == outer
        with run_scope("other") as explicit:
            assert current_run_id() == explicit == "other"
        assert current_run_id() == outer
    assert current_run_id() is None


async def test_each_call_of_a_run_gets_its_own_id() -> None:
    @with_run_id
    async def run() -> str | None:
        await asyncio.sleep(0)
        return current_run_id()

    first, second = await asyncio.gather(run(), run())
    assert first is not None
    assert second is not None
    assert first != second
    assert current_run_id() is None


@pytest.mark.parametrize("backend", ["asyncio", "threading", "multiprocessing"])
async def test_worker_lines_carry_the_coordinators_run_id(
    backend: str, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging(log_format="json")  # stderr, as the command line does
    try:
        with run_scope("run-of-the-test"):
            job = WorkerJob(
                target=None,
                open_sink=chatty_sink,
                transform=fakes.fake_row,
                log_setup=WorkerLogging.current(),
            )
            async with ClusterMigrationFactory.create(backend, 2, job=job) as cluster:
                for start in (0, 10):
                    await cluster.submit(fakes.documents(start, 10))
    finally:
        remove_our_handler()
    lines = [
        line
        for line in json_lines(capfd.readouterr().err)
        if line["logger"] == "migrationkit.test.sink"
    ]
    assert [line["message"] for line in lines] == ["writing 10 rows"] * 2
    assert {line["run_id"] for line in lines} == {"run-of-the-test"}
    where = "process" if backend == "multiprocessing" else "thread"
    expected = (
        {"MainThread"}
        if backend == "asyncio"
        else {"migrationkit-worker-0", "migrationkit-worker-1"}
    )
    assert {line[where] for line in lines} == expected
