"""``run_benchmark``: every measurement of issue #4, in one run, on one data set.

Order: limits, backend sweep, the original's approach, writers, CPU-heavy
transform, then scaling (last, because it seeds a collection ``scale`` times
larger). Everything lives in ``bench_*`` collections and tables, never in the
user's ``users``; the tables are dropped at the end, the collections are kept so
that the next run with the same ``count`` skips seeding.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._normalize.transforms import DEFAULT_ROUNDS, pseudonymise_email
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._target.connection import PostgresConnectionHandler
from migrationkit.workshop.bench.dataset import ensure_users
from migrationkit.workshop.bench.limits import (
    READ_ORDERS,
    load_rows,
    measure_sink_copy,
    measure_source_read,
)
from migrationkit.workshop.bench.machine import describe_machine, load_average
from migrationkit.workshop.bench.original import run_original, time_last_page
from migrationkit.workshop.bench.report import (
    BenchmarkReport,
    Limits,
    Rate,
    Scaling,
    ScalingPoint,
    SweepPoint,
    best_per_backend,
)
from migrationkit.workshop.bench.runs import confirm, run_transform, sweep
from migrationkit.workshop.bench.scaling import migrate_in_child
from migrationkit.workshop.bench.tables import drop_tables
from migrationkit.workshop.bench.writers import measure_writers

COLLECTION = "bench_users"
ORIGINAL_TABLE, RAW_COPY_TABLE, WRITERS_TABLE, SCALE_TABLE = (
    "bench_original", "bench_raw_copy", "bench_writers", "bench_scale",
)  # fmt: skip
TABLES = (COLLECTION, ORIGINAL_TABLE, RAW_COPY_TABLE, WRITERS_TABLE, SCALE_TABLE)


def _quiet(line: str) -> None:
    pass


@dataclass(frozen=True)
class _Run:
    """What every step needs: where the servers are, the settings, how to report progress."""

    settings: Settings  # aimed at the bench_users collection and table
    where: Endpoints
    echo: Callable[[str], None]
    repeats: int
    reseed: bool

    def mongo(self) -> MongoConnectionHandler:
        return MongoConnectionHandler(self.where.mongo_uri, driver=self.settings.mongo_driver)


async def run_benchmark(
    count: int = 200_000,
    *,
    scale: int = 5,
    settings: Settings | None = None,
    endpoints: Endpoints | None = None,
    backends: Sequence[str] | None = None,
    workers: Sequence[int] = (1, 2, 4),
    batch_sizes: Sequence[int] = (5_000, 10_000),
    repeats: int = 2,
    insert_rows: int = 20_000,
    original_budget_s: float = 300.0,
    transform_workers: int | None = None,
    reseed: bool = False,
    json_path: Path | None = None,
    chart_path: Path | None = None,
    echo: Callable[[str], None] = _quiet,
) -> BenchmarkReport:
    """Measure limits, backends, the original's approach, writers, a CPU-heavy transform
    and scaling on ``count`` seeded users; write the JSON file and chart if paths are given.

    ``repeats`` is how many trials each limit, each backend's chosen configuration
    and each scaling run get (the best counts); the sweep runs each point once.
    """
    if count < 1 or scale < 2 or repeats < 1:
        raise ValueError("count must be >= 1, scale >= 2 and repeats >= 1")
    load_at_start = load_average()
    settings = settings or Settings()
    where = endpoints
    if where is None:
        where = await asyncio.to_thread(resolve_endpoints, settings)
    run = _Run(
        settings.model_copy(
            update={"mongo_collection": COLLECTION, "pg_table": COLLECTION, "mapping": "users"}
        ),
        where, echo, repeats, reseed,
    )  # fmt: skip
    backends = list(backends or ClusterMigrationFactory.available("batches"))
    read_batch = max(batch_sizes)
    heavy_workers = transform_workers or max(2, os.cpu_count() or 1)

    servers = await _prepare_data(run, count, scale)
    reads = await _source_limits(run, read_batch)
    echo(f"migrationkit: sweep {backends} x workers {list(workers)} x batch {list(batch_sizes)}")
    points = await sweep(
        run.settings, where, backends=backends, workers=workers, batch_sizes=batch_sizes, echo=echo
    )
    echo(f"migrationkit: each backend's best configuration again, {repeats} rounds")
    async with run.mongo() as client:
        chosen, rounds = await confirm(
            run.settings, where, client[settings.mongo_database][COLLECTION],
            chosen=best_per_backend(points), rounds=repeats, read_batch=read_batch, echo=echo,
        )  # fmt: skip
    natural = reads["natural"]
    extra_reads = [natural.rows / this_round["source_read"] for this_round in rounds]
    reads["natural"] = Rate.best(natural.rows, natural.trials + extra_reads)
    best = max(chosen.values(), key=lambda p: p.rate.rows_per_s)
    echo(f"original: skip/limit pages, round-robin ({best.backend}, {best.workers} workers)")
    original = await run_original(
        run.settings.model_copy(update={"pg_table": ORIGINAL_TABLE}), where,
        backend=best.backend, workers=best.workers, batch_size=best.batch_size,
        budget_s=original_budget_s,
    )  # fmt: skip
    echo(f"  {original.rows_measured:,} rows in {original.seconds_measured:.1f} s")
    sink_copy, sink_copy_batched, writers = await _sink(
        run, read_batch=read_batch, batch_size=best.batch_size, insert_rows=insert_rows
    )
    echo(f"CPU-heavy transform: pseudonymise_email, {heavy_workers} workers per backend")
    every = ClusterMigrationFactory.available("batches")
    transform = await run_transform(
        run.settings, where, transform=pseudonymise_email, backends=every, workers=heavy_workers,
        batch_sizes={b: chosen[b].batch_size if b in chosen else read_batch for b in every},
        echo=echo,
    )  # fmt: skip
    scaling = await _scaling(run, scale, best, read_batch)
    await _drop_tables(where.pg_dsn)

    config = {
        "scale": scale,
        "repeats": repeats,
        "mongo_driver": settings.mongo_driver,
        "collection": f"{settings.mongo_database}.{COLLECTION}",
        "sweep": {"backends": backends, "workers": list(workers), "batch_sizes": list(batch_sizes)},
        "read_batch_size": read_batch,
        "insert_rows": min(insert_rows, count),
        "original_budget_s": original_budget_s,
        "transform_workers": heavy_workers,
    }
    report = BenchmarkReport(
        count=count,
        machine=describe_machine(servers=servers, load_at_start=load_at_start),
        config=config,
        limits=Limits(reads, sink_copy),
        sweep=points,
        backends=chosen,
        rounds=rounds,
        original=original,
        writers=writers,
        writer_batch_size=best.batch_size,
        sink_copy_batched=sink_copy_batched,
        scaling=scaling,
        transform=transform,
        transform_name=f"pseudonymise_email ({DEFAULT_ROUNDS} HMAC-SHA256 rounds per row)",
    )
    await asyncio.to_thread(_write_outputs, report, json_path, chart_path)
    return report


async def _prepare_data(run: _Run, count: int, scale: int) -> dict[str, str]:
    """Seed (or reuse) both collections first, so that the server has settled before
    anything is timed; return the servers' versions."""
    database = run.settings.mongo_database
    run.echo(f"data sets: {count:,} and {count * scale:,} users in {database}.{COLLECTION}*")
    async with run.mongo() as client:
        for name, size in ((COLLECTION, count), (f"{COLLECTION}_x{scale}", count * scale)):
            await ensure_users(client[database][name], size, reseed=run.reseed, echo=run.echo)
        servers = {"mongodb": str((await client.server_info()).get("version", "?"))}
    async with PostgresConnectionHandler(run.where.pg_dsn, max_size=1) as pool:
        servers["postgresql"] = str(await pool.fetchval("SHOW server_version"))
    return servers


