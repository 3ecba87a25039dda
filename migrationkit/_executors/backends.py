"""``ClusterMigrationFactory``: the one registry of backends, by name.

A backend sends work out in one of two ways, and registers what it can do:

* **batches** — a :class:`ClusterMigrationBase` subclass: the coordinator reads the
  collection once and hands each batch to a worker (``asyncio``, ``threading``,
  ``multiprocessing``);
* **ranges** — a function building a :class:`RangeExecutor`: each worker reads and
  writes a whole ``_id`` range of its own (``multiprocessing``, ``dask``).

``multiprocessing`` can do both. Settings and the command line accept any name
registered here, including yours (``@ClusterMigrationFactory.register("mine")``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from migrationkit._errors import ConfigurationError
from migrationkit._executors.clusters.asyncio_cluster import ClusterMigrationAsyncio
from migrationkit._executors.clusters.base import ClusterMigrationBase
from migrationkit._executors.clusters.multiprocessing_cluster import ClusterMigrationMultiprocessing
from migrationkit._executors.clusters.threading_cluster import ClusterMigrationThreading
from migrationkit._executors.ranges import ProcessRangeExecutor, RangeExecutor
from migrationkit._registry import Registry

Registered = TypeVar("Registered", bound=Callable[..., Any])
Dispatch = Literal["batches", "ranges"]


@dataclass
class Backend:
    """What one backend name can do: a cluster class, a range-executor maker, or both."""

    name: str
    cluster: type[ClusterMigrationBase] | None = None
    range_executor: Callable[..., RangeExecutor] | None = None


class ClusterMigrationFactory:
    """``ClusterMigrationFactory.create("threading", 4, job=job)``; new backends ``register``."""

    _registry: ClassVar[Registry[Backend]] = Registry("backend")

    @classmethod
    def register(cls, name: str, *, ranges: bool = False) -> Callable[[Registered], Registered]:
        """Decorator: a :class:`ClusterMigrationBase` subclass, or (``ranges=True``) a
        callable ``(workers, **options) -> RangeExecutor``, available by ``name``."""

        def add(made: Registered) -> Registered:
            backend = cls._registry.get(name) if name in cls._registry else Backend(name)
            if ranges:
                backend.range_executor = made
            elif isinstance(made, type) and issubclass(made, ClusterMigrationBase):
                backend.cluster = made
            else:
                raise TypeError(f"{made!r} is not a ClusterMigrationBase")
            cls._registry.register(name, backend)
            return made

        return add

    @classmethod
    def available(cls, dispatch: Dispatch | None = None) -> list[str]:
        """Registered names; with ``dispatch``, those that can send work out that way."""
        backends = [cls._registry.get(name) for name in cls._registry.names()]
        return [
            backend.name
            for backend in backends
            if dispatch is None
            or (dispatch == "batches" and backend.cluster is not None)
            or (dispatch == "ranges" and backend.range_executor is not None)
        ]

    @classmethod
    def create(cls, implementation: str, size: int, **options: Any) -> ClusterMigrationBase:
        """A cluster of ``size`` workers; ``options`` go to the backend's constructor."""
        cluster = cls._registry.get(implementation).cluster
        if cluster is None:
            raise ConfigurationError(
                f"backend {implementation!r} dispatches _id ranges, not batches"
            )
        return cluster(size, **options)

    @classmethod
    def create_range_executor(cls, name: str, workers: int, **options: Any) -> RangeExecutor:
        """A range executor of ``workers`` workers (``options``: ``retries``, ``scheduler``…)."""
        make = cls._registry.get(name).range_executor
        if make is None:
            raise ConfigurationError(
                f"backend {name!r} cannot dispatch ranges; use one of "
                + ", ".join(cls.available("ranges"))
            )
        return make(workers, **options)


def _dask_executor(workers: int, **options: Any) -> RangeExecutor:
    try:
        from migrationkit._executors.dask import DaskRangeExecutor
    except ImportError as exc:
        if exc.name not in {"dask", "distributed"}:
            raise
        raise ConfigurationError(
            "the dask backend needs Dask's distributed scheduler: "
            "pip install 'migrationkit[distributed]'"
        ) from exc
    return DaskRangeExecutor(workers, **options)


for _cluster in (
    ClusterMigrationAsyncio,
    ClusterMigrationThreading,
    ClusterMigrationMultiprocessing,
):
    ClusterMigrationFactory.register(_cluster.name)(_cluster)
ClusterMigrationFactory.register("multiprocessing", ranges=True)(ProcessRangeExecutor)
ClusterMigrationFactory.register("dask", ranges=True)(_dask_executor)
