"""The benchmark report as a plain-text table (what ``migrationkit bench`` prints)."""

from __future__ import annotations

from migrationkit.workshop.bench.report import BenchmarkReport, Rate


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _rate_line(label: str, rate: Rate, note: str = "") -> str:
    return f"  {label:<38} {rate.rows:>10,} {rate.seconds:>9.2f} {rate.rows_per_s:>11,.0f}  {note}"


def format_report(report: BenchmarkReport) -> str:
    """Sections in the order they were measured, then every target as PASS or MISS."""
    return "\n".join(
        [
            *_header(report),
            *_limits(report),
            *_backends(report),
            *_original(report),
            *_writers(report),
            *_scaling(report),
            *_transform(report),
            *_targets(report),
        ]
    )


def _header(report: BenchmarkReport) -> list[str]:
    machine, config = report.machine, report.config
    return [
        f"migrationkit benchmark: N = {report.count:,} users, "
        f"{machine['nproc']} CPUs ({machine['cpu_model']}), Mongo driver {config['mongo_driver']}",
        "",
        f"  {'':<38} {'rows':>10} {'seconds':>9} {'rows/s':>11}",
    ]


READ_LABELS = {
    "natural": "source raw read, find({})",
    "id_hinted": "  same, sorted by _id + hint _id_",
    "id_sorted": "  same, sorted by _id, no hint",
}


def _limits(report: BenchmarkReport) -> list[str]:
    limits = report.limits
    lines = [f"LIMITS (drivers only; best of {report.config['repeats']})"]
    for order, rate in limits.source_reads.items():
        ratio = rate.rows_per_s / limits.source_read.rows_per_s
        lines.append(_rate_line(READ_LABELS.get(order, order), rate, f"= {ratio:.2f}"))
    lines.append(_rate_line("sink raw COPY, 1 call, 1 connection", limits.sink_copy))
    return lines


def _backends(report: BenchmarkReport) -> list[str]:
    sweep = report.config["sweep"]
    lines = [
        f"MIGRATIONKIT end to end (configuration chosen by a sweep of workers {sweep['workers']}"
        f" x batch {sweep['batch_sizes']}, one run each; then best of {report.config['repeats']}"
        " rounds, each beside a raw read; ratio to source raw read)"
    ]
    for backend, point in report.best_per_backend().items():
        label = f"{backend} ({point.workers} workers, batch {point.batch_size:,})"
        note = f"x {report.read_ratio(point):.2f}"
        note += f" (x {report.paired_read_ratio(backend):.2f} of the same round's raw read)"
        lines.append(_rate_line(label, point.rate, note))
    for number, measured in enumerate(report.rounds, 1):
        rates = ", ".join(f"{name} {rate:,.0f}" for name, rate in measured.items())
        lines.append(f"  round {number} rows/s: {rates}")
    return lines


def _original(report: BenchmarkReport) -> list[str]:
    original = report.original
    how = (
        f"measured {original.rows_measured:,} rows, rest EXTRAPOLATED"
        if original.extrapolated
        else "all measured"
    )
    rate = Rate(original.rows_total, original.seconds_total)
    return [
        f"ORIGINAL approach (skip/limit pages, round-robin, {original.backend} "
        f"{original.workers} workers, batch {original.batch_size:,}; {how})",
        _rate_line(
            "skip/limit + round-robin", rate, f"speed-up x {report.speedup_over_original:.1f}"
        ),
        f"  page time = {original.page_intercept_s:.3f} s"
        f" + {original.page_slope_s_per_row * 1e6:.3f} us x skip"
        f" (fit to {len(original.pages)} measured pages, r2 {original.page_fit_r2:.2f})",
    ]


def _writers(report: BenchmarkReport) -> list[str]:
    lines = [f"WRITERS (pre-built rows, 1 connection, batches of {report.writer_batch_size:,})"]
    copy = report.writers["copy"].rows_per_s
    batched = report.sink_copy_batched
    lines.append(
        _rate_line(
            "raw asyncpg COPY in the same batches",
            batched,
            f"x {batched.rows_per_s / report.limits.sink_copy.rows_per_s:.2f} of raw COPY",
        )
    )
    for name, rate in report.writers.items():
        note = f"x {rate.rows_per_s / copy:.3f} of copy"
        if name == "copy":
            note = f"x {report.copy_writer_ratio:.2f} of raw COPY"
        lines.append(_rate_line(name, rate, note))
    return lines


def _scaling(report: BenchmarkReport) -> list[str]:
    scaling = report.scaling
    lines = [
        f"SCALING ({scaling.backend}, {scaling.workers} workers, batch {scaling.batch_size:,}; "
        "fresh `migrationkit migrate` child, peak RSS of its process tree)"
    ]
    for point in (scaling.small, scaling.large):
        lines.append(
            f"  {point.count:>10,} rows {point.seconds:>8.2f} s"
            f"  peak RSS {_mib(point.peak_rss_bytes)}"
            f"  (sum of VmHWM {_mib(point.hwm_bytes)}, {point.processes} processes)"
        )
    lines.append(
        f"  x{scaling.factor} rows: time x {scaling.time_ratio:.2f},"
        f" peak RSS x {scaling.rss_ratio:.2f}"
    )
    lines.append(
        f"  the source alone (raw find({{}})): {scaling.source_small.seconds:.2f} s ->"
        f" {scaling.source_large.seconds:.2f} s, x {scaling.source_time_ratio:.2f}"
    )
    page = scaling.large_skip_limit_page
    lines.append(
        f"  original's pager at {scaling.large.count:,}: one page at skip {page.skip:,} took"
        f" {page.seconds:.2f} s -> about {scaling.original_projected_s:,.0f} s for all pages"
        " (projection, not run)"
    )
    return lines


def _transform(report: BenchmarkReport) -> list[str]:
    lines = [f"CPU-HEAVY transform ({report.transform_name})"]
    for backend, point in report.transform.items():
        lines.append(_rate_line(f"{backend} ({point.workers} workers)", point.rate))
    lines.append(f"  multiprocessing / asyncio = {report.transform_mp_over_asyncio:.2f}")
    return lines


def _targets(report: BenchmarkReport) -> list[str]:
    lines = ["TARGETS"]
    for target in report.targets():
        sign = "<=" if target.at_most else ">="
        verdict = "PASS" if target.passed else "MISS"
        lines.append(
            f"  {verdict}  {target.name:<42} {target.measured:>8.2f} {sign} {target.threshold:g}"
        )
    return lines
