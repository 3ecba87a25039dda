"""``ClusterMigrationFactory``: build a cluster by backend name from an open registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from migrationkit.clusters.asyncio_cluster import ClusterMigrationAsyncio
from migrationkit.clusters.base import ClusterMigrationBase
from migrationkit.clusters.multiprocessing_cluster import ClusterMigrationMultiprocessing
from migrationkit.clusters.threading_cluster import ClusterMigrationThreading
from migrationkit.registry import Registry

ClusterClass = TypeVar("ClusterClass", bound=type[ClusterMigrationBase])


class ClusterMigrationFactory:
    """``ClusterMigrationFactory.create("threading", 4, job=job)``; new backends ``register``."""

    _registry: ClassVar[Registry[type[ClusterMigrationBase]]] = Registry("backend")

    @classmethod
    def register(cls, name: str) -> Callable[[ClusterClass], ClusterClass]:
        """Class decorator: make a :class:`ClusterMigrationBase` subclass available by name."""

        def add(cluster_class: ClusterClass) -> ClusterClass:
            if not issubclass(cluster_class, ClusterMigrationBase):
                raise TypeError(f"{cluster_class!r} is not a ClusterMigrationBase")
            cls._registry.register(name, cluster_class)
            return cluster_class

        return add

    @classmethod
    def available(cls) -> list[str]:
        return cls._registry.names()

    @classmethod
    def create(cls, implementation: str, size: int, **options: Any) -> ClusterMigrationBase:
        """A cluster of ``size`` workers; ``options`` go to the backend's constructor."""
        return cls._registry.get(implementation)(size, **options)


for _cluster in (
    ClusterMigrationAsyncio,
    ClusterMigrationThreading,
    ClusterMigrationMultiprocessing,
):
    ClusterMigrationFactory.register(_cluster.name)(_cluster)
