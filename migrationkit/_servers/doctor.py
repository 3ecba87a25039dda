"""``migrationkit doctor``: is this machine ready for the workshop, and if not, what to do.

It reports what is installed (Python, the package, its dependencies and extras), which
servers migrationkit would use (configured or embedded, passwords hidden) and whether
they answer (both at once, with short timeouts), the migrations in progress on that
PostgreSQL, then one command per problem. It never starts a server. Exit code 0 when
all is well, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
from pymongo.errors import PyMongoError

from migrationkit._errors import MigrationKitError
from migrationkit._mapping import fast_rows
from migrationkit._redact import redact_uri
from migrationkit._settings.settings import Settings
from migrationkit._target.run_lock import list_runs
from migrationkit._target.tables import describe_server

Level = Literal["ok", "info", "problem"]

DEFAULT_TIMEOUT_S = 3.0
MIN_PYTHON = (3, 11)
_WHY = {
    "embedded": "needed for the embedded servers",
    "notebooks": "needed for the workshop notebooks",
    "test": "needed only to run the tests",
}
_MARKS: dict[Level, str] = {"ok": "ok", "info": "--", "problem": "FAIL"}
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)[^;]*(?:;(.*))?")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
#: What a server that is down, refuses us or gets a malformed URI raises through the drivers.
_SERVER_ERRORS = (
    PyMongoError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError, ValueError,
)  # fmt: skip


@dataclass(frozen=True)
class Check:
    """One line of the report; a problem carries the one command that fixes it."""

    section: str
    name: str
    level: Level
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    """Every check, in the order they are shown."""

    checks: list[Check]

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.level == "problem"]

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = ["migrationkit doctor"]
        for section in dict.fromkeys(check.section for check in self.checks):
            lines += ["", section]
            lines += [
                f"  {_MARKS[c.level]:<4}  {c.name:<13} {c.detail}"
                for c in self.checks
                if c.section == section
            ]
        if self.ok:
            return "\n".join([*lines, "", "All good: ready for the workshop."])
        lines += ["", "What to do"]
        for number, check in enumerate(self.problems, 1):
            lines.append(f"  {number}. {check.name}: {check.fix}")
        count = len(self.problems)
        return "\n".join([*lines, "", f"{count} problem{'s' * (count > 1)} found."])


# --------------------------------------------------------------------------- installed


def _requirements() -> dict[str | None, list[str]]:
    """The package's requirement names by extra (``None`` for the core dependencies)."""
    groups: dict[str | None, list[str]] = {}
    for line in importlib.metadata.requires("migrationkit") or []:
        match = _REQUIREMENT.match(line)
        if match:
            extra = _EXTRA.search(match[2] or "")
            groups.setdefault(extra[1] if extra else None, []).append(match[1])
    return groups


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def editable_source() -> str | None:
    """The clone this package is installed from in editable mode, if it is."""
    raw = importlib.metadata.distribution("migrationkit").read_text("direct_url.json")
    origin = json.loads(raw) if raw else {}
    url = str(origin.get("url", ""))
    if origin.get("dir_info", {}).get("editable") and url.startswith("file://"):
        return url.removeprefix("file://")
    return None


def install_command(extras: Sequence[str]) -> str:
    """``python -m pip install …`` for this interpreter: editable from the clone if it is one."""
    python = shlex.quote(sys.executable)
    suffix = f"[{','.join(extras)}]" if extras else ""
    source = editable_source()
    if source:
        return f"{python} -m pip install -e {shlex.quote(source + suffix)}"
    return f"{python} -m pip install {shlex.quote('migrationkit' + suffix)}"


def _group_check(name: str, packages: list[str], *, needed: bool, why: str) -> Check:
    versions = {package: _version(package) for package in packages}
    missing = [package for package, version in versions.items() if version is None]
    if not missing:
        detail = ", ".join(f"{package} {version}" for package, version in versions.items())
        return Check("Installed", name, "ok", detail)
    detail = f"missing {', '.join(missing)} ({why})"
    extra = name.strip("[]")
    fix = install_command([] if extra == "dependencies" else [extra])
    return Check("Installed", name, "problem" if needed else "info", detail, fix)


def python_check() -> Check:
    python = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info >= MIN_PYTHON:
        return Check("Installed", "python", "ok", f"{python} at {sys.executable}")
    fix = "install Python 3.11 or newer, then make the venv again: python3.11 -m venv .venv"
    return Check("Installed", "python", "problem", f"{python} is too old", fix)


