"""The seed project's approach, re-run on the same data: skip/limit pages, round-robin writers.

Only the pager differs from migrationkit's run: the same cluster, writer, worker
count and batch size take the pages. On a server that re-runs the query for
each page, the pager's cost grows with the collection, so a time budget can
cut the run short; the rest is then extrapolated from a least-squares fit of
the measured page times against ``skip`` (the fit and every measured page are
in the report, marked as extrapolated).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from migrationkit import (
    Endpoints,
    Migration,
    MongoConnectionHandler,
    RoundRobin,
    Settings,
    UserMongoRepository,
)
from migrationkit._mapping.spec import users_mapping
from migrationkit.workshop.bench.report import Original, PageTime

#: A line needs a few points before it can be trusted to extrapolate.
MIN_PAGES_FOR_FIT = 3


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares ``y = a + b*x`` with ``b >= 0``: (a, b, r²); r² is 1 when ``y`` does not vary.

    A skip/limit page never gets cheaper further into the collection, so a falling
    line is noise in a few short pages; left free it would predict pages that take
    negative time. The best line with ``b >= 0`` is then the flat one at the mean.
    """
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = max(sxy / sxx, 0.0) if sxx > 0 else 0.0
    intercept = mean_y - slope * mean_x
    residual = sum((y - intercept - slope * x) ** 2 for x, y in points)
    total = sum((y - mean_y) ** 2 for _, y in points)
    return intercept, slope, 1.0 - residual / total if total > 0 else 1.0


def remaining_seconds(
    pages: list[PageTime], *, rows_done: int, rows_total: int, batch_size: int
) -> tuple[float, float, float, float]:
    """Predicted seconds for the pages not read, and the fit (a, b, r²) that predicts them."""
    intercept, slope, r2 = fit_line([(page.skip, page.seconds) for page in pages])
    skips = range(rows_done, rows_total, batch_size)
    return sum(intercept + slope * skip for skip in skips), intercept, slope, r2


async def run_original(
    settings: Settings,
    endpoints: Endpoints,
    *,
    backend: str,
    workers: int,
    batch_size: int,
    budget_s: float,
) -> Original:
    """Migrate with ``iter_batches_skip_limit``; stop reading after ``budget_s`` seconds.

    The pages go through the same :class:`Migration` as every run (prepare, the cluster,
    the report and the end check), fed in place of the keyset reader.
    """
    options = {"backend": backend, "workers": workers, "batch_size": batch_size, "writer": "copy"}
    async with Migration(
        settings.model_copy(update=options),
        endpoints=endpoints,
        dispatcher=RoundRobin(workers),
        mapping=users_mapping(settings.pg_table),  # the built-in one, whatever the collection
    ) as run:
        rows_total = await run.source.count()
        pages: list[PageTime] = []
        deadline = time.perf_counter() + budget_s
        report = await run.migrate(batches=_timed_pages(run.source, batch_size, pages, deadline))
    still, intercept, slope, r2 = remaining_seconds(
        pages, rows_done=report.rows_read, rows_total=rows_total, batch_size=batch_size
    )
    seconds = report.elapsed_s
    return Original(
        backend, workers, batch_size, rows_total, report.rows_read, seconds, seconds + still,
        pages, intercept, slope, r2,
    )  # fmt: skip


async def _timed_pages(
    source: UserMongoRepository, batch_size: int, pages: list[PageTime], deadline: float
) -> AsyncIterator[list[Any]]:
    """Skip/limit pages until the end or ``deadline``, each one's time in ``pages``."""
    pager = source.iter_batches_skip_limit(batch_size)  # holds no cursor between pages
    rows = 0
    while True:
        asked = time.perf_counter()
        page = await anext(pager, None)
        if page is None:
            return
        pages.append(PageTime(rows, time.perf_counter() - asked))
        rows += len(page)
        yield page
        if time.perf_counter() > deadline and len(pages) >= MIN_PAGES_FOR_FIT:
            return


async def time_last_page(settings: Settings, endpoints: Endpoints, *, batch_size: int) -> PageTime:
    """One skip/limit page at the end of the collection: the original's per-page cost there."""
    async with MongoConnectionHandler(endpoints.mongo_uri, driver=settings.mongo_driver) as client:
        collection = client[settings.mongo_database][settings.mongo_collection]
        skip = max(0, int(await collection.estimated_document_count()) - batch_size)
        started = time.perf_counter()
        await collection.find({}).skip(skip).limit(batch_size).to_list(None)
        return PageTime(skip, time.perf_counter() - started)
