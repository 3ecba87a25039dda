"""The three worker clusters behind one base class, and the factory that builds them."""

from migrationkit.clusters.asyncio_cluster import ClusterMigrationAsyncio
from migrationkit.clusters.base import ClusterMigrationBase
from migrationkit.clusters.factory import ClusterMigrationFactory
from migrationkit.clusters.multiprocessing_cluster import ClusterMigrationMultiprocessing
from migrationkit.clusters.threading_cluster import ClusterMigrationThreading
from migrationkit.clusters.worker import WorkerJob

__all__ = [
    "ClusterMigrationAsyncio",
    "ClusterMigrationBase",
    "ClusterMigrationFactory",
    "ClusterMigrationMultiprocessing",
    "ClusterMigrationThreading",
    "WorkerJob",
]
