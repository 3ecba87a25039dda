"""PostgreSQL from the system's binaries or the ``pgserver`` wheel's, run with initdb + pg_ctl.

PostgreSQL refuses to run as root. As root, initdb, pg_ctl and postgres run as the
``postgres`` system user (``nobody`` when there is none): the data and socket dirs
are chowned to it, and search (``x``) permission is added on any directory above
them it could not cross (e.g. a 0700 ``/root``), with a logged warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from migrationkit._errors import ConfigurationError, ServerUnavailableError
from migrationkit._servers.embedded._common import (
    HOST,
    START_TIMEOUT,
    STOP_TIMEOUT,
    ServerStatus,
    choose_port,
    clean_env,
    output,
    pid_alive,
    pid_is,
    port_answers,
    tail,
    wait_gone,
    wait_until,
)

log = logging.getLogger(__name__)

PG_BINDIR_ENV = "MIGRATIONKIT_PG_BINDIR"
PG_SUPERUSER = "migrationkit"
PG_DATABASE = "migrationkit"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
PG_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_isready", "createdb")
SOCKET_PATH_MAX = 103 if sys.platform == "darwin" else 107  # sizeof(sun_path) - 1
_SOCKET_FILE = ".s.PGSQL.65535"  # the longest name PostgreSQL gives its socket

# A throwaway local dev server: trade crash safety for speed. Fine for a teaching
# kit whose data can be regenerated; never copy these settings to a real server.
PERF_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "'2GB'",
    "shared_buffers": "'256MB'",
}


# --------------------------------------------------------------------------- discovery


def has_pg_tools(bindir: Path) -> bool:
    """Whether ``bindir`` holds every PostgreSQL program we run."""
    return all(os.access(bindir / tool, os.X_OK) for tool in PG_TOOLS)


def pgserver_bindir() -> Path | None:
    """The ``pginstall/bin`` directory inside the installed ``pgserver`` package, if any."""
    try:
        spec = importlib.util.find_spec("pgserver")  # finds it without importing it
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        bindir = Path(location) / "pginstall" / "bin"
        if has_pg_tools(bindir):
            return bindir
    return None


def _major(version: str) -> int:
    match = re.search(r"\d+", version)
    return int(match[0]) if match else 0


def system_pg_bindirs(
    debian_root: Path = DEBIAN_PG_ROOT, *, use_pg_config: bool = True
) -> list[Path]:
    """System PostgreSQL bin dirs (Debian layout, ``pg_config --bindir``), newest first."""
    found: dict[Path, int] = {}
    if debian_root.is_dir():
        for child in debian_root.iterdir():
            if re.fullmatch(r"\d+(\.\d+)?", child.name) and has_pg_tools(child / "bin"):
                found[(child / "bin").resolve()] = _major(child.name)
    pg_config = shutil.which("pg_config") if use_pg_config else None
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = Path(output([pg_config, "--bindir"])).resolve()
            if bindir not in found and has_pg_tools(bindir):
                found[bindir] = _major(output([pg_config, "--version"]))
    return sorted(found, key=lambda bindir: found[bindir], reverse=True)


def find_pg_bindir(
    environ: Mapping[str, str] | None = None,
    *,
    debian_root: Path = DEBIAN_PG_ROOT,
    use_pg_config: bool = True,
) -> Path:
    """``$MIGRATIONKIT_PG_BINDIR``, else the newest system PostgreSQL, else pgserver's."""
    forced = (os.environ if environ is None else environ).get(PG_BINDIR_ENV)
    if forced:
        bindir = Path(forced).expanduser().absolute()
        if not has_pg_tools(bindir):
            raise ConfigurationError(
                f"{PG_BINDIR_ENV}={forced} does not hold all of {', '.join(PG_TOOLS)}"
            )
        return bindir
    system = system_pg_bindirs(debian_root, use_pg_config=use_pg_config)
    found = system[0] if system else pgserver_bindir()
    if found is None:
        raise ServerUnavailableError(
            "no PostgreSQL binaries found: install PostgreSQL, or the bundled ones with "
            f"pip install 'migrationkit[embedded]', or point {PG_BINDIR_ENV} at a bin dir"
        )
    return found


def pg_version(bindir: Path) -> str:
    """``"15.18"`` from ``postgres --version``."""
    match = re.search(r"\d+(\.\d+)*", output([str(bindir / "postgres"), "--version"]))
    return match[0] if match else "?"


def socket_dir_for(home: Path) -> Path:
    """``home/run``, or a short dir under ``/tmp`` when the socket path would be too long."""
    inside = home / "run"
    if len(os.fsencode(inside / _SOCKET_FILE)) <= SOCKET_PATH_MAX:
        return inside
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:12]
    return Path("/tmp") / f"migrationkit-{os.geteuid()}-{digest}"


# --------------------------------------------------------------------------- running as root


@dataclass(frozen=True)
class Account:
    """The unprivileged system user PostgreSQL runs as when we are root."""

    name: str
    uid: int
    gid: int


