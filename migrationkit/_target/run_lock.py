"""One run per target: a PostgreSQL advisory lock per target table, held for the whole run.

A run takes a session-level advisory lock for each of its target tables on a connection
of its own, kept open until the run ends. PostgreSQL drops a session's locks when the
session ends, so a run that dies, even by ``SIGKILL``, never leaves a stale lock behind::

    run A: connect ─ lock(users) ─ record "run A, host, pid, command" ─ … migrate … ─ unlock
    run B:        connect ─ lock(users)? no ─ read the holder's record ─ TargetBusyError

The record (table ``migrationkit_runs``) is only there to *name* the holder: whether a
run is alive is always asked of ``pg_locks``, so a record left by a killed run is ignored
(and deleted by the next run that takes the lock). Lock keys are 64-bit hashes of
``migrationkit:target:<schema>.<table>``, so they do not collide with other applications'
advisory locks on the same database. If the lock's connection drops (PostgreSQL restarts),
the lock is taken again on a new connection; if another run took it meanwhile, or it
cannot be taken again, the run is stopped with that error.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shlex
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import asyncpg

from migrationkit._errors import MigrationKitError, TargetBusyError, TransientFaultError
from migrationkit._observe.logs import current_run_id, new_run_id
from migrationkit._redact import redact_uri
from migrationkit._retry import POSTGRES_TRANSIENT, RetryPolicy
from migrationkit._target.connection import postgres_unreachable, retry

log = logging.getLogger(__name__)

RUNS_TABLE = "migrationkit_runs"
#: Prefix of every key's hash: what keeps our keys apart from other applications' keys.
KEY_NAMESPACE = "migrationkit:target:"
#: Held (per transaction) while a run checks and records its locks, so that a refused run
#: reads the holder's record only after the holder has written it.
REGISTRY_KEY_NAME = "migrationkit:registry"
CONNECT_TIMEOUT_S = 10.0
#: The lock's session asks PostgreSQL to probe its client over TCP: a run whose machine
#: or network vanished (no FIN, no RST) then loses its lock after about 10 + 3 x 5 s,
#: instead of the system default of two hours or more. (No effect over a Unix socket,
#: where a vanished client is seen at once.)
LOCK_KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
CLOSE_TIMEOUT_S = 2.0
COMMAND_MAX_CHARS = 500

_CREATE_RUNS = f"""
CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (
    backend_pid INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    tables      TEXT[] NOT NULL,
    lock_keys   BIGINT[] NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    command     TEXT NOT NULL
)"""
# The bigint form of pg_advisory_lock shows in pg_locks as classid (high 32 bits),
# objid (low 32 bits), objsubid 1. The shift wraps like two's complement, as the key does.
_LIVE = """
    EXISTS (SELECT 1 FROM pg_locks AS l
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.pid = r.backend_pid
              AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY (r.lock_keys))"""
_HOLDER = """
    SELECT l.pid FROM pg_locks AS l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::bigint << 32) | l.objid::bigint) = $1"""


_FORGET = f"DELETE FROM {RUNS_TABLE} WHERE backend_pid = pg_backend_pid()"


def lock_key(schema: str, table: str) -> int:
    """The advisory lock key of a target table: a stable, namespaced, signed 64-bit hash."""
    digest = hashlib.blake2b(f"{KEY_NAMESPACE}{schema}.{table}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def registry_key() -> int:
    digest = hashlib.blake2b(REGISTRY_KEY_NAME.encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def command_line(argv: Sequence[str] | None = None) -> str:
    """This process's command line, passwords redacted; ``migrationkit …`` for our CLI."""
    words = list(sys.argv if argv is None else argv)
    if words and words[0].endswith(("migrationkit", "migrationkit/__main__.py")):
        words[0] = "migrationkit"
    text = shlex.join(redact_uri(word) for word in words)
    return text if len(text) <= COMMAND_MAX_CHARS else text[: COMMAND_MAX_CHARS - 1] + "…"


@dataclass(frozen=True)
class RunInfo:
    """Who holds a lock: enough for an operator to find the run and decide what to do."""

    run_id: str
    host: str
    pid: int
    started_at: datetime
    command: str

    @classmethod
    def current(cls, *, run_id: str | None = None) -> RunInfo:
        """This process, now, under the current run id (a new one outside a run)."""
        return cls(
            run_id=run_id or current_run_id() or new_run_id(),
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=datetime.now(UTC),
            command=command_line(),
        )

    def describe(self) -> str:
        started = self.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"run {self.run_id} on host {self.host}, pid {self.pid}, "
            f"started {started}: {self.command}"
        )


@dataclass(frozen=True)
class ActiveRun:
    """A run that holds target locks now (``pg_locks`` says so), and its tables."""

    run: RunInfo
    tables: tuple[str, ...]

    def describe(self) -> str:
        return f"{', '.join(self.tables)}: {self.run.describe()}"


