"""End-to-end runs: the backend sweep and the CPU-heavy transform, through ``migrate()``."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from migrationkit._errors import IntegrityCheckError
from migrationkit._normalize.rows import Row, document_to_row
from migrationkit._run.migration import migrate
from migrationkit._servers.endpoints import Endpoints
from migrationkit._settings.settings import Settings
from migrationkit.workshop.bench.limits import time_source_read
from migrationkit.workshop.bench.report import Rate, SweepPoint

Echo = Callable[[str], None]
Transform = Callable[[Mapping[str, Any]], Row]


async def run_point(
    base: Settings,
    endpoints: Endpoints,
    *,
    backend: str,
    workers: int,
    batch_size: int,
    transform: Transform = document_to_row,
) -> SweepPoint:
    """One ``migrate()`` with these options; every row must arrive (no rejections expected)."""
    settings = base.model_copy(
        update={"backend": backend, "workers": workers, "batch_size": batch_size, "writer": "copy"}
    )
    report = await migrate(settings, endpoints=endpoints, transform=transform)
    if report.rows_rejected:
        raise IntegrityCheckError(f"the benchmark data set had {report.rows_rejected} rejections")
    return SweepPoint(backend, workers, batch_size, Rate(report.rows_read, report.elapsed_s))


async def sweep(
    base: Settings,
    endpoints: Endpoints,
    *,
    backends: Sequence[str],
    workers: Sequence[int],
    batch_sizes: Sequence[int],
    echo: Echo,
) -> list[SweepPoint]:
    """Every combination of backend, worker count and batch size, once each."""
    points = []
    for backend, size, batch in itertools.product(backends, workers, batch_sizes):
        point = await run_point(base, endpoints, backend=backend, workers=size, batch_size=batch)
        echo(
            f"  {backend:<16} workers={size:<3} batch={batch:<7,} {point.rate.rows_per_s:>10,.0f}/s"
        )
        points.append(point)
    return points


async def run_transform(
    base: Settings,
    endpoints: Endpoints,
    *,
    transform: Transform,
    backends: Sequence[str],
    workers: int,
    batch_sizes: dict[str, int],
    echo: Echo,
) -> dict[str, SweepPoint]:
    """The same ``transform`` on every backend with ``workers`` workers."""
    results = {}
    for backend in backends:
        point = await run_point(
            base,
            endpoints,
            backend=backend,
            workers=workers,
            batch_size=batch_sizes[backend],
            transform=transform,
        )
        echo(f"  {backend:<16} workers={workers:<3} {point.rate.rows_per_s:>10,.0f}/s")
        results[backend] = point
    return results


async def confirm(
    base: Settings,
    endpoints: Endpoints,
    collection: Any,
    *,
    chosen: dict[str, SweepPoint],
    rounds: int,
    read_batch: int,
    echo: Echo,
) -> tuple[dict[str, SweepPoint], list[dict[str, float]]]:
    """Re-measure each backend's chosen configuration ``rounds`` times.

    Each round starts with a raw read of the source (key ``"source_read"``), so a
    busy spell on a shared machine shows in the reference and the backends alike.
    Returns the backends' best-of-rounds points and each round's rows/s.
    """
    trials: dict[str, list[float]] = {backend: [] for backend in chosen}
    measured: list[dict[str, float]] = []
    for round_number in range(1, rounds + 1):
        count, seconds = await time_source_read(collection, batch_size=read_batch, order="natural")
        this_round = {"source_read": count / seconds}
        for backend, point in chosen.items():
            again = await run_point(
                base, endpoints, backend=backend, workers=point.workers,
                batch_size=point.batch_size,
            )  # fmt: skip
            trials[backend].append(again.rate.seconds)
            this_round[backend] = again.rate.rows_per_s
        measured.append(this_round)
        echo(
            f"  round {round_number}: "
            + ", ".join(f"{k} {v:,.0f}/s" for k, v in this_round.items())
        )
    confirmed = {
        backend: SweepPoint(
            backend, point.workers, point.batch_size, Rate.best(point.rate.rows, trials[backend])
        )
        for backend, point in chosen.items()
    }
    return confirmed, measured
