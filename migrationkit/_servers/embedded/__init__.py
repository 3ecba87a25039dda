"""Local MongoDB-wire and PostgreSQL servers that outlive the command that started them.

When no ``MIGRATIONKIT_MONGO_URI`` / ``MIGRATIONKIT_PG_DSN`` is configured, migrationkit
runs two servers of its own, listening on 127.0.0.1 only:

* SecantusDB (``secantusd-py``), a MongoDB-wire server written in Python (:mod:`.mongo`);
* PostgreSQL from the system binaries, else those in the ``pgserver`` wheel;
  ``MIGRATIONKIT_PG_BINDIR`` forces a bin dir (:mod:`.postgres`, which also explains
  how it copes with being run as root).

Everything lives under ``MIGRATIONKIT_HOME`` (default ``~/.migrationkit``)::

    mongo/          SecantusDB data         postgres/           PostgreSQL data
    logs/           one log per server      run/                PostgreSQL unix socket
    servers.json    ports, pids, bin dir    postgres.password   superuser password (0600)

The servers run detached (own session, output to the log files), so
``migrationkit servers start``, a later ``migrate`` and ``servers stop`` can be three
separate processes. POSIX only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from migrationkit._errors import ServerUnavailableError
from migrationkit._servers.embedded._common import ServerStatus
from migrationkit._servers.embedded.mongo import MongoServer, find_secantusd
from migrationkit._servers.embedded.postgres import (
    PG_BINDIR_ENV,
    PostgresServer,
    find_pg_bindir,
    pgserver_bindir,
    socket_dir_for,
)
from migrationkit._servers.endpoints import Endpoints

__all__ = [
    "HOME_ENV",
    "PG_BINDIR_ENV",
    "EmbeddedServers",
    "Endpoints",
    "ServerStatus",
    "default_home",
    "find_pg_bindir",
    "find_secantusd",
    "pgserver_bindir",
    "socket_dir_for",
]

HOME_ENV = "MIGRATIONKIT_HOME"


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$MIGRATIONKIT_HOME``, else ``~/.migrationkit``."""
    raw = (os.environ if environ is None else environ).get(HOME_ENV)
    return Path(raw).expanduser().absolute() if raw else Path.home() / ".migrationkit"


class EmbeddedServers:
    """Start, reuse, stop and report on the local SecantusDB and PostgreSQL servers."""

    def __init__(self, home: Path | None = None) -> None:
        self.home: Path = Path(home).expanduser().absolute() if home else default_home()
        self._state_file = self.home / "servers.json"
        self._mongo = MongoServer(self.home)
        self._postgres = PostgresServer(self.home)

    def start(self) -> Endpoints:
        """Start whichever server is not running, wait until both answer, return endpoints.

        Idempotent: running servers are reused. Raises :class:`ServerUnavailableError`,
        with the end of the server's log, when one does not answer in time.
        """
        with self._locked():
            state = self._load_state()
            try:
                wait_for_mongo = self._mongo.launch(state.setdefault("mongodb", {}))
                self._postgres.start(state.setdefault("postgresql", {}))  # meanwhile
                wait_for_mongo()
            finally:
                self._save_state(state)
        return self.endpoints()

    def endpoints(self) -> Endpoints:
        """Connection strings for servers already running (``pg_dsn`` holds the password)."""
        state = self._load_state()
        mongo, postgres = state.get("mongodb", {}), state.get("postgresql", {})
        if not (self._mongo.running(mongo) and self._postgres.running(postgres)):
            raise ServerUnavailableError(
                "embedded servers are not running; run `migrationkit servers start`"
            )
        return Endpoints(mongo_uri=self._mongo.uri(mongo), pg_dsn=self._postgres.dsn(postgres))

    def stop(self) -> None:
        """Stop both servers (clean shutdown first, killed after a timeout); idempotent."""
        if not self.home.is_dir():
            return
        with self._locked():
            state = self._load_state()
            try:
                self._postgres.stop(state.setdefault("postgresql", {}))
                self._mongo.stop(state.setdefault("mongodb", {}))
            finally:
                self._save_state(state)

    def restart_postgres(self) -> None:
        """Stop PostgreSQL cleanly and start it again on the same port (fault injection)."""
        with self._locked():
            state = self._load_state()
            try:
                self._postgres.stop(state.setdefault("postgresql", {}))
                self._postgres.start(state["postgresql"])
            finally:
                self._save_state(state)

    def status(self) -> list[ServerStatus]:
        """One :class:`ServerStatus` per server: MongoDB-wire first, then PostgreSQL."""
        state = self._load_state()
        return [
            self._mongo.status(state.get("mongodb", {})),
            self._postgres.status(state.get("postgresql", {})),
        ]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop between processes sharing this home."""
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _load_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        partial = self._state_file.with_suffix(".tmp")
        partial.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        partial.replace(self._state_file)
