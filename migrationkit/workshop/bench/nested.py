"""``run_nested_benchmark``: issue #13's nested data set, against the raw read and dlt, in one run.

Order: seed (or reuse) the customers at N and ``scale`` x N and the users; infer the
customers' three mappings; one pass over the backends as a warm-up (not counted; its
fastest on the customers runs the other two mappings); then ``repeats`` rounds in which
every step runs once, taking turns: the customers' raw read, ``migrate()`` with the jsonb
mapping on every backend, the child-table and flattened mappings, dlt; then the users'
raw read, every backend, dlt. The best backend of each collection is the one with the
best median over the rounds. Then the seed project's approach on the users (on the
users' best backend), and the memory check: the jsonb mapping at N and ``scale`` x N, each in a
fresh child process whose process tree is sampled. Everything lives in ``bench_*``
collections, tables and schemas; the tables and dlt's schemas are dropped at the
end, the collections kept so that the next run skips seeding.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrationkit._errors import IntegrityCheckError
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._mapping.spec import TableMapping, users_mapping
from migrationkit._mapping.toml import mapping_to_toml
from migrationkit._run.migration import migrate
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._target.connection import PostgresConnectionHandler
from migrationkit._target.tables import drop_target
from migrationkit.workshop.bench.children import ChildFailedError, run_child
from migrationkit.workshop.bench.dataset import ensure_users
from migrationkit.workshop.bench.dlt_child import DLT_ENVIRONMENT, DltJob
from migrationkit.workshop.bench.limits import time_source_read
from migrationkit.workshop.bench.machine import describe_machine, load_average
from migrationkit.workshop.bench.nested_data import (
    LAYOUTS,
    Layout,
    ensure_customers,
    infer_layouts,
    mapping_shape,
)
from migrationkit.workshop.bench.nested_report import (
    Memory,
    NestedReport,
    Section,
    Shape,
    Timing,
)
from migrationkit.workshop.bench.original import run_original
from migrationkit.workshop.bench.report import ScalingPoint
from migrationkit.workshop.bench.runner import COLLECTION as USERS_COLLECTION

CUSTOMERS = "bench_customers"
TABLE_PREFIX = "bench_nested"
USERS_TABLE, ORIGINAL_TABLE = "bench_nested_users", "bench_nested_original"
DLT_DATASETS = {"nested": "bench_dlt_nested", "users": "bench_dlt_users"}
#: The map keyed by random ids: one json column for dlt, as our inference makes it.
DLT_JSON_COLUMNS = ("tier_and_details",)
MEMORY_ROUNDS = 2

Echo = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


@dataclass
class _Measured:
    """One step's figures: rows, seconds, the whole call's seconds, what it wrote."""

    rows: int
    seconds: float
    whole: float | None = None
    shape: Shape | None = None


@dataclass
class _Step:
    section: str  # "nested" or "users"
    label: str
    run: Callable[[], Awaitable[_Measured]]


@dataclass
class _Plan:
    """Where everything is and how the runs are configured."""

    settings: Settings  # the caller's, on the benchmark's servers
    where: Endpoints
    workers: int
    batch_size: int  # the customers'
    users_batch_size: int
    scratch: Path
    echo: Echo
    skipped: dict[str, str] = field(default_factory=dict)  # step -> why it did not run
    mappings: list[TableMapping] = field(default_factory=list)  # to drop at the end

    def mongo(self) -> MongoConnectionHandler:
        return MongoConnectionHandler(self.where.mongo_uri, driver=self.settings.mongo_driver)

    def run_settings(self, *, collection: str, table: str, backend: str, users: bool) -> Settings:
        return self.settings.model_copy(
            update={
                "mongo_collection": collection, "pg_table": table, "backend": backend,
                "workers": self.workers, "writer": "copy",
                "batch_size": self.users_batch_size if users else self.batch_size,
            }
        )  # fmt: skip


async def run_nested_benchmark(
    count: int = 20_000,
    *,
    scale: int = 5,
    users_count: int = 200_000,
    settings: Settings | None = None,
    endpoints: Endpoints | None = None,
    backends: Sequence[str] | None = None,
    workers: int = 2,
    batch_size: int = 2_000,
    users_batch_size: int = 10_000,
    repeats: int = 3,
    original_budget_s: float = 60.0,
    with_dlt: bool = True,
    reseed: bool = False,
    json_path: Path | None = None,
    echo: Echo = _quiet,
) -> NestedReport:
    """Measure ``count`` nested customers and ``users_count`` users as the module says.

    ``with_dlt=False`` (or dlt not installed) leaves dlt out: its targets are then
    listed as not judged, with the reason. Writes the JSON file if ``json_path``.
    """
    if min(count, users_count, repeats, workers) < 1 or scale < 2:
        raise ValueError("counts, repeats and workers must be >= 1, scale >= 2")
    load_at_start = load_average()
    settings = settings or Settings()
    where = endpoints
    if where is None:
        where = await asyncio.to_thread(resolve_endpoints, settings)
    backends = list(backends or ClusterMigrationFactory.available("batches"))
    with tempfile.TemporaryDirectory(prefix="migrationkit-bench-") as scratch:
        plan = _Plan(settings, where, workers, batch_size, users_batch_size, Path(scratch), echo)
        if reason := _dlt_unavailable(with_dlt):
            plan.skipped |= {"nested dlt": reason, "users dlt": reason}
        try:
            report = await _measure(
                plan, count=count, scale=scale, users_count=users_count, backends=backends,
                repeats=repeats, original_budget_s=original_budget_s, reseed=reseed,
            )  # fmt: skip
        finally:
            await _drop_everything(plan)
    report.machine = describe_machine(servers=report.machine, load_at_start=load_at_start)
    if json_path is not None:
        text = json.dumps(report.to_dict(), indent=2) + "\n"
        await asyncio.to_thread(json_path.write_text, text)
    return report


async def _measure(
    plan: _Plan,
    *,
    count: int,
    scale: int,
    users_count: int,
    backends: list[str],
    repeats: int,
    original_budget_s: float,
    reseed: bool,
) -> NestedReport:
    servers = await _prepare_data(plan, count=count, scale=scale, users=users_count, reseed=reseed)
    async with plan.mongo() as client:
        database = client[plan.settings.mongo_database]
        plan.echo("mappings: inferred from every customer (jsonb, child tables, flattened)")
        layouts = await infer_layouts(database[CUSTOMERS], table_prefix=TABLE_PREFIX)
        plan.mappings += layouts.values()
        warmed_fastest = await _warm_up(plan, layouts["jsonb"], backends)
        steps = _steps(plan, database, layouts, backends, warmed_fastest)
        measured, rounds = await _rounds(plan, steps, repeats)
    # The best backend is the one with the best median over the rounds, where every
    # backend ran on both collections (the first pass, one run each, only warms up and
    # picks who runs the other two mappings).
    nested_best = _fastest(measured, backends, lambda backend: f"nested {backend} jsonb")
    users_best = _fastest(measured, backends, lambda backend: f"users {backend}")
    nested = _section(plan, "nested", CUSTOMERS, count, measured, f"{nested_best} jsonb")
    users = _section(plan, "users", USERS_COLLECTION, users_count, measured, users_best)
    plan.echo(f"original: skip/limit pages, round-robin ({users_best}, {plan.workers} workers)")
    original = await run_original(
        plan.run_settings(collection=USERS_COLLECTION, table=ORIGINAL_TABLE, backend=users_best,
                          users=True),
        plan.where, backend=users_best, workers=plan.workers, batch_size=plan.users_batch_size,
        budget_s=original_budget_s,
    )  # fmt: skip
    plan.echo(f"  {original.rows_measured:,} rows in {original.seconds_measured:.1f} s")
    memory = await _memory(plan, layouts["jsonb"], backend=nested_best, scale=scale)
    config = {
        "count": count, "users_count": users_count, "scale": scale, "repeats": repeats,
        "backends": backends, "workers": plan.workers, "batch_size": plan.batch_size,
        "users_batch_size": plan.users_batch_size, "writer": "copy",
        "mongo_driver": plan.settings.mongo_driver, "original_budget_s": original_budget_s,
        "database": plan.settings.mongo_database, "dlt": _dlt_config(),
    }  # fmt: skip
    return NestedReport(
        machine=servers, config=config, nested=nested, users=users, memory=memory,
        original=original, rounds=rounds, skipped=plan.skipped,
    )  # fmt: skip


async def _prepare_data(
    plan: _Plan, *, count: int, scale: int, users: int, reseed: bool
) -> dict[str, str]:
    """Seed (or reuse) every collection first, so nothing is timed while seeding."""
    plan.echo(f"data sets: {count:,} and {count * scale:,} customers, {users:,} users")
    async with plan.mongo() as client:
        database = client[plan.settings.mongo_database]
        for name, size in ((CUSTOMERS, count), (f"{CUSTOMERS}_x{scale}", count * scale)):
            await ensure_customers(database[name], size, reseed=reseed, echo=plan.echo)
        await ensure_users(database[USERS_COLLECTION], users, reseed=reseed, echo=plan.echo)
        servers = {"mongodb": str((await client.server_info()).get("version", "?"))}
    async with PostgresConnectionHandler(plan.where.pg_dsn, max_size=1) as pool:
        servers["postgresql"] = str(await pool.fetchval("SHOW server_version"))
    return servers


async def _warm_up(plan: _Plan, jsonb: TableMapping, backends: list[str]) -> str:
    """One run per backend on each collection, not counted; the fastest on the customers.

    That one runs the child and flatten mappings in the rounds; the best backend of the
    report is chosen from the rounds themselves.
    """
    plan.echo(f"first pass: {backends}, {plan.workers} workers (warms up, not counted)")
    fastest = []
    for users in (False, True):
        rates = {}
        for backend in backends:
            collection, table = (
                (USERS_COLLECTION, USERS_TABLE) if users else (CUSTOMERS, jsonb.table)
            )
            run = plan.run_settings(
                collection=collection, table=table, backend=backend, users=users
            )
            measured = await _migrate(run, plan.where, users_mapping(table) if users else jsonb)
            rates[backend] = measured.rows / measured.seconds
        plan.echo(f"  {'users' if users else 'nested'}: " + _rates_line(rates))
        fastest.append(max(rates, key=rates.__getitem__))
    return fastest[0]


def _steps(
    plan: _Plan,
    database: Any,
    layouts: dict[Layout, TableMapping],
    backends: list[str],
    layouts_backend: str,
) -> list[_Step]:
    """Every step of a round, in the order they take turns."""
    customers, users = database[CUSTOMERS], database[USERS_COLLECTION]

    def migration(backend: str, mapping: TableMapping | None) -> Callable[[], Awaitable[_Measured]]:
        """``mapping`` on the customers; ``None``: the built-in users mapping on the users
        (given, as the collection is not called ``users``: nothing is inferred)."""
        users = mapping is None
        written = users_mapping(USERS_TABLE) if mapping is None else mapping
        run = plan.run_settings(
            collection=USERS_COLLECTION if users else CUSTOMERS, table=written.table,
            backend=backend, users=users,
        )  # fmt: skip
        return lambda: _migrate(run, plan.where, written)

    steps = [_Step("nested", "source raw read", lambda: _read(customers, plan.batch_size))]
    steps += [
        _Step("nested", f"{backend} jsonb", migration(backend, layouts["jsonb"]))
        for backend in backends
    ]
    steps += [
        _Step("nested", f"{layouts_backend} {layout}", migration(layouts_backend, layouts[layout]))
        for layout in LAYOUTS
        if layout != "jsonb"
    ]
    steps.append(_Step("nested", "dlt", lambda: _dlt(plan, "nested", CUSTOMERS, plan.batch_size)))
    steps.append(_Step("users", "source raw read", lambda: _read(users, plan.users_batch_size)))
    steps += [_Step("users", backend, migration(backend, None)) for backend in backends]
    steps.append(
        _Step("users", "dlt", lambda: _dlt(plan, "users", USERS_COLLECTION, plan.users_batch_size))
    )
    return [step for step in steps if f"{step.section} {step.label}" not in plan.skipped]


def _fastest(
    measured: dict[str, tuple[Timing, Shape | None]],
    backends: list[str],
    step: Callable[[str], str],
) -> str:
    """The backend whose step (named ``step(backend)``) has the best median rate."""
    return max(backends, key=lambda backend: measured[step(backend)][0].rows_per_s)


async def _rounds(
    plan: _Plan, steps: list[_Step], repeats: int
) -> tuple[dict[str, tuple[Timing, Shape | None]], list[dict[str, float]]]:
    """Every step once per round; a dlt step that fails is dropped, with its reason."""
    measured: dict[str, tuple[Timing, Shape | None]] = {}
    rounds: list[dict[str, float]] = []
    for number in range(1, repeats + 1):
        this_round: dict[str, float] = {}
        for step in list(steps):
            key = f"{step.section} {step.label}"
            try:
                result = await step.run()
            except ChildFailedError as exc:  # only dlt runs in a child here
                plan.skipped[key] = str(exc)
                plan.echo(f"  {key} failed, left out: {exc}")
                steps.remove(step)
                measured.pop(key, None)
                continue
            timing, _ = measured.setdefault(key, (Timing(result.rows), result.shape))
            timing.add(result.seconds, result.whole)
            this_round[key] = result.rows / result.seconds
        rounds.append(this_round)
        plan.echo(f"  round {number}: " + _rates_line(this_round))
    return measured, [{k: v for k, v in r.items() if k not in plan.skipped} for r in rounds]


def _section(
    plan: _Plan,
    name: str,
    collection: str,
    count: int,
    measured: dict[str, tuple[Timing, Shape | None]],
    best: str,
) -> Section:
    prefix = f"{name} "
    mine = {
        key.removeprefix(prefix): value for key, value in measured.items() if key.startswith(prefix)
    }
    read, _ = mine.pop("source raw read")
    return Section(
        name=name,
        collection=collection,
        count=count,
        batch_size=plan.users_batch_size if name == "users" else plan.batch_size,
        read=read,
        runs={label: timing for label, (timing, _) in mine.items()},
        shapes={label: shape for label, (_, shape) in mine.items() if shape is not None},
        best=best,
        dlt="dlt" if "dlt" in mine else None,
    )


async def _read(collection: Any, batch_size: int) -> _Measured:
    rows, seconds = await time_source_read(collection, batch_size=batch_size, order="natural")
    return _Measured(rows, seconds)


async def _migrate(settings: Settings, where: Endpoints, mapping: TableMapping) -> _Measured:
    """One ``migrate()``; every document must arrive (the data sets have no rejections)."""
    started = time.perf_counter()
    report = await migrate(settings, endpoints=where, mapping=mapping)
    whole = time.perf_counter() - started
    if report.rows_rejected:
        raise IntegrityCheckError(f"the benchmark data set had {report.rows_rejected} rejections")
    tables, columns = mapping_shape(mapping)
    return _Measured(report.rows_read, report.elapsed_s, whole, Shape(tables, columns))


async def _dlt(plan: _Plan, section: str, collection: str, batch_size: int) -> _Measured:
    """dlt's pipeline on ``collection`` in a child process (see :mod:`.dlt_child`)."""
    job = DltJob(
        database=plan.settings.mongo_database, collection=collection,
        dataset=DLT_DATASETS[section], table=collection, batch_size=batch_size,
        scratch=str(plan.scratch / "dlt"),
        json_columns=DLT_JSON_COLUMNS if section == "nested" else (),
    )  # fmt: skip
    env = os.environ | DLT_ENVIRONMENT | {
        "MIGRATIONKIT_MONGO_URI": plan.where.mongo_uri, "MIGRATIONKIT_PG_DSN": plan.where.pg_dsn,
    }  # fmt: skip
    result = await run_child(
        "migrationkit.workshop.bench.dlt_child", [job.to_argument()], env=env,
        secrets=[plan.where.mongo_uri, plan.where.pg_dsn],
    )  # fmt: skip
    out = result.output
    shape = Shape(int(out["tables"]), int(out["columns"]), result.peak_rss_bytes)
    return _Measured(int(out["documents"]), float(out["seconds"]), shape=shape)


