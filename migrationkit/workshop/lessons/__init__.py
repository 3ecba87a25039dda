"""Measurement helpers for the teaching notebooks: labs, experiments, result tables.

A notebook opens a :class:`Lab` (its own collection and table), runs one helper
per experiment, and hands the :class:`Measurement`s to :mod:`migrationkit.workshop.plots`.
Nothing here needs Jupyter; :mod:`migrationkit.workshop.widgets` adds the control panels.
"""

from migrationkit._executors.dispatch import make_dispatcher
from migrationkit.workshop.lessons.environment import (
    Check,
    check_packages,
    check_servers,
    checks_table,
    find_servers,
)
from migrationkit.workshop.lessons.experiments import (
    first_batch,
    measure_backpressure,
    run_dispatch,
    sweep,
    time_faker_per_user,
    time_seeding,
    time_user_factory,
)
from migrationkit.workshop.lessons.lab import (
    DEFAULT_ROWS,
    DISPATCHERS,
    HEAVY_ROUNDS,
    LESSON_TRANSFORMS,
    ROWS_ENV,
    Choice,
    Lab,
    default_choice,
    notebook_rows,
    open_lab,
)
from migrationkit.workshop.lessons.results import (
    Measurement,
    Table,
    best,
    pivot,
    results_table,
)
from migrationkit.workshop.lessons.simulation import SCENARIOS

__all__ = [
    "DEFAULT_ROWS",
    "DISPATCHERS",
    "HEAVY_ROUNDS",
    "LESSON_TRANSFORMS",
    "ROWS_ENV",
    "SCENARIOS",
    "Check",
    "Choice",
    "Lab",
    "Measurement",
    "Table",
    "best",
    "check_packages",
    "check_servers",
    "checks_table",
    "default_choice",
    "find_servers",
    "first_batch",
    "make_dispatcher",
    "measure_backpressure",
    "notebook_rows",
    "open_lab",
    "pivot",
    "results_table",
    "run_dispatch",
    "sweep",
    "time_faker_per_user",
    "time_seeding",
    "time_user_factory",
]
