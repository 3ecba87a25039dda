"""The ``migrationkit`` command: servers, seed, infer, migrate, demo.

Settings come from defaults, a ``migrationkit.toml`` profile, ``MIGRATIONKIT_*``
variables and flags, in that order (:mod:`migrationkit._settings.profiles`).

Exit status: 0 all is well; 1 an expected failure (bad settings, unreachable servers,
a failed worker), told in one line on stderr; 2 bad arguments, as argparse does;
3 another run holds the target table (the line names it: run id, host, pid, start,
command); 4 the run completed but set aside more documents than ``--max-rejected`` allows
(each reason summarised; ``migrationkit rejects`` shows them); 130 / 143 stopped by
Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from migrationkit._cli.bench import add_bench_parser, cmd_bench
from migrationkit._cli.doctor import add_doctor_parser, cmd_doctor
from migrationkit._cli.follow import (
    add_cutover_parser,
    add_follow_arguments,
    cmd_cutover,
    follow_one,
)
from migrationkit._cli.infer import add_infer_parser, cmd_infer, write_mapping
from migrationkit._cli.malloc_tuning import return_big_buffers_to_the_os
from migrationkit._cli.type_map import add_types_parser, cmd_types
from migrationkit._errors import (
    ConfigurationError,
    DocumentsSetAsideError,
    IntegrityCheckError,
    MigrationKitError,
    TargetBusyError,
)
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.dispatch import DISPATCHERS
from migrationkit._mapping.files import mapping_for, read_mapping_file
from migrationkit._mapping.spec import TableMapping, users_mapping
from migrationkit._mapping.types import from_jsonb
from migrationkit._normalize.rows import document_json
from migrationkit._normalize.transforms import TRANSFORMS
from migrationkit._observe.logs import LogFormat, configure_logging, current_run_id, run_scope
from migrationkit._observe.observe import Observer
from migrationkit._observe.progress import NullProgress, Progress, TqdmProgress
from migrationkit._run.inference import infer_collection
from migrationkit._run.migration import RangeOptions, migrate
from migrationkit._run.report import MigrationReport, format_reports
from migrationkit._run.verify import verify
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.profiles import (
    CONFIG_VARIABLE,
    PROFILE_VARIABLE,
    ResolvedSettings,
    resolve_settings,
)
from migrationkit._settings.settings import Settings, plain_identifier
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.repository import UserMongoRepository
from migrationkit._target.connection import PostgresConnectionHandler
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.tables import create_target
from migrationkit._target.writers import WRITERS
from migrationkit.workshop.seeding import seed_users

if TYPE_CHECKING:
    from migrationkit._observe.metrics import MetricsServer

#: Flags that set a setting, named as the setting with dashes (``--batch-size``).
SETTING_FLAGS = (
    "backend",
    "workers",
    "batch_size",
    "batch_bytes",
    "writer",
    "dispatch",
    "mongo_driver",
    "metrics_port",
    "metrics_host",
    "log_format",
    "mapping",
)


def _int_at_least(text: str, lowest: int) -> int:
    value = int(text.replace("_", ""))
    if value < lowest:
        raise argparse.ArgumentTypeError(f"must be at least {lowest}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def add_dask_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scheduler``, ``--partitions`` and ``--worker-env`` for ``migrationkit migrate``."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler for --backend dask, e.g. tcp://host:8786 "
        "(default: $DASK_SCHEDULER_ADDRESS, else a local cluster of --workers processes)",
    )
    parser.add_argument(
        "--partitions",
        type=positive_int,
        metavar="N",
        help="dispatch work as N _id ranges (default: one per worker); "
        "with --backend multiprocessing, ranges instead of batches",
    )
    parser.add_argument(
        "--worker-env",
        action="store_true",
        help="workers read MIGRATIONKIT_MONGO_URI and MIGRATIONKIT_PG_DSN themselves: "
        "no password travels with the tasks",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="migrationkit", description=__doc__.splitlines()[0])
    add_common_options(parser, default=None)
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
    add_dask_arguments(run)
    run.add_argument("--json", action="store_true", help="print the report as one JSON object")
    several = run.add_mutually_exclusive_group()
    several.add_argument(
        "--collections",
        type=collection_names,
        metavar="A,B,…",
        help="migrate these collections of the database, each to a table of its name",
    )
    several.add_argument(
        "--all-collections",
        action="store_true",
        help="migrate every collection of the database, each to a table of its name",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue after the last checkpoint (with --follow: after the last change "
        "applied), keep the table",
    )
    add_follow_arguments(run)
    run.add_argument(
        "--max-rejected",
        type=rejected_allowance,
        default=RejectedAllowance(),
        metavar="N|P%",
        help="documents that may be set aside before the run exits with status 4 (default 0)",
    )
    run.add_argument(
        "--metrics-linger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep serving /metrics this long after the run, for a last scrape",
    )

    add_cutover_parser(commands, add_options=add_setting_flags)

    config = commands.add_parser("config", help="the effective settings and where each comes from")
    show = config.add_subparsers(dest="config_action", required=True).add_parser(
        "show", help="print every setting, its value (passwords hidden) and its source"
    )
    add_setting_flags(show)
    add_common_options(show, default=argparse.SUPPRESS)

    check = commands.add_parser(
        "verify", help="compare every document with the table: ids, values, checksums"
    )
    check.add_argument("--transform", choices=list(TRANSFORMS), default="validate")
    check.add_argument(
        "--mapping",
        metavar="MAPPING",
        help="users, or a TOML file of [mappings.<collection>] tables "
        "(default: as migrate decides; an inferred one is the mapping recorded with the table)",
    )

    rejects = commands.add_parser("rejects", help="list documents set aside, with the reason")
    rejects.add_argument("--limit", type=positive_int, default=20)

    add_infer_parser(commands)
    add_types_parser(commands)
    add_doctor_parser(commands)
    add_bench_parser(commands)

    demo = commands.add_parser("demo", help="seed, then migrate with every backend and compare")
    demo.add_argument("--count", type=positive_int, default=100_000)
    demo.add_argument("--workers", type=positive_int)
    for command in commands.choices.values():
        add_common_options(command, default=argparse.SUPPRESS)
    return parser


def add_common_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """Options every command takes, before or after its name (``default``: SUPPRESS after)."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help=f"settings file (default ./migrationkit.toml, or ${CONFIG_VARIABLE})",
    )
    parser.add_argument(
        "--profile", default=default, help=f"profile in the settings file (or ${PROFILE_VARIABLE})"
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=default,
        help="log lines as text (default) or one JSON object each",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if default is None else default,
        help="log progress details",
    )


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        type=backend_name,
        metavar="BACKEND",
        help=f"{', '.join(ClusterMigrationFactory.available())}, or one you registered",
    )
    parser.add_argument("--workers", type=positive_int)
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument(
        "--batch-bytes",
        type=non_negative_int,
        metavar="BYTES",
        help="a batch also closes at this many bytes of BSON (default 8 MiB; 0: no byte "
        "limit, for collections known to hold only small documents)",
    )
    parser.add_argument(
        "--writer", metavar="WRITER", help=f"{', '.join(WRITERS)}, or module:function (yours)"
    )
    parser.add_argument(
        "--dispatch",
        metavar="DISPATCHER",
        help=f"{', '.join(DISPATCHERS.names())}, or module:Class (yours)",
    )
    parser.add_argument("--mongo-driver", choices=["motor", "pymongo"])
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="PORT",
        help="serve Prometheus metrics on this port (0: any free one) during the run",
    )
    parser.add_argument(
        "--metrics-host", metavar="ADDRESS", help="where the metrics port listens (127.0.0.1)"
    )
    parser.add_argument(
        "--mapping",
        metavar="MAPPING",
        help="users (built-in), infer, or a TOML file of [mappings.<collection>] tables "
        "(default: migrationkit.toml's [mappings.<collection>], else users for a "
        "collection called users, else infer)",
    )


