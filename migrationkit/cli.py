"""The ``migrationkit`` command: servers, seed, migrate, demo.

Expected failures (bad settings, unreachable servers, a failed worker) print one
line on stderr and exit 1; bad arguments exit 2, as argparse does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from pydantic import ValidationError

from migrationkit.bench import add_bench_parser, cmd_bench
from migrationkit.clusters import ClusterMigrationFactory
from migrationkit.connections import MongoConnectionHandler, PostgresConnectionHandler
from migrationkit.doctor import add_doctor_parser, cmd_doctor
from migrationkit.endpoints import resolve_endpoints
from migrationkit.errors import ConfigurationError, IntegrityCheckError, MigrationKitError
from migrationkit.migration import migrate
from migrationkit.progress import NullProgress, Progress, TqdmProgress
from migrationkit.report import MigrationReport
from migrationkit.repositories import UserMongoRepository, UserPostgresRepository
from migrationkit.repositories.postgres import WRITERS
from migrationkit.seeding import seed_users
from migrationkit.settings import Settings
from migrationkit.transforms import TRANSFORMS
from migrationkit.verify import verify


def positive_int(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="migrationkit", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    servers = commands.add_parser("servers", help="embedded MongoDB-wire and PostgreSQL servers")
    servers.add_argument(
        "action",
        choices=["start", "stop", "status", "reset"],
        help="reset: back to a clean, seeded state (instructors)",
    )
    servers.add_argument("--count", type=positive_int, default=100_000, help="reset: users to seed")
    servers.add_argument("--seed", type=int, default=0, help="reset: same seed, same users")

    seed = commands.add_parser("seed", help="fill the MongoDB collection with fake users")
    seed.add_argument("--count", type=positive_int, default=100_000)
    seed.add_argument("--seed", type=int, default=0, help="same seed, same users")
    seed.add_argument("--append", action="store_true", help="keep existing users")
    seed.add_argument("--quiet", action="store_true", help="no progress bar")

    run = commands.add_parser("migrate", help="copy the users collection into PostgreSQL")
    add_migration_options(run)
    run.add_argument("--json", action="store_true", help="print the report as one JSON object")
    run.add_argument(
        "--resume", action="store_true", help="continue after the last checkpoint, keep the table"
    )

    check = commands.add_parser(
        "verify", help="compare every document with the table: ids, values, checksums"
    )
    check.add_argument("--transform", choices=list(TRANSFORMS), default="validate")

    rejects = commands.add_parser("rejects", help="list documents set aside, with the reason")
    rejects.add_argument("--limit", type=positive_int, default=20)

    add_doctor_parser(commands)
    add_bench_parser(commands)

    demo = commands.add_parser("demo", help="seed, then migrate with every backend and compare")
    demo.add_argument("--count", type=positive_int, default=100_000)
    demo.add_argument("--workers", type=positive_int)
    return parser


def add_migration_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=ClusterMigrationFactory.available())
    parser.add_argument("--workers", type=positive_int)
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument("--writer", choices=WRITERS)
    parser.add_argument("--mongo-driver", choices=["motor", "pymongo"])
    parser.add_argument(
        "--transform",
        choices=list(TRANSFORMS),
        default="validate",
        help="per-row work: validate only, or also pseudonymise e-mails (CPU-heavy)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def load_settings(**overrides: Any) -> Settings:
    """Environment first, then the flags that were given; one clear error if invalid."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


def progress_for(args: argparse.Namespace) -> Progress:
    return NullProgress() if args.quiet or getattr(args, "json", False) else TqdmProgress()


def cmd_servers(args: argparse.Namespace) -> None:
    from migrationkit.embedded import EmbeddedServers

    if args.action == "reset":
        from migrationkit.workshop import reset_workshop

        reset_workshop(
            count=args.count, seed=args.seed, progress=TqdmProgress(), settings=load_settings()
        )
        return
    servers = EmbeddedServers()
    if args.action == "start":
        servers.start()
    elif args.action == "stop":
        servers.stop()
    for status in servers.status():
        state = "running" if status.running else "stopped"
        print(f"{status.name:<11} {state:<8} {status.detail}")


async def cmd_seed(args: argparse.Namespace) -> None:
    settings = load_settings()
    endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client:
        repository = UserMongoRepository(client[settings.mongo_database][settings.mongo_collection])
        inserted = await seed_users(
            repository, args.count, seed=args.seed, append=args.append, progress=progress_for(args)
        )
        total = await repository.estimated_count()
    print(f"seeded {inserted:,} users ({total:,} in {settings.mongo_collection})")