def installed_checks(*, embedded_needed: bool) -> list[Check]:
    """Python, the package and each group of its dependencies: present or not."""
    version = _version("migrationkit")
    if version is None:  # imported from a source tree that pip never installed
        python = shlex.quote(sys.executable)
        fix = f"{python} -m pip install -e '.[embedded,notebooks]'   (in the clone)"
        missing = Check("Installed", "migrationkit", "problem", "not installed", fix)
        return [python_check(), missing]
    source = editable_source()
    where = f" (editable, from {source})" if source else ""
    checks = [python_check(), Check("Installed", "migrationkit", "ok", version + where), c_rows()]
    groups = _requirements()
    core = groups.pop(None, [])
    checks.append(_group_check("dependencies", core, needed=True, why="needed to run"))
    for extra, packages in groups.items():
        assert extra is not None
        needed = extra == "notebooks" or (extra == "embedded" and embedded_needed)
        why = _WHY.get(extra, f"the [{extra}] extra")
        checks.append(_group_check(f"[{extra}]", packages, needed=needed, why=why))
    return checks


def c_rows() -> Check:
    """Whether the C row writer (:mod:`migrationkit._mapping.fast_rows`) was built."""
    if fast_rows.AVAILABLE:
        detail = "built: mappings with only top-level columns are written from raw BSON in C"
        return Check("Installed", "C row writer", "ok", detail)
    detail = "not built (no C compiler when it was installed): every document takes Python"
    fix = "install a C compiler (Debian: apt install gcc python3-dev), then reinstall"
    return Check("Installed", "C row writer", "info", detail, fix)


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Target:
    """A server migrationkit would use: where it is, and how to fix it if it fails."""

    name: str  # "MongoDB" or "PostgreSQL"
    uri: str
    origin: str  # "configured" or "embedded"
    variable: str  # the environment variable that configures it
    log: str | None = None  # the embedded server's log file


def _first_line(exc: BaseException) -> str:
    text = str(exc).split(", Timeout:")[0]  # pymongo appends the whole topology
    lines = re.sub(r" \(configured timeouts:[^)]*\)", "", text).strip().splitlines()
    message = redact_uri(lines[0] if lines else "")[:160]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def probe_mongo(uri: str, settings: Settings, timeout: float) -> str:
    """Ask MongoDB for its version and the users collection's size."""
    from pymongo import AsyncMongoClient

    milliseconds = int(timeout * 1000)
    options: dict[str, Any] = {}
    for option in ("serverSelectionTimeoutMS", "connectTimeoutMS"):
        if option.lower() not in uri.lower():  # the URI's own option wins
            options[option] = milliseconds
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, **options)
    try:
        info = await client.admin.command("buildInfo")
        collection = client[settings.mongo_database][settings.mongo_collection]
        count = await collection.estimated_document_count()
    finally:
        await client.close()
    return f"version {info.get('version', '?')}; {settings.mongo_collection}: {count:,} documents"


async def probe_postgres(dsn: str, settings: Settings, timeout: float) -> str:
    """Ask PostgreSQL for its version and whether the users table exists."""
    connection = await asyncpg.connect(dsn, timeout=timeout)
    try:
        version, exists = await describe_server(connection, settings.pg_table)
        table = f"table {settings.pg_table}" + (" exists" if exists else " not created yet")
    finally:
        await connection.close()
    return f"version {str(version).split()[0]}; {table}"


def _failure_fix(target: Target, exc: BaseException) -> str:
    """One concrete thing to do about a server that did not answer."""
    text = f"{type(exc).__name__} {exc}".lower()
    if "auth" in text or "password" in text:
        return f"check the user and password in {target.variable} (docker compose: in .env)"
    if "does not exist" in text:
        return f"check the database name in {target.variable}"
    if target.log:
        return f"migrationkit servers stop && migrationkit servers start   (log: {target.log})"
    return f"start the server at {redact_uri(target.uri)}, or unset {target.variable}"


async def _check_server(target: Target, settings: Settings, timeout: float) -> Check:
    where = f"{target.origin:<10}  {redact_uri(target.uri)}"
    probe = probe_mongo if target.name == "MongoDB" else probe_postgres
    try:
        # The drivers time out on their own; this guards against a server that accepts
        # the connection and then never replies.
        answer = await asyncio.wait_for(probe(target.uri, settings, timeout), timeout + 2)
    except _SERVER_ERRORS as exc:  # the failure is the finding: reported, not raised
        detail = f"{where}  does not answer: {_first_line(exc)}"
        return Check("Servers", target.name, "problem", detail, _failure_fix(target, exc))
    return Check("Servers", target.name, "ok", f"{where}  answers: {answer}")