async def _memory(plan: _Plan, jsonb: TableMapping, *, backend: str, scale: int) -> Memory:
    """The jsonb mapping at N and ``scale`` x N in fresh children, the sizes taking turns."""
    plan.echo(f"memory: jsonb, {backend}, {plan.workers} workers, N and {scale}N in fresh children")
    mapping_file = plan.scratch / "jsonb.toml"
    await asyncio.to_thread(mapping_file.write_text, mapping_to_toml(jsonb))
    runs: dict[str, list[ScalingPoint]] = {CUSTOMERS: [], f"{CUSTOMERS}_x{scale}": []}
    for _ in range(MEMORY_ROUNDS):
        for collection, points in runs.items():
            run = plan.run_settings(collection=collection, table=jsonb.table, backend=backend,
                                    users=False)  # fmt: skip
            result = await run_child(
                "migrationkit.workshop.bench.migrate_child", [str(mapping_file)],
                env=_settings_environment(run, plan.where),
                secrets=[plan.where.mongo_uri, plan.where.pg_dsn],
            )  # fmt: skip
            point = ScalingPoint(
                count=int(result.output["rows_read"]),
                seconds=float(result.output["elapsed_s"]),
                peak_rss_bytes=result.peak_rss_bytes,
                hwm_bytes=result.hwm_bytes,
                processes=result.processes,
            )
            plan.echo(
                f"  {point.count:,} rows: {point.seconds:.2f} s, {point.peak_rss_bytes >> 20} MiB"
            )
            points.append(point)
    small, large = (ScalingPoint.combine(points) for points in runs.values())
    return Memory(backend, scale, small, large)


