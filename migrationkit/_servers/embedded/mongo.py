"""SecantusDB (``secantusd-py``), the embedded MongoDB-wire server."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from migrationkit._errors import ServerUnavailableError
from migrationkit._servers.embedded._common import (
    HOST,
    STOP_TIMEOUT,
    ServerStatus,
    choose_port,
    clean_env,
    pid_alive,
    pid_is,
    port_answers,
    wait_gone,
    wait_until,
)

log = logging.getLogger(__name__)

# sh starts the server in the background and exits at once: the server is then
# nobody's child, outlives us, and never lingers as a zombie of ours.
_DETACH = ["/bin/sh", "-c", '"$@" </dev/null >>"$0" 2>&1 & echo $!']


def find_secantusd(python: str | None = None, path: str | None = None) -> Path:
    """``secantusd-py`` next to the Python interpreter (the venv), else on ``PATH``."""
    beside = Path(python or sys.executable).parent / "secantusd-py"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("secantusd-py", path=path)
    if found:
        return Path(found)
    raise ServerUnavailableError(
        "SecantusDB's `secantusd-py` is not installed (looked next to the Python "
        "interpreter and on PATH); install the embedded servers with: "
        "pip install 'migrationkit[embedded]'"
    )


def mongo_ping(port: int) -> bool:
    """Whether a MongoDB-wire server on ``HOST:port`` answers ``ping``."""
    if not port_answers(port):
        return False
    client: MongoClient[dict[str, Any]] = MongoClient(
        HOST, port, directConnection=True, serverSelectionTimeoutMS=500, connectTimeoutMS=500
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


class MongoServer:
    """SecantusDB with its data in ``home/mongo``; ``state`` is its part of servers.json."""

    name = "mongodb"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.data = home / "mongo"
        self.logfile = home / "logs" / "mongodb.log"

    def running(self, state: dict[str, Any]) -> bool:
        """Our process is alive and its port accepts connections."""
        return pid_is(state.get("pid"), "secantus") and port_answers(state.get("port"))

    def uri(self, state: dict[str, Any]) -> str:
        """The connection string (no authentication on a loopback-only server).

        Without retryable writes: SecantusDB keeps a record of every retryable write for
        30 minutes and scans them all at each write (sorts them, past 10,000), so single
        writes fell from 937/s to 69/s over 12,000 of them, against a steady 1,350/s
        without (docs/change_streams.md). On loopback a retry would buy nothing.
        """
        return f"mongodb://{HOST}:{state['port']}/?directConnection=true&retryWrites=false"

    def launch(self, state: dict[str, Any]) -> Callable[[], None]:
        """Start SecantusDB unless it runs; return a function that waits until it answers."""
        if not pid_is(state.get("pid"), "secantus"):
            executable = find_secantusd()
            port = choose_port(state.get("port"), "SecantusDB")
            self.logfile.parent.mkdir(exist_ok=True)
            self.data.mkdir(exist_ok=True)
            config = self.home / "secantusd.toml"  # explicit: no ~/.secantus config discovery
            if not config.exists():
                config.write_text("# SecantusDB settings for migrationkit; flags override.\n")
            command = [
                str(executable), "--config", str(config), "--host", HOST, "--port", str(port),
                "--storage-path", str(self.data), "--log-level", "WARNING",
            ]  # fmt: skip
            launched = subprocess.run(
                [*_DETACH, str(self.logfile), *command], capture_output=True, text=True,
                check=True, cwd=self.home, start_new_session=True, env=clean_env(),
            )  # fmt: skip
            state.update(pid=int(launched.stdout), port=port)
            log.info("starting SecantusDB on %s:%d (pid %d)", HOST, port, state["pid"])
        pid, port = state["pid"], state["port"]

        def wait() -> None:
            took = wait_until(
                lambda: mongo_ping(port), lambda: pid_alive(pid), "SecantusDB", self.logfile
            )
            log.info("SecantusDB answers on %s:%d (waited %.2f s)", HOST, port, took)

        return wait

    def stop(self, state: dict[str, Any]) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``STOP_TIMEOUT``."""
        pid = state.pop("pid", None)
        if pid_is(pid, "secantus"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                if not wait_gone(pid, STOP_TIMEOUT):
                    log.warning("SecantusDB (pid %d) ignored SIGTERM; killing it", pid)
                    os.kill(pid, signal.SIGKILL)
                    wait_gone(pid, 10)
            log.info("stopped SecantusDB (pid %d)", pid)

    def status(self, state: dict[str, Any]) -> ServerStatus:
        """Running or not, pid, port, version and data dir."""
        try:
            version = f"SecantusDB {importlib.metadata.version('SecantusDB')}"
        except importlib.metadata.PackageNotFoundError:
            version = "SecantusDB (not installed)"
        running = self.running(state)
        where = f"at {HOST}:{state.get('port')}" if running else "stopped"
        pid = state.get("pid") if running else None
        detail = f"{version} {where}, data in {self.data}"
        return ServerStatus(self.name, running, pid, state.get("port"), detail)