async def list_runs(connection: Any) -> list[ActiveRun]:
    """Runs holding a target lock on this database now; records of dead runs are skipped."""
    if await connection.fetchval("SELECT to_regclass($1)", RUNS_TABLE) is None:
        return []
    records = await connection.fetch(
        f"SELECT * FROM {RUNS_TABLE} AS r WHERE {_LIVE} ORDER BY started_at, run_id"
    )
    return [_active_run(record) for record in records]


async def _forget_and_close(connection: asyncpg.Connection) -> None:
    await connection.execute(_FORGET)
    await connection.close()


def _active_run(record: Any) -> ActiveRun:
    info = RunInfo(
        record["run_id"], record["host"], record["pid"], record["started_at"], record["command"]
    )
    return ActiveRun(info, tuple(record["tables"]))


class _OwnStaleSessionError(Exception):
    """Our own old session still held the lock; it was ended, so try again."""


@dataclass
class TargetLock:
    """``async with TargetLock.acquire(dsn, tables=[...]):`` — the run owns these tables.

    Raises :class:`TargetBusyError` at once (no waiting) when another run holds any of
    them. Given a DSN it opens its own connection and takes the lock again after that
    connection drops; given an open asyncpg connection, it uses it as is (keep it open
    and idle for the run: closing it releases the lock).
    """

    target: str | asyncpg.Connection = field(repr=False)
    tables: tuple[str, ...]
    run_info: RunInfo
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    _connection: asyncpg.Connection | None = field(default=None, init=False, repr=False)
    _keys: dict[int, str] = field(default_factory=dict, init=False, repr=False)
    _owner: asyncio.Task[Any] | None = field(default=None, init=False, repr=False)
    _keeper: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _dropped: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _taken: asyncio.Condition = field(default_factory=asyncio.Condition, init=False, repr=False)
    #: How many times the lock was taken: 1, plus one per connection drop it survived.
    takes: int = field(default=0, init=False)
    _failure: MigrationKitError | None = field(default=None, init=False, repr=False)
    _releasing: bool = field(default=False, init=False, repr=False)

    @classmethod
    def acquire(
        cls,
        target: str | asyncpg.Connection,
        *,
        tables: Sequence[str],
        run_info: RunInfo | None = None,
        policy: RetryPolicy | None = None,
    ) -> TargetLock:
        if not tables:
            raise ValueError("a target lock needs at least one table")
        return cls(
            target,
            tuple(dict.fromkeys(tables)),
            run_info or RunInfo.current(),
            policy or RetryPolicy(),
        )

    @property
    def owns_connection(self) -> bool:
        return isinstance(self.target, str)

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL session holding the lock (``None`` while it is being taken again)."""
        if self._connection is None or self._connection.is_closed():
            return None
        return int(self._connection.get_server_pid())

    async def __aenter__(self) -> Self:
        self._owner = asyncio.current_task()
        log.info("asking for the lock on %s as run %s", self._names(), self.run_info.run_id)
        connection = await self._connect()
        try:
            await self._lock(connection)
        except BaseException:
            await self._close(connection)
            raise
        self._connection = connection
        await self._taken_once_more()
        if self.owns_connection:
            self._watch(connection)
            self._keeper = asyncio.create_task(self._keep(), name="migrationkit-target-lock")
        log.info("holding the lock on %s as run %s", self._names(), self.run_info.run_id)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._releasing = True
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._release(connection)
        if self._failure is not None:
            if self._owner is not None:
                self._owner.uncancel()  # we cancelled the run: say why instead
            raise self._failure from exc

    # -- taking and giving back ---------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        """The lock's connection. Not retried: a server down before the run is reported."""
        if not isinstance(self.target, str):
            return self.target
        try:
            return await asyncpg.connect(
                self.target, timeout=CONNECT_TIMEOUT_S, server_settings=LOCK_KEEPALIVES
            )
        except (*POSTGRES_TRANSIENT, asyncpg.PostgresError) as exc:
            raise postgres_unreachable(self.target, exc) from exc

    async def _lock(self, connection: asyncpg.Connection) -> None:
        """Take every table's lock and record this run, or raise :class:`TargetBusyError`."""
        schema = await connection.fetchval("SELECT coalesce(current_schema(), '')")
        self._keys = {lock_key(schema, table): table for table in self.tables}
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", registry_key())
            await connection.execute(_CREATE_RUNS)
            taken: list[int] = []
            for key in sorted(self._keys):  # one order for every run: no lock-order surprises
                if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    for held in taken:
                        await connection.execute("SELECT pg_advisory_unlock($1)", held)
                    raise await self._busy(connection, key)
                taken.append(key)
            # Records of dead runs go; so does one left by a dead session whose pid is ours now.
            await connection.execute(
                f"DELETE FROM {RUNS_TABLE} AS r "
                f"WHERE r.backend_pid = pg_backend_pid() OR NOT {_LIVE}"
            )
            info = self.run_info
            await connection.execute(
                f"INSERT INTO {RUNS_TABLE} VALUES (pg_backend_pid(), $1, $2, $3, $4, $5, $6, $7)",
                info.run_id,
                list(self.tables),
                list(self._keys),
                info.host,
                info.pid,
                info.started_at,
                info.command,
            )

    async def _busy(self, connection: asyncpg.Connection, key: int) -> TargetBusyError:
        """Who holds ``key``, as the error that names them."""
        table = self._keys[key]
        holder_pid = await connection.fetchval(_HOLDER, key)
        record = await connection.fetchrow(
            f"SELECT * FROM {RUNS_TABLE} WHERE backend_pid = $1 AND $2 = ANY (lock_keys)",
            holder_pid,
            key,
        )
        if record is None:
            return TargetBusyError(
                f"table {table} is locked by PostgreSQL session {holder_pid}, which left no "
                f"record in {RUNS_TABLE} (another program using the same lock key?)",
                table=table,
                session=holder_pid,
            )
        holder = _active_run(record).run
        return TargetBusyError(
            f"table {table} is being migrated by another run ({holder.describe()}); "
            "wait for it to finish, or stop it",
            table=table,
            holder=holder,
            session=holder_pid,
        )

    async def _release(self, connection: asyncpg.Connection) -> None:
        if self.owns_connection:
            await self._close(connection)  # the session's end releases every lock it held
            return
        with contextlib.suppress(*POSTGRES_TRANSIENT):
            await connection.execute(_FORGET)
            for key in sorted(self._keys, reverse=True):
                await connection.execute("SELECT pg_advisory_unlock($1)", key)

    async def _close(self, connection: asyncpg.Connection) -> None:
        """Forget our record and end our own session; a stuck one is cut."""
        if not self.owns_connection or connection.is_closed():
            return
        try:
            await asyncio.wait_for(_forget_and_close(connection), CLOSE_TIMEOUT_S)
        except POSTGRES_TRANSIENT:
            connection.terminate()  # the record stays behind, stale: ignored, then deleted
        except asyncio.CancelledError:
            connection.terminate()
            raise

    # -- keeping it when the connection drops -------------------------------------

    def _watch(self, connection: asyncpg.Connection) -> None:
        def dropped(_: object) -> None:
            self._dropped.set()

        connection.add_termination_listener(dropped)

    async def _keep(self) -> None:
        """Take the lock again after its connection drops; stop the run if that fails."""
        while True:
            await self._dropped.wait()
            self._dropped.clear()
            if self._releasing:
                return
            log.warning("the connection holding the lock on %s dropped", self._names())
            try:
                connection = await retry(
                    self._retake,
                    policy=self.policy,
                    transient=(*POSTGRES_TRANSIENT, _OwnStaleSessionError),
                    what=f"taking the lock on {self._names()} again",
                )
            except TargetBusyError as exc:
                lost = f"lost the lock while its connection was down: {exc}"
                self._stop_run(TargetBusyError(lost, table=exc.table, holder=exc.holder))
                return
            except (MigrationKitError, asyncpg.PostgresError) as exc:
                self._stop_run(TransientFaultError(f"lost the lock on {self._names()}: {exc}"))
                return
            self._connection = connection
            self._watch(connection)
            await self._taken_once_more()
            log.warning("holding the lock on %s again", self._names())

    async def _retake(self) -> asyncpg.Connection:
        assert isinstance(self.target, str)
        connection = await asyncpg.connect(self.target, timeout=CONNECT_TIMEOUT_S)
        try:
            await self._lock(connection)
        except TargetBusyError as exc:
            await self._end_own_stale_session(connection, exc)
            raise
        except BaseException:
            connection.terminate()
            raise
        return connection

    async def _end_own_stale_session(
        self, connection: asyncpg.Connection, busy: TargetBusyError
    ) -> None:
        """The holder is this very run's old session (the server has not seen it go): end it."""
        try:
            if busy.holder != self.run_info or busy.session is None:
                return
            log.warning("ending this run's old PostgreSQL session %d", busy.session)
            await connection.execute("SELECT pg_terminate_backend($1)", busy.session)
        finally:
            connection.terminate()
        raise _OwnStaleSessionError(busy.session) from busy

    async def _taken_once_more(self) -> None:
        async with self._taken:
            self.takes += 1
            self._taken.notify_all()

    async def until_taken(self, times: int) -> None:
        """Return once the lock has been taken ``times`` times (1 at the start, +1 per drop)."""
        async with self._taken:
            await self._taken.wait_for(lambda: self.takes >= times)

    def _stop_run(self, failure: MigrationKitError) -> None:
        self._failure = failure
        if self._owner is not None:
            self._owner.cancel()

    def _names(self) -> str:
        return ", ".join(f"table {table}" for table in self.tables)
