"""Messages a worker sends back to its cluster. Plain frozen dataclasses, so they pickle."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker has its PostgreSQL connection and is waiting for batches."""

    worker: int


@dataclass(frozen=True, slots=True)
class BatchDone:
    """One batch is committed: ``written`` rows in the table, ``rejected`` set aside."""

    worker: int
    seq: int  # the batch's place in the reader's order
    written: int
    rejected: tuple[tuple[str, str], ...]  # (mongo_id, reason)
    started: float  # time.monotonic(): one clock for every process on the machine
    finished: float
    transform_s: float = 0.0  # validating and converting the documents
    write_s: float = 0.0  # writing to PostgreSQL, retries included
    #: (field path, documents): fields the mapping dropped, and values kept in the
    #: catch-all column because their type did not fit their column.
    dropped: tuple[tuple[str, int], ...] = ()
    kept_aside: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Retried:
    """A transient fault (``what`` failed) is being retried."""

    worker: int
    what: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The worker raised; ``traceback`` is its formatted traceback."""

    worker: int
    message: str
    traceback: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Stopped:
    """The worker drained its queue and closed its connection."""

    worker: int


WorkerEvent = Ready | BatchDone | Retried | Failed | Stopped

#: Put on a worker's queue to tell it to finish.
STOP = None
