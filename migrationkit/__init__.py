"""migrationkit: move MongoDB collections into PostgreSQL, fast and checked.

The public API is what ``__all__`` lists; every module whose name starts with ``_``
is private and may change. The workshop (lessons, exercises, widgets, plots, the
benchmark, seeding) is the public subpackage :mod:`migrationkit.workshop`.

Running a migration::

    settings = Settings(mongo_uri=..., pg_dsn=..., backend="threading")
    report = await migrate(settings)                 # or run_migration(settings)
    async with Migration(settings) as run:           # the same, with the pieces exposed
        report = await run.migrate(resume=True)
    assert (await verify(settings)).ok
"""

from migrationkit._errors import (
    ChangeHistoryLostError,
    ConfigurationError,
    CutoverTimeoutError,
    DocumentsSetAsideError,
    IntegrityCheckError,
    MigrationKitError,
    ServerUnavailableError,
    TargetBusyError,
    TransientFaultError,
    WorkerCrashedError,
    WorkerError,
)
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.clusters.asyncio_cluster import ClusterMigrationAsyncio
from migrationkit._executors.clusters.base import ClusterMigrationBase
from migrationkit._executors.clusters.multiprocessing_cluster import ClusterMigrationMultiprocessing
from migrationkit._executors.clusters.threading_cluster import ClusterMigrationThreading
from migrationkit._executors.dispatch import DISPATCHERS, Dispatcher, LeastLoaded, RoundRobin
from migrationkit._executors.ranges import RangeExecutor, RangeFailedError
from migrationkit._executors.stats import WorkerStats
from migrationkit._executors.worker import Sink, SinkOpener, WorkerJob
from migrationkit._mapping.spec import (
    USERS,
    ChildTable,
    Column,
    MappingError,
    TableMapping,
    users_mapping,
)
from migrationkit._normalize.rows import (
    Normalized,
    PreparedBatch,
    Rejection,
    Transform,
    User,
    document_to_row,
    mongo_key,
)
from migrationkit._normalize.transforms import TRANSFORMS
from migrationkit._observe.logs import configure_logging, run_scope
from migrationkit._observe.observe import NullObserver, Observer
from migrationkit._observe.progress import CountingProgress, NullProgress, Progress, TqdmProgress
from migrationkit._redact import redact_uri
from migrationkit._run.cutover import CutoverReport, cutover
from migrationkit._run.follow import FollowOptions, FollowStatus
from migrationkit._run.migration import Migration, RangeOptions, migrate, run_migration
from migrationkit._run.report import MigrationReport
from migrationkit._run.verify import VerifyReport, run_verify, verify
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.profiles import resolve_settings
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.repository import UserMongoRepository
from migrationkit._target.connection import PostgresConnectionHandler, ReconnectingConnection
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.loader import BatchLoader, PostgresTarget, postgres_sink
from migrationkit._target.table import TableRepository, UserPostgresRepository
from migrationkit._target.writers import ROW_WRITERS, RowWriter

__version__ = "0.1.0"

#: Public names whose modules need an optional extra, imported on first use.
_OPTIONAL = {
    "PrometheusObserver": "migrationkit._observe.metrics",  # the "metrics" extra
    "tracing_observer": "migrationkit._observe.tracing",  # the "tracing" extra
}


def __getattr__(name: str) -> object:
    if name in _OPTIONAL:
        import importlib

        return getattr(importlib.import_module(_OPTIONAL[name]), name)
    raise AttributeError(f"module 'migrationkit' has no attribute {name!r}")


__all__ = [
    "DISPATCHERS",
    "ROW_WRITERS",
    "TRANSFORMS",
    "USERS",
    "BatchLoader",
    "ChangeHistoryLostError",
    "ChildTable",
    "ClusterMigrationAsyncio",
    "ClusterMigrationBase",
    "ClusterMigrationFactory",
    "ClusterMigrationMultiprocessing",
    "ClusterMigrationThreading",
    "Column",
    "ConfigurationError",
    "CountingProgress",
    "CutoverReport",
    "CutoverTimeoutError",
    "DeadLetterRepository",
    "Dispatcher",
    "DocumentsSetAsideError",
    "Endpoints",
    "FollowOptions",
    "FollowStatus",
    "IntegrityCheckError",
    "LeastLoaded",
    "MappingError",
    "Migration",
    "MigrationKitError",
    "MigrationReport",
    "MongoConnectionHandler",
    "Normalized",
    "NullObserver",
    "NullProgress",
    "Observer",
    "PostgresConnectionHandler",
    "PostgresTarget",
    "PreparedBatch",
    "Progress",
    "PrometheusObserver",
    "RangeExecutor",
    "RangeFailedError",
    "RangeOptions",
    "ReconnectingConnection",
    "Rejection",
    "RoundRobin",
    "RowWriter",
    "ServerUnavailableError",
    "Settings",
    "Sink",
    "SinkOpener",
    "TableMapping",
    "TableRepository",
    "TargetBusyError",
    "TqdmProgress",
    "Transform",
    "TransientFaultError",
    "User",
    "UserMongoRepository",
    "UserPostgresRepository",
    "VerifyReport",
    "WorkerCrashedError",
    "WorkerError",
    "WorkerJob",
    "WorkerStats",
    "__version__",
    "configure_logging",
    "cutover",
    "document_to_row",
    "migrate",
    "mongo_key",
    "postgres_sink",
    "redact_uri",
    "resolve_endpoints",
    "resolve_settings",
    "run_migration",
    "run_scope",
    "run_verify",
    "tracing_observer",
    "users_mapping",
    "verify",
]