async def _source_limits(run: _Run, read_batch: int) -> dict[str, Rate]:
    """Raw reads of the N collection in every order (best of ``repeats`` each)."""
    run.echo(f"limits: raw reads (best of {run.repeats})")
    async with run.mongo() as client:
        collection = client[run.settings.mongo_database][COLLECTION]
        reads = {
            order: await measure_source_read(
                collection, batch_size=read_batch, order=order, repeats=run.repeats
            )
            for order in READ_ORDERS
        }
    run.echo("  " + ", ".join(f"{o} {r.rows_per_s:,.0f}/s" for o, r in reads.items()))
    return reads


async def _sink(
    run: _Run, *, read_batch: int, batch_size: int, insert_rows: int
) -> tuple[Rate, Rate, dict[str, Rate]]:
    """Raw COPY (one call, then in ``batch_size`` batches) and the three writers."""
    async with run.mongo() as client:
        rows = await load_rows(
            client[run.settings.mongo_database][COLLECTION], batch_size=read_batch
        )
    dsn = run.where.pg_dsn
    run.echo(f"limits: raw COPY, one call and batches of {batch_size:,} (best of {run.repeats})")
    copy = await measure_sink_copy(dsn, rows, table=RAW_COPY_TABLE, repeats=run.repeats)
    batched = await measure_sink_copy(
        dsn, rows, table=RAW_COPY_TABLE, repeats=run.repeats, batch_size=batch_size
    )
    run.echo(f"  {copy.rows_per_s:,.0f}/s in one call, {batched.rows_per_s:,.0f}/s in batches")
    run.echo(f"writers: copy, executemany, insert (insert on {min(insert_rows, len(rows)):,} rows)")
    writers = await measure_writers(
        dsn, rows, table=WRITERS_TABLE, batch_size=batch_size, insert_rows=insert_rows,
        repeats=run.repeats,
    )  # fmt: skip
    run.echo("  " + ", ".join(f"{w} {r.rows_per_s:,.0f}/s" for w, r in writers.items()))
    return copy, batched, writers


