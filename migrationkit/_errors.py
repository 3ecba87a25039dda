"""The few exceptions migrationkit raises.

Driver errors (pymongo, asyncpg, OS errors) are translated where they enter the
package, with ``raise ... from exc`` so the original stays in the traceback::

    MigrationKitError
     ├── ConfigurationError        a setting or argument is wrong
     ├── ServerUnavailableError    MongoDB or PostgreSQL cannot be reached / started
     │    └── TransientFaultError  a fault that retrying with backoff did not heal
     ├── WorkerError               a cluster worker failed
     │    └── WorkerCrashedError   a worker process died without reporting
     ├── IntegrityCheckError       the target does not hold what was read
     ├── DocumentsSetAsideError    the run completed, but set more documents aside than allowed
     ├── TargetBusyError           another run holds the target table's lock
     ├── ChangeHistoryLostError    a change stream cannot go on from its saved position
     └── CutoverTimeoutError       the follower did not catch up before cutover's timeout
"""

from __future__ import annotations

from typing import Any


class MigrationKitError(Exception):
    """Base class: every error migrationkit raises on purpose."""

    #: The ``migrationkit`` command's exit status for this error.
    exit_status = 1


class DocumentsSetAsideError(MigrationKitError):
    """A run completed, but set aside more documents than ``--max-rejected`` allows."""

    exit_status = 4


class ConfigurationError(MigrationKitError):
    """A setting, argument or environment variable has a value we cannot use."""


class ServerUnavailableError(MigrationKitError):
    """A database server could not be reached or started."""


class TransientFaultError(ServerUnavailableError):
    """A dropped connection or restarting server that did not come back in time."""


class WorkerError(MigrationKitError):
    """A cluster worker raised; the message carries the worker's own traceback."""

    def __init__(self, worker: int, message: str, remote_traceback: str = "") -> None:
        self.worker = worker
        self.remote_traceback = remote_traceback
        text = f"worker {worker} failed: {message}"
        if remote_traceback:
            text += f"\n\nWorker traceback:\n{remote_traceback.rstrip()}"
        super().__init__(text)


class WorkerCrashedError(WorkerError):
    """A worker process or thread ended without saying why (killed, segfault)."""


class IntegrityCheckError(MigrationKitError):
    """After a migration, the target table does not hold what the source gave."""


#: The command that recovers from a lost change-stream position (said by the error).
FRESH_FOLLOWED_LOAD = "migrationkit migrate --follow"


class ChangeHistoryLostError(MigrationKitError):
    """The change stream cannot continue from its saved position, so changes would be lost.

    Never skipped or reset silently: the only safe recovery is a fresh load that is
    followed from a new position, and the message says so. ``reason`` is one of
    ``"history_lost"`` (the oplog no longer reaches back that far), ``"invalid_token"``
    (the server rejects the saved token) or ``"invalidated"`` (the collection was
    dropped or renamed, which ends every stream on it).
    """

    def __init__(self, reason: str, *, namespace: str, detail: str) -> None:
        self.reason = reason
        self.namespace = namespace
        super().__init__(
            f"the change stream on {namespace} cannot continue: {detail}. The changes made "
            f"since the saved position cannot be read, so following would lose some. "
            f"Recover with a fresh load that is followed from a new position: "
            f"{FRESH_FOLLOWED_LOAD} (without --resume)"
        )


class TargetBusyError(MigrationKitError):
    """Another run holds the lock on a target table; the one-line message names that run.

    ``holder`` is the holder's :class:`~migrationkit._target.run_lock.RunInfo`, or ``None``
    when it left no record (not a migrationkit run);
    ``session`` is the PostgreSQL backend pid that holds the lock.
    """

    exit_status = 3

    def __init__(
        self,
        message: str,
        *,
        table: str,
        holder: Any = None,
        session: int | None = None,
    ) -> None:
        super().__init__(message)
        self.table = table
        self.holder = holder
        self.session = session


class CutoverTimeoutError(MigrationKitError):
    """``cutover`` gave up: the follower had not applied every change in time."""

    exit_status = 5
