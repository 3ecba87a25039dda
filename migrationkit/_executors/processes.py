"""Where process workers come from: forked from a preloaded fork server, not fresh interpreters.

A spawned worker is a new interpreter that imports the kit (pydantic, bson, the database
drivers) before it can take its first batch: about 0.6 s of CPU per worker, paid again by
every run. A fork server imports the kit once, in a process of its own that runs no
threads (so forking it is safe, unlike forking a parent whose drivers run monitor
threads), and forks each worker from it in milliseconds. Measured on this project's
2-core machine: a multiprocessing run of 20 documents took 1.2 s spawned and 0.3 s
forked; 20,000 nested customers, 3.6-4.5 s and 3.2-3.5 s.

A forked worker starts with the environment the fork server had when it started (the
first time a process worker was wanted), not the parent's environment of the moment:
what a worker needs comes in its pickled job, never from environment variables. Where
there is no fork server (Windows), workers are spawned.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from multiprocessing import reduction
from multiprocessing.context import SpawnContext
from typing import Any

if sys.platform != "win32":
    from multiprocessing.context import ForkServerContext

    #: The two ways the kit starts worker processes.
    WorkerContext = ForkServerContext | SpawnContext
else:  # Windows has no fork server
    WorkerContext = SpawnContext

#: What the fork server imports once, before it forks a worker: the whole kit.
PRELOADED = ("migrationkit",)


def worker_processes() -> WorkerContext:
    """The start method for the clusters' worker processes (see the module's docstring)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOADED))  # read when the server starts, once
    return context


#: The standard streams a forked worker takes over from its parent: stdout, stderr.
STANDARD_STREAMS = (1, 2)


class ParentStreams:
    """This process's stdout and stderr, sent along with a worker's arguments.

    A fork server's children inherit the server's streams, fixed when it started, where
    a spawned child inherits its parent's of the moment. Sent as file descriptors with
    the worker's arguments (pickling happens as the worker starts), they keep a worker's
    log lines where its parent's go now: a terminal, a notebook, a test's capture.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Only while a process starts is there a child to hand descriptors to.
        handles = [(fd, reduction.DupFd(fd)) for fd in STANDARD_STREAMS if _is_open(fd)]
        return (_ReceivedStreams, (handles,))


class _ReceivedStreams:
    """What :class:`ParentStreams` becomes in the worker: descriptors to put in place."""

    def __init__(self, handles: list[tuple[int, Any]]) -> None:
        self._handles = handles

    def adopt(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for target, handle in self._handles:
            received = handle.detach()
            os.dup2(received, target)
            os.close(received)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def run_with_parent_streams(
    streams: _ReceivedStreams | ParentStreams, main: Callable[..., None], *args: Any
) -> None:
    """A worker process's entry point: take over the parent's streams, then run ``main``."""
    if isinstance(streams, _ReceivedStreams):  # always, in a started process
        streams.adopt()
    main(*args)
