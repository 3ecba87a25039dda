"""The setup notebook's checks: what is installed, and whether both servers answer.

Every check says how to fix what it found wrong. Nothing here prints a password:
addresses go through :func:`~migrationkit._settings.settings.redact_uri`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
from dataclasses import dataclass

from migrationkit._errors import MigrationKitError
from migrationkit._redact import redact_uri
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._target.connection import PostgresConnectionHandler
from migrationkit.workshop.lessons.results import Table

#: Distributions the kit needs, and the extra that installs each one.
REQUIREMENTS: dict[str, str] = {
    "migrationkit": ".",
    "asyncpg": ".",
    "motor": ".",
    "pymongo": ".",
    "pydantic": ".",
    "faker": ".",
    "SecantusDB": ".[embedded]",
    "ipywidgets": ".[notebooks]",
    "matplotlib": ".[notebooks]",
}


@dataclass(frozen=True)
class Check:
    """One thing verified: did it pass, what was seen, and how to fix it if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_packages() -> list[Check]:
    """Python itself and each required distribution, with its version or how to install it."""
    checks = [Check("python", True, f"{platform.python_version()} on {os.cpu_count()} CPUs")]
    for name, extra in REQUIREMENTS.items():
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            fix = f"pip install -e '{extra}' (from the repository root)"
            checks.append(Check(name, False, "not installed", fix))
        else:
            checks.append(Check(name, True, version))
    return checks


async def find_servers(settings: Settings | None = None) -> tuple[Endpoints | None, Check]:
    """The endpoints to use (starting the embedded servers if no URIs are set)."""
    settings = settings or Settings()
    configured = settings.mongo_uri is not None and settings.pg_dsn is not None
    where = "MIGRATIONKIT_MONGO_URI / MIGRATIONKIT_PG_DSN" if configured else "embedded servers"
    try:
        endpoints = await asyncio.to_thread(resolve_endpoints, settings)
    except MigrationKitError as exc:
        fix = (
            "check both URIs and that the servers run"
            if configured
            else "run `python -m migrationkit servers status`, read the log it names, "
            "then `python -m migrationkit servers start`"
        )
        return None, Check(where, False, str(exc), fix)
    addresses = "; ".join(" ".join(line.split()) for line in endpoints.describe().splitlines())
    return endpoints, Check(where, True, addresses)


async def check_mongo(uri: str) -> Check:
    """Ping the MongoDB-wire server and report its version."""
    try:
        async with MongoConnectionHandler(uri) as client:
            info = await client.server_info()
    except MigrationKitError as exc:
        fix = "start it (`python -m migrationkit servers start`) or fix MIGRATIONKIT_MONGO_URI"
        return Check("MongoDB-wire server", False, str(exc), fix)
    return Check("MongoDB-wire server", True, f"{redact_uri(uri)} (version {info['version']})")


async def check_postgres(dsn: str) -> Check:
    """Open a connection to PostgreSQL and report its version."""
    try:
        async with PostgresConnectionHandler(dsn, min_size=1, max_size=1) as pool:
            version = await pool.fetchval("SHOW server_version")
    except MigrationKitError as exc:
        fix = "start it (`python -m migrationkit servers start`) or fix MIGRATIONKIT_PG_DSN"
        return Check("PostgreSQL", False, str(exc), fix)
    return Check("PostgreSQL", True, f"{redact_uri(dsn)} (version {version})")


async def check_servers(endpoints: Endpoints) -> list[Check]:
    """Both servers, checked at once."""
    return list(
        await asyncio.gather(check_mongo(endpoints.mongo_uri), check_postgres(endpoints.pg_dsn))
    )


def checks_table(checks: list[Check]) -> Table:
    """The checks as a table: ok/FAIL, what was seen, and the fix for each failure."""
    rows = [[c.name, "ok" if c.ok else "FAIL", c.detail, c.fix] for c in checks]
    return Table(["check", "status", "detail", "fix"], rows)
