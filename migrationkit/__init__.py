"""migrationkit: move a MongoDB users collection into PostgreSQL, fast and checked.

The public API is what ``__all__`` lists; everything else may change.
"""

from migrationkit.clusters import (
    ClusterMigrationAsyncio,
    ClusterMigrationBase,
    ClusterMigrationFactory,
    ClusterMigrationMultiprocessing,
    ClusterMigrationThreading,
    WorkerJob,
)
from migrationkit.connections import MongoConnectionHandler, PostgresConnectionHandler
from migrationkit.dispatch import Dispatcher, LeastLoaded, RoundRobin
from migrationkit.endpoints import Endpoints, resolve_endpoints
from migrationkit.errors import (
    ChangeHistoryLostError,
    ConfigurationError,
    IntegrityCheckError,
    MigrationKitError,
    ServerUnavailableError,
    WorkerCrashedError,
    WorkerError,
)
from migrationkit.migration import migrate, run_migration
from migrationkit.models import User, document_to_row, mongo_key
from migrationkit.observe import NullObserver, Observer
from migrationkit.progress import CountingProgress, NullProgress, Progress, TqdmProgress
from migrationkit.ranged import RangeExecutorFactory, RangeFailedError, migrate_ranges
from migrationkit.report import MigrationReport, WorkerStats
from migrationkit.repositories import UserMongoRepository, UserPostgresRepository
from migrationkit.seeding import UserFactory, seed_users
from migrationkit.settings import Settings, redact_uri

__version__ = "0.1.0"

__all__ = [
    "ChangeHistoryLostError",
    "ClusterMigrationAsyncio",
    "ClusterMigrationBase",
    "ClusterMigrationFactory",
    "ClusterMigrationMultiprocessing",
    "ClusterMigrationThreading",
    "ConfigurationError",
    "CountingProgress",
    "Dispatcher",
    "Endpoints",
    "IntegrityCheckError",
    "LeastLoaded",
    "MigrationKitError",
    "MigrationReport",
    "MongoConnectionHandler",
    "NullObserver",
    "NullProgress",
    "Observer",
    "PostgresConnectionHandler",
    "Progress",
    "RangeExecutorFactory",
    "RangeFailedError",
    "RoundRobin",
    "ServerUnavailableError",
    "Settings",
    "TqdmProgress",
    "User",
    "UserFactory",
    "UserMongoRepository",
    "UserPostgresRepository",
    "WorkerCrashedError",
    "WorkerError",
    "WorkerJob",
    "WorkerStats",
    "__version__",
    "document_to_row",
    "migrate",
    "migrate_ranges",
    "mongo_key",
    "redact_uri",
    "resolve_endpoints",
    "run_migration",
    "seed_users",
]
