"""``migrate --follow`` and ``cutover`` on the command line.

A follower runs until Ctrl-C or SIGTERM; once it follows, either stops it between two
batches (the last one committed with its position), prints what it did and exits 0, so
a supervisor can stop it and start it again with ``--follow --resume``. During the load
they stop it as they stop any load (exit 130 / 143, checkpoint saved).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from migrationkit._mapping.spec import TableMapping
from migrationkit._normalize.rows import Transform
from migrationkit._observe.observe import Observer
from migrationkit._observe.progress import Progress
from migrationkit._run.cutover import DEFAULT_TIMEOUT_S, cutover
from migrationkit._run.follow import FollowOptions, FollowStatus
from migrationkit._run.migration import Migration, RangeOptions
from migrationkit._run.report import MigrationReport
from migrationkit._settings.profiles import ResolvedSettings


def add_follow_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow",
        action="store_true",
        help="after the load, apply the collection's changes until stopped (Ctrl-C, SIGTERM)",
    )


def add_cutover_parser(commands: Any, *, add_options: Any) -> None:
    parser = commands.add_parser(
        "cutover",
        help="wait for the follower to apply every change made until now, then verify",
    )
    add_options(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up (exit status 5) after this long (default {DEFAULT_TIMEOUT_S:.0f})",
    )


async def cmd_cutover(args: argparse.Namespace, resolved: ResolvedSettings) -> None:
    report = await cutover(
        resolved.settings, timeout_s=args.timeout, mapping=resolved.mapping_choice().mapping
    )
    print(report.summary())
    print("source and target agree: switch the application over now")


class FollowDisplay:
    """One status line on stderr, rewritten after each batch (none with --quiet)."""

    def __init__(self, *, quiet: bool) -> None:
        self._quiet = quiet or not sys.stderr.isatty()

    def __call__(self, status: FollowStatus) -> None:
        if self._quiet:
            return
        print(
            f"\rfollowing: {status.events_applied:,} changes applied, "
            f"{status.events_per_s:,.0f}/s, lag {status.lag_s:.1f} s   ",
            end="",
            file=sys.stderr,
            flush=True,
        )


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event, *, following: Callable[[], bool]) -> Iterator[None]:
    """Ctrl-C and SIGTERM: while loading, cancel (the load saves its checkpoint, as
    without ``--follow``); once following, set ``stop``, ending after the batch in hand."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_signal() -> None:
        if following():
            stop.set()
        else:
            task.cancel()

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, on_signal)
    try:
        yield
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


async def follow_one(
    args: argparse.Namespace,
    resolved: ResolvedSettings,
    *,
    mapping: TableMapping | None,
    transform: Transform | None,
    progress: Progress,
    observer: Observer | None,
    ranges: RangeOptions,
) -> tuple[MigrationReport, FollowStatus | None]:
    """Load (or resume) and follow one collection until stopped."""
    stop = asyncio.Event()
    run = Migration(
        resolved.settings,
        mapping=mapping,
        transform=transform,
        progress=progress,
        observer=observer,
        ranges=ranges,
        on_follow_batch=FollowDisplay(quiet=args.quiet or args.json),
    )
    run.check_options(resume=args.resume)
    with stop_on_signals(stop, following=lambda: run.follow_status is not None):
        async with run:
            report = await run.migrate(resume=args.resume, follow=FollowOptions(stop=stop))
    if not args.quiet and not args.json:
        print(file=sys.stderr)
    return report, run.follow_status
