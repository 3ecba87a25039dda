"""What lesson 09 measures: a collection loaded, then followed while a writer changes it.

The lesson's :class:`SteadyWriter` is the only writer of its collection, it starts
once the stream's position is taken, and every write it makes changes exactly one
document (each update also raises ``loyalty_points``, so none is a no-op). The
*n*-th change the follower applies is therefore the writer's *n*-th write, and the
writer's clock beside the follower's reports (:class:`FollowRecorder`, one
:class:`FollowSample` after every batch) gives each change's **delay**: from the
moment its write was acknowledged to the commit that put it in PostgreSQL
(:func:`change_delays`). That is the lag a user of the target sees; the follower's
own ``FollowStatus.lag_s`` (what the progress line and Prometheus show) is how far
behind the source its newest *read* was, and 0 whenever the stream had nothing more
waiting. Every sentence the lesson prints about a number is made in :mod:`.notes`,
from the runs; the pictures are drawn in :mod:`.charts`.

``fold_changes`` and ``parse_event`` are the engine's own, re-exported for the lesson's
first section.
"""

from migrationkit._source.changes import fold_changes, parse_event
from migrationkit.workshop.lessons.following.charts import follow_chart, rates_chart
from migrationkit.workshop.lessons.following.lesson import (
    BURST_S,
    FOLLOW_S,
    KEPT_PACE,
    KEPT_UP_S,
    LIVE_RATE,
    OPERATIONS,
    RATES,
    REPEATS,
    ROWS,
    SEED,
    Customers,
    lesson_rows,
    open_customers,
)
from migrationkit.workshop.lessons.following.live import FollowCounters
from migrationkit.workshop.lessons.following.notes import (
    counter_rows,
    counters_html,
    final_counts,
    live_note,
    longest_gap,
    per_s,
    rates_note,
    recap,
    seconds_text,
    setup_note,
)
from migrationkit.workshop.lessons.following.recorder import (
    FollowRecorder,
    FollowSample,
    applied_at,
    change_delays,
    commit_interval,
)
from migrationkit.workshop.lessons.following.runs import (
    Following,
    RateRun,
    by_rate,
    lag_at_rates,
    per_rate,
    rate_run,
)
from migrationkit.workshop.lessons.following.writer import (
    SteadyWriter,
    WriterRun,
    new_order,
    next_due,
    pick_operation,
)

__all__ = [
    "BURST_S",
    "FOLLOW_S",
    "KEPT_PACE",
    "KEPT_UP_S",
    "LIVE_RATE",
    "OPERATIONS",
    "RATES",
    "REPEATS",
    "ROWS",
    "SEED",
    "Customers",
    "FollowCounters",
    "FollowRecorder",
    "FollowSample",
    "Following",
    "RateRun",
    "SteadyWriter",
    "WriterRun",
    "applied_at",
    "by_rate",
    "change_delays",
    "commit_interval",
    "counter_rows",
    "counters_html",
    "final_counts",
    "fold_changes",
    "follow_chart",
    "lag_at_rates",
    "lesson_rows",
    "live_note",
    "longest_gap",
    "new_order",
    "next_due",
    "open_customers",
    "parse_event",
    "per_rate",
    "per_s",
    "pick_operation",
    "rate_run",
    "rates_chart",
    "rates_note",
    "recap",
    "seconds_text",
    "setup_note",
]