def _settings_environment(settings: Settings, where: Endpoints) -> dict[str, str]:
    """Our environment with every setting a run uses, for a child's ``Settings()``."""
    names = ("mongo_driver", "mongo_database", "mongo_collection", "pg_table", "batch_size",
             "workers", "queue_depth", "backend", "writer", "dispatch")  # fmt: skip
    env = {f"MIGRATIONKIT_{name.upper()}": str(getattr(settings, name)) for name in names}
    env |= {"MIGRATIONKIT_MONGO_URI": where.mongo_uri, "MIGRATIONKIT_PG_DSN": where.pg_dsn}
    return os.environ | env


def _dlt_unavailable(wanted: bool) -> str | None:
    """Why dlt cannot run here, or ``None`` if it can."""
    if not wanted:
        return "left out by request (--no-dlt)"
    if importlib.util.find_spec("dlt") is None:
        return "dlt is not installed: pip install -e '.[bench]'"
    return None


def _dlt_config() -> dict[str, Any]:
    try:
        version = importlib.metadata.version("dlt")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return {
        "version": version, "json_columns": list(DLT_JSON_COLUMNS),
        "write_disposition": "replace", "resource": "pages of a pymongo cursor",
        "environment": DLT_ENVIRONMENT,
    }  # fmt: skip


async def _drop_everything(plan: _Plan) -> None:
    """The benchmark's tables and dlt's schemas (the collections stay, for the next run)."""
    async with PostgresConnectionHandler(plan.where.pg_dsn, max_size=1) as pool:
        for mapping in [users_mapping(USERS_TABLE), users_mapping(ORIGINAL_TABLE), *plan.mappings]:
            await drop_target(pool, mapping)
        for dataset in DLT_DATASETS.values():
            for schema in (dataset, f"{dataset}_staging"):
                await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    shutil.rmtree(plan.scratch / "dlt", ignore_errors=True)


def _rates_line(rates: dict[str, float]) -> str:
    return ", ".join(f"{name} {rate:,.0f}/s" for name, rate in rates.items())
