"""``migrationkit bench``: how fast migrationkit is, against the limits and the original.

One run on one seeded data set measures the source's raw read rate and the
sink's raw COPY rate, every backend end to end, the seed project's skip/limit
approach, the three writers, scaling to a larger collection, and a CPU-heavy
transform; each target of issue #4 is then judged PASS or MISS from the numbers.
"""

from migrationkit.workshop.bench.report import BenchmarkReport, Target
from migrationkit.workshop.bench.runner import run_benchmark
from migrationkit.workshop.bench.table import format_report

__all__ = [
    "BenchmarkReport",
    "Target",
    "format_report",
    "run_benchmark",
]
