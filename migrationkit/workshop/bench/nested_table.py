"""The nested benchmark as a plain-text table: sections in measuring order, then the targets."""

from __future__ import annotations

from migrationkit.workshop.bench.nested_report import NESTED_DLT_RATIO, NestedReport, Section

_HEAD = (
    f"  {'':<44} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'x read':>7}"
    f" {'whole s':>8} {'x dlt':>6} {'peak MiB':>9}"
)


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f}"


def format_nested_report(report: NestedReport) -> str:
    """What ``migrationkit bench --suite nested`` prints."""
    config, machine = report.config, report.machine
    lines = [
        f"migrationkit nested benchmark: N = {config['count']:,} customers, "
        f"{config['users_count']:,} users; {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"load {machine['load_average_at_start'][0]} -> {machine['load_average_at_end'][0]}",
        f"{config['repeats']} rounds, every step once per round, taking turns; medians."
        f" {config['workers']} workers, COPY writer, Mongo driver {config['mongo_driver']};"
        f" dlt {config['dlt']['version']}",
        "",
        _HEAD,
        f"NESTED customers, batch {report.nested.batch_size:,} (mappings inferred from every"
        " document)",
        *_section(report.nested),
        *_memory(report),
        f"USERS (today's path: the users mapping), batch {report.users.batch_size:,}",
        *_section(report.users),
        *_original(report),
        *_targets(report),
        "[Nt Mc]: tables and columns written. x read: rows/s over the raw read's, x dlt: dlt's",
        "whole run over this whole run; both the median of the rounds' own ratios.",
    ]
    return "\n".join(lines)


def _section(section: Section) -> list[str]:
    read = section.read
    lines = [
        f"  {'source raw read, find({})':<44} {read.rows:>9,} {read.seconds:>8.2f}"
        f" {read.rows_per_s:>9,.0f} {1:>7.2f}"
    ]
    for label, timing in section.runs.items():
        shape = section.shapes.get(label)
        name = "dlt: pymongo resource -> postgres" if label == "dlt" else label
        if label == section.best:
            name += " (best)"
        if shape is not None:
            name += f" [{shape.tables}t {shape.columns}c]"
        dlt_ratio = section.dlt_ratio(label)
        ratio = f"{dlt_ratio:>6.2f}" if dlt_ratio is not None else f"{'-':>6}"
        peak = _mib(shape.peak_rss_bytes) if shape is not None and shape.peak_rss_bytes else "-"
        lines.append(
            f"  {name:<44} {timing.rows:>9,} {timing.seconds:>8.2f} {timing.rows_per_s:>9,.0f}"
            f" {section.read_ratio(label):>7.2f} {timing.whole_s:>8.2f} {ratio} {peak:>9}"
        )
    return lines


def _memory(report: NestedReport) -> list[str]:
    memory = report.memory
    lines = [f"MEMORY (jsonb, {memory.backend}; a fresh child process each, peak RSS of its tree)"]
    for point in (memory.small, memory.large):
        rate = point.count / point.seconds
        lines.append(
            f"  {point.count:>10,} rows {point.seconds:>8.2f} s {rate:>9,.0f} rows/s"
            f"  peak RSS {_mib(point.peak_rss_bytes)} MiB"
            f" (sum of VmHWM {_mib(point.hwm_bytes)} MiB, {point.processes} processes)"
        )
    lines.append(
        f"  x{memory.factor} rows: time x {memory.time_ratio:.2f},"
        f" peak RSS x {memory.rss_ratio:.2f}"
    )
    return lines


def _original(report: NestedReport) -> list[str]:
    original = report.original
    how = (
        f"{original.rows_measured:,} rows measured, the rest EXTRAPOLATED"
        if original.extrapolated
        else "all measured"
    )
    return [
        f"  {'original: skip/limit pages, round-robin':<44} {original.rows_total:>9,}"
        f" {original.seconds_total:>8.2f} {original.rows_per_s:>9,.0f}"
        f"  ({original.backend}, {how})"
    ]


def _targets(report: NestedReport) -> list[str]:
    lines = ["TARGETS"]
    for target in report.targets():
        sign = "<=" if target.at_most else ">="
        verdict = "PASS" if target.passed else "MISS"
        lines.append(
            f"  {verdict}  {target.name:<40} {target.measured:>8.2f} {sign} {target.threshold:g}"
        )
    for name, reason in report.unjudged().items():
        lines.append(f"  SKIP  {name:<40} not measured: {reason}")
    if (dlt := report.nested.dlt) is not None:
        # No migration runs faster than its source can be read: the dlt target's bound.
        share = report.nested.read_ratio(dlt)
        lines.append(
            f"  dlt ran at {share:.2f}x the raw read of the customers: {NESTED_DLT_RATIO:g}x dlt"
            f" means {NESTED_DLT_RATIO * share:.2f}x the raw read"
        )
    return lines
