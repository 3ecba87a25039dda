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

from migrationkit._errors import ConfigurationError
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.dispatch import DISPATCHERS
from migrationkit._observe.logs import LogFormat
from migrationkit._redact import redact_uri
from migrationkit._registry import Registry
from migrationkit._retry import RetryPolicy
from migrationkit._target.writers import ROW_WRITERS

#: A backend's name: one registered in :class:`ClusterMigrationFactory` (``asyncio``,
#: ``threading``, ``multiprocessing``, ``dask``, or yours).
Backend = str
#: A row writer's name (``copy``, ``executemany``, ``insert``, or one registered in
#: :data:`migrationkit._target.writers.ROW_WRITERS`) or an import path, ``module:function``.
Writer = str
MongoDriver = Literal["motor", "pymongo"]

#: Workers per CPU core, as the original project's ``CPU_CORES * multiplier``.
#: Writers spend most of their time waiting on PostgreSQL, so two per core keep
#: the server busy without drowning a small machine in context switches.
WORKERS_PER_CORE = 2

#: A batch closes at this many bytes of BSON if ``batch_size`` documents come later.
#: 8 MiB: users-like documents (~150 B) still fill 10,000-document batches (reading
#: them undecoded costs ~2.4 µs a document; 0 turns it off), and a COPY of 8 MiB
#: already costs far more than a batch's fixed overhead. With the default queues
#: (``workers x (queue_depth + 1) + 1`` batches alive: 13 on 2 cores, 49 on 8) big
#: documents hold at most ~100-400 MiB of BSON. One document bigger than this (up to
#: MongoDB's 16 MiB) still passes, alone in its batch.
DEFAULT_BATCH_BYTES = 8 * 1024 * 1024


def plain_identifier(value: str) -> str:
    """``value`` if it is a plain name (a table, collection or database); else ValueError."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value):
        raise ValueError("use letters, digits and underscores, starting with a letter")
    return value


def default_workers() -> int:
    """``os.cpu_count() * WORKERS_PER_CORE``, at least 2."""
    return max(2, (os.cpu_count() or 1) * WORKERS_PER_CORE)


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
    # 0: no byte limit (the driver decodes; for collections known to hold small documents).
    batch_bytes: int = Field(default=DEFAULT_BATCH_BYTES, ge=0, le=1024 * 1024 * 1024)
    workers: int = Field(default_factory=default_workers, ge=1, le=256)
    queue_depth: int = Field(default=2, ge=1, le=64)
    retry_attempts: int = Field(default=8, ge=1, le=100)
    retry_base_delay_s: float = Field(default=0.2, gt=0, le=60)
    retry_max_delay_s: float = Field(default=5.0, gt=0, le=600)
    backend: Backend = "asyncio"
    writer: Writer = "copy"
    # Which worker gets the next batch: a name in ``migrationkit._executors.dispatch.DISPATCHERS``
    # (``round-robin``, ``least-loaded``) or an import path, ``module:Class``.
    dispatch: str = "round-robin"
    # Watching a run (``migrate``): log lines as text or JSON, Prometheus metrics on a port.
    log_format: LogFormat = "text"
    metrics_port: int | None = Field(default=None, ge=0, le=65_535)
    metrics_host: str = "127.0.0.1"
    # How the collection becomes tables: "users" (the built-in mapping), "infer", or the
    # path of a TOML file of [mappings.<collection>] tables; None: the config file's
    # [mappings.<collection>], else "users" for a collection called users, else "infer"
    # (:func:`migrationkit._mapping.files.resolve_mapping`).
    mapping: str | None = None

    @field_validator("pg_table", "mongo_collection", "mongo_database")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        return plain_identifier(value)

    @field_validator("mapping")
    @classmethod
    def _mapping_named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError('use "users", "infer" or the path of a mapping file')
        return value

    @field_validator("writer")
    @classmethod
    def _known_writer(cls, value: str) -> str:
        return _registered(ROW_WRITERS, value)

    @field_validator("dispatch")
    @classmethod
    def _known_dispatcher(cls, value: str) -> str:
        return _registered(DISPATCHERS, value)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in ClusterMigrationFactory.available():
            raise ValueError(
                f"unknown backend {value!r}; choose one of "
                + ", ".join(ClusterMigrationFactory.available())
            )
        return value

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