def server_account(data: Path) -> Account | None:
    """``None`` for a normal user; as root, the data dir's owner, else ``postgres``/``nobody``."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(OSError, KeyError):
        info = data.stat()
        if info.st_uid != 0:
            return Account(pwd.getpwuid(info.st_uid).pw_name, info.st_uid, info.st_gid)
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Account(name, entry.pw_uid, entry.pw_gid)
    raise ServerUnavailableError(
        "running as root, but there is no `postgres` or `nobody` user to run PostgreSQL as"
    )


def give(path: Path, account: Account | None) -> None:
    """Hand ``path`` to ``account`` and let it cross every directory above it."""
    if account is None:
        return
    os.chown(path, account.uid, account.gid)
    for directory in path.parents:
        info = directory.stat()
        if info.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            directory.chmod(stat.S_IMODE(info.st_mode) | bit)
            log.warning("added search permission on %s so PostgreSQL can reach %s", directory, path)


# --------------------------------------------------------------------------- the server


class PostgresServer:
    """A cluster in ``home/postgres``; ``state`` is its part of servers.json."""

    name = "postgresql"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.data = home / "postgres"
        self.logfile = home / "logs" / "postgresql.log"
        self.password_file = home / "postgres.password"

    def postmaster(self) -> tuple[int | None, int | None]:
        """``(pid, port)`` from ``postmaster.pid``, ``(None, None)`` when there is none."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            return int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None, None

    def running(self, state: dict[str, Any]) -> bool:
        """The postmaster is alive and its port accepts connections."""
        pid, port = self.postmaster()
        return pid_is(pid, "postgres") and port_answers(port)

    def dsn(self, state: dict[str, Any]) -> str:
        """The connection string, password included: never log it."""
        try:
            password = self.password_file.read_text().strip()
        except OSError as exc:
            raise ServerUnavailableError(f"cannot read {self.password_file}: {exc}") from exc
        user, db = PG_SUPERUSER, PG_DATABASE
        return f"postgresql://{user}:{quote(password, safe='')}@{HOST}:{state['port']}/{db}"

    def start(self, state: dict[str, Any]) -> None:
        """Start the cluster unless it runs (initdb first if needed); wait until it answers."""
        pid, running_port = self.postmaster()
        if pid_is(pid, "postgres") and running_port:
            bindir, port = Path(state.get("bindir") or self._bindir(state)), running_port
        else:
            bindir, port = self._start(state)
        state.update(bindir=str(bindir), port=port, pid=self.postmaster()[0])
        took = wait_until(
            lambda: self._isready(bindir, port),
            lambda: pid_alive(self.postmaster()[0]),
            "PostgreSQL",
            self.logfile,
        )
        log.debug("PostgreSQL answers on %s:%d (waited %.2f s)", HOST, port, took)
        if state.get("database") != PG_DATABASE:
            self._create_database(bindir, port)
            state["database"] = PG_DATABASE

    def stop(self, state: dict[str, Any]) -> None:
        """``pg_ctl stop -m fast``; ``-m immediate`` then SIGKILL if that fails."""
        state.pop("pid", None)
        pid, _ = self.postmaster()
        if pid is None:
            return
        if not pid_is(pid, "postgres"):
            (self.data / "postmaster.pid").unlink(missing_ok=True)  # stale: its process is dead
            return
        bindir = Path(state.get("bindir") or self._bindir(state))
        command = [str(bindir / "pg_ctl"), "stop", "-D", str(self.data), "-s"]
        done = self._run([*command, "-m", "fast", "-t", str(int(STOP_TIMEOUT))])
        if done.returncode != 0 and pid_alive(pid):
            log.warning("PostgreSQL did not stop cleanly (%s); killing it", done.stdout.strip())
            self._run([*command, "-m", "immediate"])
            if not wait_gone(pid, 10):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 10)
        log.info("stopped PostgreSQL (pid %d)", pid)

    def status(self, state: dict[str, Any]) -> ServerStatus:
        """Running or not, pid, port, version, bin dir and data dir (never the password)."""
        running = self.running(state)
        pid, port = self.postmaster() if running else (None, state.get("port"))
        where = f"at {HOST}:{port}" if running else "stopped"
        try:
            bindir = Path(state.get("bindir") or self._bindir(state))
            binaries = f"PostgreSQL {state.get('version') or pg_version(bindir)} ({bindir})"
        except (
            ConfigurationError,
            ServerUnavailableError,
            OSError,
            subprocess.SubprocessError,
        ) as exc:
            binaries = f"PostgreSQL unavailable ({exc})"
        return ServerStatus(
            self.name, running, pid, port, f"{binaries} {where}, data in {self.data}"
        )

    # ---- internals

    def _bindir(self, state: dict[str, Any]) -> Path:
        """The bin dir that initialised the data dir while it is still there, else discovery."""
        recorded = state.get("bindir")
        initialised = (self.data / "PG_VERSION").is_file()
        forced = os.environ.get(PG_BINDIR_ENV)
        if recorded and initialised and not forced and has_pg_tools(Path(recorded)):
            return Path(recorded)
        return find_pg_bindir()

    def _start(self, state: dict[str, Any]) -> tuple[Path, int]:
        started = time.monotonic()
        bindir = self._bindir(state)
        version = pg_version(bindir)
        if not (self.data / "PG_VERSION").is_file():
            self._initdb(bindir)
            state.pop("database", None)
        initialised = (self.data / "PG_VERSION").read_text().strip()
        if initialised != str(_major(version)):
            raise ServerUnavailableError(
                f"{self.data} holds PostgreSQL {initialised} data but {bindir} is PostgreSQL "
                f"{version}; set {PG_BINDIR_ENV} to a PostgreSQL {initialised} bin dir, "
                f"or delete {self.data} to start afresh"
            )
        port = choose_port(state.get("port"), "PostgreSQL")
        self._configure(port)
        (self.data / "postmaster.pid").unlink(missing_ok=True)  # stale: postmaster is dead
        self.logfile.parent.mkdir(exist_ok=True)
        self.logfile.touch()
        give(self.logfile, server_account(self.data))
        state.update(bindir=str(bindir), version=version, port=port)
        command = [str(bindir / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.logfile)]
        done = self._run([*command, "-w", "-t", str(int(START_TIMEOUT)), "-s"])
        if done.returncode != 0:
            self.stop(state)
            raise ServerUnavailableError(
                f"PostgreSQL did not start: {done.stdout.strip()}\n"
                f"end of {self.logfile}:\n{tail(self.logfile)}"
            )
        took = time.monotonic() - started
        log.info("started PostgreSQL %s on %s:%d in %.2f s", version, HOST, port, took)
        return bindir, port

    def _initdb(self, bindir: Path) -> None:
        """Create the cluster: scram auth, superuser ``migrationkit``, a random password."""
        if not self.password_file.exists():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            with os.fdopen(os.open(self.password_file, flags, 0o600), "w") as handle:
                handle.write(secrets.token_urlsafe(24) + "\n")
        if self.data.exists():
            shutil.rmtree(self.data)  # leftovers of an interrupted initdb (no PG_VERSION)
        self.data.mkdir(mode=0o700, parents=True)
        account = server_account(self.data)
        give(self.data, account)
        # initdb reads the password from a file, as the server account: a short-lived copy.
        pwfile = self.home / f".initdb-pw-{os.getpid()}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        with os.fdopen(os.open(pwfile, flags, 0o600), "w") as handle:
            handle.write(self.password_file.read_text())
        try:
            give(pwfile, account)
            done = self._run([
                str(bindir / "initdb"), "-D", str(self.data), f"--username={PG_SUPERUSER}",
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                "--locale=C", "--no-sync",
            ])  # fmt: skip
        finally:
            pwfile.unlink()
        self.logfile.parent.mkdir(exist_ok=True)
        (self.logfile.parent / "initdb.log").write_text(done.stdout)
        if done.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise ServerUnavailableError(f"initdb failed:\n{done.stdout.strip()}")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'migrationkit.conf'\n")

    def _configure(self, port: int) -> None:
        """(Re)write ``migrationkit.conf``: address, port, socket dir, perf settings."""
        account = server_account(self.data)
        socket_dir = socket_dir_for(self.home)
        if not socket_dir.exists():
            socket_dir.mkdir(mode=0o700)
        owners = {os.geteuid(), account.uid if account else os.geteuid()}
        if socket_dir.is_symlink() or socket_dir.lstat().st_uid not in owners:
            raise ServerUnavailableError(f"{socket_dir} belongs to someone else; remove it")
        give(socket_dir, account)
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(port),
            "unix_socket_directories": "'" + str(socket_dir).replace("'", "''") + "'",
            **PERF_SETTINGS,
        }
        conf = self.data / "migrationkit.conf"
        conf.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        if account:
            os.chown(conf, account.uid, account.gid)

    def _isready(self, bindir: Path, port: int) -> bool:
        if not port_answers(port):
            return False
        command = [str(bindir / "pg_isready"), "-q", "-h", HOST, "-p", str(port)]
        done = subprocess.run([*command, "-U", PG_SUPERUSER, "-t", "2"], env=clean_env())
        return done.returncode == 0

    def _create_database(self, bindir: Path, port: int) -> None:
        # PGPASSWORD reaches only this short-lived child (readable by us and root alone).
        password = self.password_file.read_text().strip()
        command = [str(bindir / "createdb"), "-h", HOST, "-p", str(port), "-U", PG_SUPERUSER]
        done = subprocess.run(
            [*command, "--no-password", PG_DATABASE], capture_output=True, text=True,
            env=clean_env(PGPASSWORD=password), timeout=START_TIMEOUT,
        )  # fmt: skip
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise ServerUnavailableError(f"could not create database: {done.stderr.strip()}")

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run initdb/pg_ctl, as the unprivileged server account when we are root."""
        account = server_account(self.data)
        as_account: dict[str, Any] = {}
        if account:
            as_account = {"user": account.uid, "group": account.gid, "extra_groups": []}
        return subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=self.home, env=clean_env(), start_new_session=True, **as_account,
        )  # fmt: skip
