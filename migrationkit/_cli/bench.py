"""``migrationkit bench``: its arguments, and the command that runs the benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from migrationkit._settings.settings import Settings
from migrationkit.workshop.bench.follow import format_follow_report, run_follow_benchmark
from migrationkit.workshop.bench.nested import run_nested_benchmark
from migrationkit.workshop.bench.nested_table import format_nested_report
from migrationkit.workshop.bench.runner import run_benchmark
from migrationkit.workshop.bench.table import format_report


def _positive(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _scale(text: str) -> int:
    value = _positive(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {value}")
    return value


def _positive_list(text: str) -> list[int]:
    return [_positive(part) for part in text.split(",") if part.strip()]


def add_bench_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the ``migrationkit`` command's subparsers."""
    bench = subparsers.add_parser(
        "bench", help="measure limits, backends, writers, scaling and the original's approach"
    )
    bench.add_argument("--count", type=_positive, default=200_000, help="users in the data set")
    bench.add_argument("--scale", type=_scale, default=5, help="scaling run at SCALE x count")
    bench.add_argument("--json", type=Path, metavar="PATH", help="write the report here as JSON")
    bench.add_argument("--chart", type=Path, metavar="PATH", help="write a PNG chart here")
    bench.add_argument("--workers", type=_positive_list, default=[1, 2, 4], help="e.g. 1,2,4")
    bench.add_argument("--batch-sizes", type=_positive_list, default=[5_000, 10_000])
    bench.add_argument("--repeats", type=_positive, default=2, help="trials of each limit")
    bench.add_argument("--insert-rows", type=_positive, default=20_000,
                       help="rows for the one-INSERT-per-row writer (it is slow)")  # fmt: skip
    bench.add_argument("--original-budget", type=float, default=300.0, metavar="SECONDS",
                       help="stop the skip/limit run after this long and extrapolate")  # fmt: skip
    bench.add_argument("--mongo-driver", choices=["motor", "pymongo"])
    bench.add_argument("--reseed", action="store_true", help="seed even if the data set exists")
    bench.add_argument("--suite", choices=["users", "nested", "follow"], default="users",
                       help="users (default): the users benchmark; nested: issue 13; "
                       "follow: the change-stream follower")  # fmt: skip
    nested = bench.add_argument_group(
        "--suite nested", "nested customers against the raw read and dlt, and the users path"
        " (--count users, --scale, --repeats, --original-budget and --json apply too)",
    )  # fmt: skip
    nested.add_argument("--customers", type=_positive, default=20_000, help="nested documents")
    nested.add_argument("--nested-workers", type=_positive, default=2, help="workers of every run")
    nested.add_argument("--nested-batch-size", type=_positive, default=2_000,
                        help="customers per batch (users: the largest --batch-sizes)")  # fmt: skip
    nested.add_argument("--no-dlt", action="store_true", help="leave dlt out")
    follow = bench.add_argument_group(
        "--suite follow", "changes applied against the raw change stream, and the lag under "
        "a steady writer (--repeats rounds)",
    )  # fmt: skip
    follow.add_argument("--follow-documents", type=_positive, default=5_000,
                        help="customers in the followed collection")  # fmt: skip
    follow.add_argument("--changes", type=_positive, default=20_000, help="changes a round")
    follow.add_argument("--lag-seconds", type=float, default=15.0,
                        help="how long each steady writer runs")  # fmt: skip


async def cmd_bench(args: argparse.Namespace, settings: Settings) -> None:
    """Run the benchmark with progress on stderr, then print the table."""
    overrides = {"mongo_driver": args.mongo_driver} if args.mongo_driver else {}
    if args.suite == "nested":
        await _cmd_bench_nested(args, settings.model_copy(update=overrides))
        return
    if args.suite == "follow":
        followed = await run_follow_benchmark(
            settings.model_copy(update=overrides),
            documents=args.follow_documents,
            changes=args.changes,
            rounds=max(args.repeats, 1),
            lag_seconds=args.lag_seconds,
            echo=lambda line: print(line, file=sys.stderr, flush=True),
        )
        print(format_follow_report(followed))
        return
    report = await run_benchmark(
        args.count,
        scale=args.scale,
        settings=settings.model_copy(update=overrides),
        workers=args.workers,
        batch_sizes=args.batch_sizes,
        repeats=args.repeats,
        insert_rows=args.insert_rows,
        original_budget_s=args.original_budget,
        reseed=args.reseed,
        json_path=args.json,
        chart_path=args.chart,
        echo=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_report(report))


async def _cmd_bench_nested(args: argparse.Namespace, settings: Settings) -> None:
    report = await run_nested_benchmark(
        args.customers,
        scale=args.scale,
        users_count=args.count,
        settings=settings,
        workers=args.nested_workers,
        batch_size=args.nested_batch_size,
        users_batch_size=max(args.batch_sizes),
        repeats=args.repeats,
        original_budget_s=args.original_budget,
        with_dlt=not args.no_dlt,
        reseed=args.reseed,
        json_path=args.json,
        echo=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_nested_report(report))
