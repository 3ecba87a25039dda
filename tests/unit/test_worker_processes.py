"""Worker processes: forked from a preloaded fork server, writing where their parent writes now."""

from __future__ import annotations

import multiprocessing
import os
import sys

import pytest

from migrationkit._executors.processes import (
    PRELOADED,
    ParentStreams,
    run_with_parent_streams,
    worker_processes,
)

pytestmark = pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here"
)


def print_to_both(text: str) -> None:
    """What the worker runs: one line on each stream."""
    print(f"out: {text}", flush=True)
    print(f"err: {text}", file=sys.stderr, flush=True)


def preloaded_modules(outbox: multiprocessing.Queue[bool]) -> None:
    outbox.put(all(name in sys.modules for name in PRELOADED))


def start_and_join(target: object, *args: object) -> int | None:
    process = worker_processes().Process(target=target, args=args)
    process.start()
    process.join(60)
    return process.exitcode


def test_workers_come_from_a_fork_server_that_imported_the_kit() -> None:
    context = worker_processes()
    outbox = context.Queue()
    assert context.get_start_method() == "forkserver"
    assert start_and_join(preloaded_modules, outbox) == 0
    assert outbox.get(timeout=10) is True


def test_a_forked_worker_writes_to_the_streams_its_parent_has_now(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with capfd.disabled():  # the fork server starts (if not yet) with streams not captured
        start_and_join(os.getpid)
    assert start_and_join(run_with_parent_streams, ParentStreams(), print_to_both, "now") == 0
    captured = capfd.readouterr()
    assert "out: now" in captured.out
    assert "err: now" in captured.err


def test_a_closed_stream_is_left_out_rather_than_failing_the_start() -> None:
    saved = os.dup(1)
    os.close(1)
    try:
        exitcode = start_and_join(run_with_parent_streams, ParentStreams(), os.getpid)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert exitcode == 0
