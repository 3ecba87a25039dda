"""Settings from ``MIGRATIONKIT_*`` environment variables (or keyword arguments).

Connection strings are :class:`~pydantic.SecretStr`: they print as ``**********``
and the helpers here give a redacted form for logs and reports.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from migrationkit.errors import ConfigurationError
from migrationkit.registry import Registry
from migrationkit.retry import RetryPolicy

Backend = Literal["asyncio", "threading", "multiprocessing", "dask"]
#: A row writer's name (``copy``, ``executemany``, ``insert``, or one registered in
#: :data:`migrationkit.writers.ROW_WRITERS`) or an import path, ``module:function``.
Writer = str
MongoDriver = Literal["motor", "pymongo"]
LogFormat = Literal["text", "json"]

#: Workers per CPU core, as the original project's ``CPU_CORES * multiplier``.
#: Writers spend most of their time waiting on PostgreSQL, so two per core keep
#: the server busy without drowning a small machine in context switches.
WORKERS_PER_CORE = 2

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^@/]*)@", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"(?P<key>password=)[^&\s]*", re.IGNORECASE)


def default_workers() -> int:
    """``os.cpu_count() * WORKERS_PER_CORE``, at least 2."""
    return max(2, (os.cpu_count() or 1) * WORKERS_PER_CORE)


def redact_uri(uri: str) -> str:
    """Hide the password in a URI or DSN, keep the user, host and database readable."""

    def _hide(match: re.Match[str]) -> str:
        user = match["userinfo"].split(":", 1)[0]
        return f"{match['scheme']}{user}:***@" if ":" in match["userinfo"] else match[0]

    return _PASSWORD_PARAM.sub(r"\g<key>***", _CREDENTIALS.sub(_hide, uri))


class Settings(BaseSettings):
    """Everything a migration needs; unset URIs mean "use the embedded servers"."""

    model_config = SettingsConfigDict(
        env_prefix="MIGRATIONKIT_", env_file=None, extra="forbid", validate_default=True
    )

    mongo_uri: SecretStr | None = None
    pg_dsn: SecretStr | None = None
    mongo_driver: MongoDriver = "motor"
    mongo_database: str = "migrationkit"
    mongo_collection: str = "users"
    pg_table: str = "users"
    batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    workers: int = Field(default_factory=default_workers, ge=1, le=256)
    queue_depth: int = Field(default=2, ge=1, le=64)
    retry_attempts: int = Field(default=8, ge=1, le=100)
    retry_base_delay_s: float = Field(default=0.2, gt=0, le=60)
    retry_max_delay_s: float = Field(default=5.0, gt=0, le=600)
    backend: Backend = "asyncio"
    writer: Writer = "copy"
    # Which worker gets the next batch: a name in ``migrationkit.dispatch.DISPATCHERS``
    # (``round-robin``, ``least-loaded``) or an import path, ``module:Class``.
    dispatch: str = "round-robin"
    # Watching a run (``migrate``): log lines as text or JSON, Prometheus metrics on a port.
    log_format: LogFormat = "text"
    metrics_port: int | None = Field(default=None, ge=0, le=65_535)
    metrics_host: str = "127.0.0.1"

    @field_validator("pg_table", "mongo_collection", "mongo_database")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value):
            raise ValueError("use letters, digits and underscores, starting with a letter")
        return value

    @field_validator("writer")
    @classmethod
    def _known_writer(cls, value: str) -> str:
        from migrationkit.writers import ROW_WRITERS

        return _registered(ROW_WRITERS, value)

    @field_validator("dispatch")
    @classmethod
    def _known_dispatcher(cls, value: str) -> str:
        from migrationkit.dispatch import DISPATCHERS

        return _registered(DISPATCHERS, value)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_attempts, self.retry_base_delay_s, self.retry_max_delay_s)

    def redacted(self) -> dict[str, object]:
        """The settings as a dict safe to log or print: passwords hidden."""
        data = self.model_dump()
        for key in ("mongo_uri", "pg_dsn"):
            secret = getattr(self, key)
            data[key] = redact_uri(secret.get_secret_value()) if secret else None
        return data


def _registered(registry: Registry[Any], name: str) -> str:
    """``name`` if ``registry`` knows it (or can import it); pydantic reports the error."""
    try:
        registry.get(name)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None
    return name
