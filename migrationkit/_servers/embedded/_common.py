"""What both embedded servers share: result types, processes, ports, waiting."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migrationkit._errors import ServerUnavailableError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT = 60.0  # seconds a server may take to answer
STOP_TIMEOUT = 30.0  # seconds a server may take to shut down before it is killed
_HAS_PROC = Path("/proc/self/stat").exists()


@dataclass(frozen=True)
class ServerStatus:
    """What ``migrationkit servers status`` shows for one server (never a password)."""

    name: str
    running: bool
    pid: int | None
    port: int | None
    detail: str


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment minus ``PG*`` variables, which would steer libpq and the server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(extra)
    return env


def output(command: list[str]) -> str:
    """Run a quick command and return its stripped stdout."""
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live process; a zombie counts as dead (PID 1 may never reap it)."""
    if not pid or pid <= 0:
        return False
    if _HAS_PROC:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_is(pid: int | None, program: str) -> bool:
    """Whether ``pid`` is alive and runs ``program`` (guards against a reused pid)."""
    if not pid_alive(pid):
        return False
    try:
        return program.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not _HAS_PROC  # without /proc, trust the pid


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited; ``False`` if it is still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def port_answers(port: int | None, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``HOST:port``."""
    if not port:
        return False
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    """Whether a server could listen on ``HOST:port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def choose_port(remembered: int | None, server: str) -> int:
    """The remembered port when it is still free, else a new free one (logged)."""
    if remembered and port_free(remembered):
        return remembered
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    if remembered:
        log.warning("%s: port %d is taken, using port %d instead", server, remembered, port)
    return port


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text) or f"({path} is empty)"


def wait_until(
    ready: Callable[[], bool], alive: Callable[[], bool], server: str, logfile: Path
) -> float:
    """Poll ``ready`` until true; raise if the server dies or ``START_TIMEOUT`` passes."""
    start = time.monotonic()
    delay = 0.02
    while not ready():
        if not alive():
            problem = "exited during start-up"
        elif time.monotonic() - start > START_TIMEOUT:
            problem = f"did not answer within {START_TIMEOUT:.0f} s"
        else:
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
            continue
        raise ServerUnavailableError(f"{server} {problem}; end of {logfile}:\n{tail(logfile)}")
    return time.monotonic() - start