def backend_name(text: str) -> str:
    if text not in ClusterMigrationFactory.available():
        choices = ", ".join(ClusterMigrationFactory.available())
        raise argparse.ArgumentTypeError(f"unknown backend {text!r} (choose from {choices})")
    return text


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def add_migration_options(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser)
    parser.add_argument(
        "--transform",
        choices=list(TRANSFORMS),
        default="validate",
        help="per-row work: validate only, or also pseudonymise e-mails (CPU-heavy)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def resolve(args: argparse.Namespace, **flags: Any) -> ResolvedSettings:
    """The config file's profile, then the environment, then ``flags`` (``None``: not given)."""
    return resolve_settings(
        config=getattr(args, "config", None),
        profile=getattr(args, "profile", None),
        flags={"log_format": getattr(args, "log_format", None), **flags},
    )


def load_settings(args: argparse.Namespace, **flags: Any) -> Settings:
    """Every command's settings; one clear error naming the key and its source if invalid."""
    return resolve(args, **flags).settings


def setting_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {key: getattr(args, key, None) for key in SETTING_FLAGS}


def progress_for(args: argparse.Namespace) -> Progress:
    return NullProgress() if args.quiet or getattr(args, "json", False) else TqdmProgress()


def cmd_servers(args: argparse.Namespace) -> None:
    from migrationkit._servers.embedded import EmbeddedServers

    if args.action == "reset":
        from migrationkit.workshop.reset import reset_workshop

        reset_workshop(
            count=args.count, seed=args.seed, progress=TqdmProgress(), settings=load_settings(args)
        )
        return
    servers = EmbeddedServers()
    if args.action == "start":
        servers.start()
    elif args.action == "stop":
        servers.stop()
    statuses = servers.status()
    for status in statuses:
        state = "running" if status.running else "stopped"
        print(f"{status.name:<11} {state:<8} {status.detail}")
    if args.action != "stop" and all(status.running for status in statuses):
        from migrationkit._servers.doctor import DEFAULT_TIMEOUT_S, run_checks

        # The runs holding a target lock there (migrationkit_runs), as `doctor` lists them.
        for check in asyncio.run(run_checks(servers.endpoints().pg_dsn, DEFAULT_TIMEOUT_S)):
            print(f"{'runs':<11} in progress: {check.detail}")


async def cmd_seed(args: argparse.Namespace) -> None:
    settings = load_settings(args)
    endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client:
        repository = UserMongoRepository(client[settings.mongo_database][settings.mongo_collection])
        inserted = await seed_users(
            repository, args.count, seed=args.seed, append=args.append, progress=progress_for(args)
        )
        total = await repository.estimated_count()
    print(f"seeded {inserted:,} users ({total:,} in {settings.mongo_collection})")


async def mapping_to_migrate(resolved: ResolvedSettings, *, resume: bool) -> TableMapping | None:
    """The declared mapping; else (no mapping anywhere) one inferred and written to review.

    The inferred mapping is written to ``./<collection>.mapping.toml`` and said so; a
    later run finds that file and uses it. ``None`` on ``--resume``: the run then takes
    the mapping it recorded with the table.
    """
    choice = resolved.mapping_choice()
    if choice.mapping is not None or resume:
        return choice.mapping
    settings = resolved.settings
    path = Path(f"{settings.mongo_collection}.mapping.toml")
    if await asyncio.to_thread(path.exists):
        found = await asyncio.to_thread(read_mapping_file, path)
        mapping = mapping_for(settings.mongo_collection, found, where=str(path))
        print(f"using the mapping in {path} (inferred earlier)", file=sys.stderr)
        return mapping
    endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    inference = await infer_collection(settings, endpoints.mongo_uri)
    write_mapping(path, inference, force=False)
    print(
        f"no mapping is declared for {settings.mongo_collection}: inferred one from "
        f"{inference.report.documents:,} documents and wrote it to {path}; review it "
        "(later runs use it)",
        file=sys.stderr,
    )
    return inference.mapping


def collection_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one collection")
    return names


async def cmd_migrate(args: argparse.Namespace) -> None:
    resolved = resolve(args, **setting_flags(args))
    if args.follow and (args.collections is not None or args.all_collections):
        raise ConfigurationError("--follow follows one collection: run one follower for each")
    if args.collections is None and not args.all_collections:
        report = await migrate_one(args, resolved)
        check_rejections(report, args.max_rejected)
        return
    names = args.collections or await every_collection(resolved.settings)
    if "pg_table" in resolved.settings.model_fields_set:
        raise ConfigurationError(
            "several collections go each to a table of its own name: unset pg_table "
            "(MIGRATIONKIT_PG_TABLE or the profile's pg_table)"
        )
    reports = []
    for name in names:
        try:
            plain_identifier(name)
        except ValueError as exc:
            raise ConfigurationError(f"collection {name!r}: {exc}") from None
        one = dataclasses.replace(
            resolved,
            settings=resolved.settings.model_copy(update={"mongo_collection": name}),
        )
        reports.append(await migrate_one(args, one, quiet_summary=True))
    if not args.json:
        print(format_reports(reports, by_collection=True))
        for report in reports:
            print_rejections(report)
    for report in reports:
        check_rejections(report, args.max_rejected)


async def every_collection(settings: Settings) -> list[str]:
    """The database's collections, but the server's own (``system.*``)."""
    endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client:
        names = await client[settings.mongo_database].list_collection_names()
    found = sorted(name for name in names if not name.startswith("system."))
    if not found:
        raise ConfigurationError(f"database {settings.mongo_database} has no collections")
    return found


async def migrate_one(
    args: argparse.Namespace, resolved: ResolvedSettings, *, quiet_summary: bool = False
) -> MigrationReport:
    """One collection's run, printed (unless a summary of several follows)."""
    settings = resolved.settings
    mapping = await mapping_to_migrate(resolved, resume=args.resume)
    observer, exporter = start_metrics(settings)
    followed = None
    try:
        if args.follow:
            report, followed = await follow_one(
                args,
                resolved,
                mapping=mapping,
                transform=None if args.transform == "validate" else TRANSFORMS[args.transform],
                progress=progress_for(args),
                observer=observer,
                ranges=RangeOptions(args.partitions, args.scheduler, args.worker_env),
            )
        else:
            report = await migrate(
                settings,
                mapping=mapping,
                progress=progress_for(args),
                # "validate" is the mapping's own transform (it also names dropped fields).
                transform=None if args.transform == "validate" else TRANSFORMS[args.transform],
                resume=args.resume,
                observer=observer,
                ranges=RangeOptions(args.partitions, args.scheduler, args.worker_env),
            )
        if exporter is not None and args.metrics_linger > 0:
            await asyncio.sleep(args.metrics_linger)
    finally:
        if exporter is not None:
            exporter.close()
    if args.json:
        extra = {} if followed is None else {"followed": followed.to_dict()}
        print(json.dumps({**report.to_dict(), **extra, "run_id": current_run_id()}))
    elif not quiet_summary:
        if report.resumed_after is not None:
            print(f"resumed after _id {report.resumed_after}")
        print(format_reports([report]))
        print_rejections(report)
        if followed is not None:
            print(followed.summary())
            print("stopped; go on with `migrationkit migrate --follow --resume`")
    return report


def start_metrics(settings: Settings) -> tuple[Observer | None, MetricsServer | None]:
    """With ``metrics_port`` set: a Prometheus observer and its exporter (address on stderr)."""
    if settings.metrics_port is None:
        return None, None
    try:
        from migrationkit._observe.metrics import PrometheusObserver
    except ImportError:
        raise ConfigurationError(
            "metrics need prometheus-client: pip install 'migrationkit[metrics]'"
        ) from None
    observer = PrometheusObserver()
    exporter = observer.serve(port=settings.metrics_port, host=settings.metrics_host)
    print(f"serving metrics at {exporter.url}", file=sys.stderr, flush=True)
    return observer, exporter


def cmd_config(args: argparse.Namespace) -> None:
    print(resolve(args, **setting_flags(args)).show())


async def cmd_verify(args: argparse.Namespace) -> None:
    resolved = resolve(args, mapping=args.mapping)
    report = await verify(
        resolved.settings,
        # None: the mapping recorded when the table was written.
        mapping=resolved.mapping_choice().mapping,
        transform=None if args.transform == "validate" else TRANSFORMS[args.transform],
    )
    if not report.ok:
        raise IntegrityCheckError(report.summary())
    print(report.summary())


async def cmd_rejects(args: argparse.Namespace) -> None:
    settings = load_settings(args)
    endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    async with PostgresConnectionHandler(endpoints.pg_dsn) as pool:
        await create_target(pool, users_mapping(settings.pg_table))
        dead_letters = DeadLetterRepository(pool, table=settings.pg_table)
        total = await dead_letters.count()
        for record in await dead_letters.latest(limit=args.limit):
            print(f"_id {record['mongo_id']}  ({record['rejected_at']:%Y-%m-%d %H:%M:%S})")
            print(f"  reason:   {record['reason']}")
            document = document_json(from_jsonb(record["document"]))
            print(f"  document: {shorten(document, 200)}")
    shown = min(total, args.limit)
    print(f"{total:,} rejected documents in {dead_letters.table} (showing {shown}).")
    if total:
        print("Fix them in MongoDB, then run `migrationkit migrate` again to pick them up.")


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


async def cmd_demo(args: argparse.Namespace) -> None:
    base = load_settings(args, workers=args.workers)
    endpoints = await asyncio.to_thread(resolve_endpoints, base)
    print(endpoints.describe())
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=base.mongo_driver) as client:
        repository = UserMongoRepository(client[base.mongo_database][base.mongo_collection])
        await seed_users(repository, args.count, progress=TqdmProgress())
    reports = []
    for backend in ClusterMigrationFactory.available("batches"):
        settings = base.model_copy(update={"backend": backend})
        reports.append(await migrate(settings, endpoints=endpoints, progress=TqdmProgress()))
    print(format_reports(reports))