async def cmd_migrate(args: argparse.Namespace) -> None:
    settings = load_settings(
        backend=args.backend,
        workers=args.workers,
        batch_size=args.batch_size,
        writer=args.writer,
        mongo_driver=args.mongo_driver,
    )
    report = await migrate(
        settings,
        progress=progress_for(args),
        transform=TRANSFORMS[args.transform],
        resume=args.resume,
    )
    if args.json:
        print(json.dumps(report.to_dict()))
        return
    if report.resumed_after is not None:
        print(f"resumed after _id {report.resumed_after}")
    print(format_table([report]))
    print_rejections(report)


async def cmd_verify(args: argparse.Namespace) -> None:
    report = await verify(load_settings(), transform=TRANSFORMS[args.transform])
    if not report.ok:
        raise IntegrityCheckError(report.summary())
    print(report.summary())


async def cmd_rejects(args: argparse.Namespace) -> None:
    settings = load_settings()
    endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    async with PostgresConnectionHandler(endpoints.pg_dsn) as pool:
        repository = UserPostgresRepository(pool, table=settings.pg_table)
        await repository.create_tables()
        total = await repository.count_rejected()
        for record in await repository.rejections(limit=args.limit):
            print(f"_id {record['mongo_id']}  ({record['rejected_at']:%Y-%m-%d %H:%M:%S})")
            print(f"  reason:   {record['reason']}")
            print(f"  document: {shorten(record['document'], 200)}")
    shown = min(total, args.limit)
    print(f"{total:,} rejected documents in {repository.rejected_table} (showing {shown}).")
    if total:
        print("Fix them in MongoDB, then run `migrationkit migrate` again to pick them up.")


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


async def cmd_demo(args: argparse.Namespace) -> None:
    base = load_settings(workers=args.workers)
    endpoints = await asyncio.to_thread(resolve_endpoints, base)
    print(f"MongoDB: {endpoints!r}")
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=base.mongo_driver) as client:
        repository = UserMongoRepository(client[base.mongo_database][base.mongo_collection])
        await seed_users(repository, args.count, progress=TqdmProgress())
    reports = []
    for backend in ClusterMigrationFactory.available():
        settings = base.model_copy(update={"backend": backend})
        reports.append(await migrate(settings, endpoints=endpoints, progress=TqdmProgress()))
    print(format_table(reports))


def format_table(reports: Sequence[MigrationReport]) -> str:
    header = (
        f"{'backend':<16} {'writer':<12} {'workers':>7} {'rows':>10} "
        f"{'rejected':>8} {'seconds':>8} {'rows/s':>10}  check"
    )
    lines = [header, "-" * len(header)]
    for r in reports:
        ok = "ok" if r.rows_written + r.rows_rejected == r.rows_read else "MISMATCH"
        lines.append(
            f"{r.backend:<16} {r.writer:<12} {r.workers:>7} {r.rows_written:>10,} "
            f"{r.rows_rejected:>8,} {r.elapsed_s:>8.2f} {r.rows_per_s:>10,.0f}  {ok}"
        )
    return "\n".join(lines)


def print_rejections(report: MigrationReport) -> None:
    if not report.rows_rejected:
        return
    print(f"\n{report.rows_rejected:,} documents were set aside, not written; first reasons:")
    for mongo_id, reason in report.rejected_samples[:10]:
        print(f"  _id {mongo_id}: {reason}")
    print("See them all with `migrationkit rejects`.")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    commands = {
        "seed": cmd_seed,
        "migrate": cmd_migrate,
        "rejects": cmd_rejects,
        "verify": cmd_verify,
        "bench": cmd_bench,
        "demo": cmd_demo,
    }
    try:
        if args.command == "servers":
            cmd_servers(args)
        elif args.command == "doctor":
            return cmd_doctor(args)
        else:
            asyncio.run(cancelled_by_sigterm(commands[args.command](args)))
    except MigrationKitError as exc:
        print(f"migrationkit: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        # asyncio.run turns Ctrl-C into KeyboardInterrupt; our SIGTERM handler cancels.
        by = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else "SIGTERM"
        print(f"migrationkit: stopped by {by}", file=sys.stderr)
        return 128 + (signal.SIGINT if by == "Ctrl-C" else signal.SIGTERM)
    return 0


async def cancelled_by_sigterm(command: Coroutine[Any, Any, None]) -> None:
    """Run ``command``; SIGTERM cancels it, so cleanup runs just as for Ctrl-C."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await command
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
