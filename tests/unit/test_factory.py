import pytest

from migrationkit._errors import ConfigurationError
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._executors.clusters.asyncio_cluster import ClusterMigrationAsyncio
from migrationkit._executors.clusters.threading_cluster import ClusterMigrationThreading
from tests.unit import fakes

JOB = fakes.job()


def test_the_three_backends_are_registered_with_asyncio_first() -> None:
    assert ClusterMigrationFactory.available()[:3] == ["asyncio", "threading", "multiprocessing"]


def test_create_builds_the_named_backend_with_its_size() -> None:
    cluster = ClusterMigrationFactory.create("threading", 3, job=JOB, queue_depth=4)
    assert isinstance(cluster, ClusterMigrationThreading)
    assert (cluster.size, cluster.queue_depth) == (3, 4)


def test_an_unknown_backend_is_a_configuration_error_listing_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown backend 'fibers'.*asyncio"):
        ClusterMigrationFactory.create("fibers", 2, job=JOB)


def test_a_new_backend_can_join_the_registry() -> None:
    @ClusterMigrationFactory.register("tracing-asyncio")
    class Tracing(ClusterMigrationAsyncio):
        name = "tracing-asyncio"

    try:
        assert isinstance(ClusterMigrationFactory.create("tracing-asyncio", 1, job=JOB), Tracing)
    finally:
        ClusterMigrationFactory._registry.unregister("tracing-asyncio")


def test_only_cluster_classes_can_register() -> None:
    with pytest.raises(TypeError):
        ClusterMigrationFactory.register("nope")(dict)  # type: ignore[type-var]