def print_rejections(report: MigrationReport) -> None:
    """One summary of what was not written as read: set aside (by reason) and dropped."""
    if report.rows_rejected:
        print(f"\n{report.rows_rejected:,} documents were set aside, not written, for:")
        for reason, count, ids in report.rejections_by_reason():
            print(f"  {count:>9,}  {reason}  (e.g. _id {', '.join(ids)})")
        print("See each document and its reason with `migrationkit rejects`.")
    if report.fields_dropped:
        fields = ", ".join(f"{path} ({n:,})" for path, n in sorted(report.fields_dropped.items()))
        print(f"\nFields with no column, not written (documents): {fields}")
    if report.fields_kept_aside:
        fields = ", ".join(
            f"{path} ({n:,})" for path, n in sorted(report.fields_kept_aside.items())
        )
        print(f"\nValues of another type, kept in the catch-all column (documents): {fields}")


def check_rejections(report: MigrationReport, allowed: RejectedAllowance) -> None:
    """Fail (exit status 4) when more documents were set aside than ``--max-rejected``."""
    if allowed.permits(report.rows_rejected, of=report.rows_read):
        return
    raise DocumentsSetAsideError(
        f"{report.rows_rejected:,} of {report.rows_read:,} documents were set aside "
        f"(allowed: {allowed}); the rest landed. Look at them with `migrationkit rejects`, "
        "fix them in MongoDB and run again, or allow some with --max-rejected N or P%"
    )