async def _scaling(run: _Run, scale: int, best: SweepPoint, read_batch: int) -> Scaling:
    """The best configuration at N and ``scale`` x N in fresh child processes, the sizes
    taking turns (so a busy spell hits both); the source's raw read at both sizes."""
    large_name = f"{COLLECTION}_x{scale}"
    options: dict[str, Any] = {
        "table": SCALE_TABLE, "backend": best.backend, "workers": best.workers,
        "batch_size": best.batch_size,
    }  # fmt: skip
    run.echo(f"scaling: {best.backend}, {best.workers} workers, batch {best.batch_size:,}")
    async with run.mongo() as client:
        database = client[run.settings.mongo_database]
        source_small, source_large = [
            await measure_source_read(
                database[name], batch_size=read_batch, order="natural", repeats=1
            )
            for name in (COLLECTION, large_name)
        ]
    run.echo(f"  raw reads: {source_small.seconds:.2f} s and {source_large.seconds:.2f} s")
    small_runs: list[ScalingPoint] = []
    large_runs: list[ScalingPoint] = []
    for _ in range(run.repeats):
        for name, runs in ((COLLECTION, small_runs), (large_name, large_runs)):
            point = await migrate_in_child(run.where, collection=name, **options)
            run.echo(
                f"  {point.count:,} rows: {point.seconds:.2f} s, {point.peak_rss_bytes >> 20} MiB"
            )
            runs.append(point)
    page = await time_last_page(
        run.settings.model_copy(update={"mongo_collection": large_name}),
        run.where,
        batch_size=best.batch_size,
    )
    run.echo(f"  one skip/limit page at skip {page.skip:,}: {page.seconds:.2f} s")
    return Scaling(
        best.backend, best.workers, best.batch_size, scale,
        ScalingPoint.combine(small_runs), ScalingPoint.combine(large_runs), page,
        source_small, source_large,
    )  # fmt: skip


async def _drop_tables(dsn: str) -> None:
    async with PostgresConnectionHandler(dsn, max_size=1) as pool:
        await drop_tables(pool, TABLES)


def _write_outputs(
    report: BenchmarkReport, json_path: Path | None, chart_path: Path | None
) -> None:
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if chart_path is not None:
        from migrationkit.workshop.bench.chart import draw_chart

        draw_chart(report, chart_path)