def resolve_targets(settings: Settings) -> tuple[list[Target], list[Check]]:
    """The configured servers, else the embedded ones (never started here).

    Returns the servers to probe, and a check for each server that cannot be probed:
    embedded and not running (fine: it starts on first use), or not even installed.
    """
    prefix = Settings.model_config.get("env_prefix", "")
    configured = {
        "MongoDB": settings.mongo_uri.get_secret_value() if settings.mongo_uri else None,
        "PostgreSQL": settings.pg_dsn.get_secret_value() if settings.pg_dsn else None,
    }
    variables = {"MongoDB": f"{prefix}MONGO_URI", "PostgreSQL": f"{prefix}PG_DSN"}
    targets = [
        Target(name, uri, "configured", variables[name])
        for name, uri in configured.items()
        if uri is not None
    ]
    if all(configured.values()):
        return targets, []

    from migrationkit._servers import embedded

    servers = embedded.EmbeddedServers()
    running = all(status.running for status in servers.status())
    endpoints = servers.endpoints() if running else None
    logs = {"MongoDB": "mongodb.log", "PostgreSQL": "postgresql.log"}
    unprobed: list[Check] = []
    for name in (name for name, uri in configured.items() if uri is None):
        try:
            if name == "MongoDB":
                embedded.find_secantusd()
            else:
                embedded.find_pg_bindir()
        except MigrationKitError as exc:
            fix = install_command(["embedded"])
            unprobed.append(Check("Servers", name, "problem", f"embedded    {exc}", fix))
            continue
        if endpoints is None:
            detail = "embedded    not running: starts on first use (or: migrationkit servers start)"
            unprobed.append(Check("Servers", name, "ok", detail))
            continue
        uri = endpoints.mongo_uri if name == "MongoDB" else endpoints.pg_dsn
        log = str(servers.home / "logs" / logs[name])
        targets.append(Target(name, uri, "embedded", variables[name], log))
    return targets, unprobed


async def server_checks(settings: Settings, timeout: float) -> list[Check]:
    """Which servers migrationkit would use, and whether each answers (probed concurrently)."""
    targets, checks = await asyncio.to_thread(resolve_targets, settings)
    checks += await asyncio.gather(*(_check_server(t, settings, timeout) for t in targets))
    order = ["MongoDB", "PostgreSQL"]
    checks.sort(key=lambda check: order.index(check.name))
    # The runs holding a target lock, from the PostgreSQL that answered.
    answered = {check.name for check in checks if check.level == "ok"}
    for target in (t for t in targets if t.name == "PostgreSQL" and t.name in answered):
        checks += await run_checks(target.uri, timeout)
    return checks


async def run_checks(dsn: str, timeout: float) -> list[Check]:
    """One line per migration in progress on this PostgreSQL (``migrationkit_runs``)."""
    try:
        connection = await asyncpg.connect(dsn, timeout=timeout)
        try:
            runs = await asyncio.wait_for(list_runs(connection), timeout)
        finally:
            await connection.close()
    except _SERVER_ERRORS as exc:
        return [Check("Runs", "in progress", "info", f"cannot tell: {_first_line(exc)}")]
    if not runs:
        return [Check("Runs", "in progress", "ok", "none")]
    return [Check("Runs", "in progress", "info", run.describe()) for run in runs]


async def diagnose(
    settings: Settings | MigrationKitError, *, timeout: float = DEFAULT_TIMEOUT_S
) -> Diagnosis:
    """Every check of ``settings`` (or of the error that loading them raised).

    ``await diagnose(Settings())`` in a notebook; ``migrationkit doctor`` in a shell.
    """
    if isinstance(settings, MigrationKitError):
        problem = Check("Servers", "settings", "problem", str(settings), settings_fix(settings))
        return Diagnosis([*installed_checks(embedded_needed=True), problem])
    uses_embedded = settings.mongo_uri is None or settings.pg_dsn is None
    checks = installed_checks(embedded_needed=uses_embedded)
    return Diagnosis([*checks, *await server_checks(settings, timeout)])


def settings_fix(error: MigrationKitError) -> str:
    """What to do about settings that do not load: name the variable when one is to blame."""
    variable = re.search(r"MIGRATIONKIT_[A-Z_]+", str(error))
    return f"fix or unset {variable[0]}" if variable else "fix the setting named above"