@dataclass(frozen=True)
class RejectedAllowance:
    """``--max-rejected``: a number of documents, or a percentage of those read."""

    count: int = 0
    percent: float | None = None

    def permits(self, rejected: int, *, of: int) -> bool:
        if self.percent is not None:
            return rejected <= of * self.percent / 100
        return rejected <= self.count

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else f"{self.count:,}"


def rejected_allowance(text: str) -> RejectedAllowance:
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 <= percent <= 100:
                raise ValueError
            return RejectedAllowance(percent=percent)
        count = int(text.replace("_", ""))
        if count < 0:
            raise ValueError
        return RejectedAllowance(count=count)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a number of documents or a percentage (e.g. 100 or 0.5%), got {text!r}"
        ) from None


#: Exit status of a run refused because another run holds its target table.
EXIT_TARGET_BUSY = TargetBusyError.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    return_big_buffers_to_the_os()  # resident memory follows the byte bound (see the module)
    args = build_parser().parse_args(argv)
    # ``--writer mine:write`` and ``--dispatch mine:Dispatcher`` name code in the
    # current folder, as with ``python -m`` (a console script's path lacks it).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    with run_scope():
        configure_logging(
            log_format=log_format_for(args), level=logging.INFO if args.verbose else logging.WARNING
        )
        return run_command(args)


def log_format_for(args: argparse.Namespace) -> LogFormat:
    """The flag, else the configured setting; text when the settings are broken (reported next)."""
    if args.log_format is not None:
        return cast(LogFormat, args.log_format)
    try:
        return load_settings(args).log_format
    except MigrationKitError:
        return "text"


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; the exit code."""
    commands = {
        "seed": cmd_seed,
        "migrate": cmd_migrate,
        "rejects": cmd_rejects,
        "verify": cmd_verify,
        "demo": cmd_demo,
    }
    try:
        if args.command == "servers":
            cmd_servers(args)
        elif args.command == "types":
            cmd_types(args)
        elif args.command == "infer":
            asyncio.run(cancelled_by_sigterm(cmd_infer(args, resolve(args))))
        elif args.command == "cutover":
            asyncio.run(cancelled_by_sigterm(cmd_cutover(args, resolve(args))))
        elif args.command == "config":
            cmd_config(args)
        elif args.command == "doctor":
            try:
                settings: Settings | MigrationKitError = load_settings(args)
            except MigrationKitError as exc:  # the doctor reports it, with the fix
                settings = exc
            return cmd_doctor(args, settings)
        elif args.command == "bench":
            asyncio.run(cancelled_by_sigterm(cmd_bench(args, load_settings(args))))
        else:
            asyncio.run(cancelled_by_sigterm(commands[args.command](args)))
    except MigrationKitError as exc:
        print(f"migrationkit: error: {exc}", file=sys.stderr)
        return exc.exit_status
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
