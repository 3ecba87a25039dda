"""The ``dask`` backend: a private local cluster by default, or the workers at an address.

The migration scenarios every range executor must pass are in ``test_ranged.py``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from migrationkit import ServerUnavailableError, UserMongoRepository
from migrationkit._executors.backends import ClusterMigrationFactory
from migrationkit._target.table import UserPostgresRepository
from migrationkit.workshop.seeding import seed_users
from tests.integration.test_faults import assert_target_equals_source
from tests.integration.test_ranged import migrate_ranges

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

pytestmark = pytest.mark.integration


@pytest.fixture
async def their_cluster() -> AsyncIterator[Any]:
    """A cluster someone else runs: three in-process workers behind a scheduler address."""
    async with distributed.LocalCluster(
        n_workers=3,
        threads_per_worker=1,
        processes=False,
        dashboard_address=None,
        asynchronous=True,
    ) as cluster:
        yield cluster


async def test_by_default_a_private_cluster_of_processes_listens_on_loopback_only() -> None:
    from distributed.comm.utils import get_tcp_server_addresses

    async with ClusterMigrationFactory.create_range_executor("dask", 2) as executor:
        info = executor.client.scheduler_info()
        pids = await executor.client.run(os.getpid)
        assert info["address"].startswith("tcp://127.0.0.1:")
        assert all(address.startswith("tcp://127.0.0.1:") for address in info["workers"])
        assert len(pids) == 2
        assert os.getpid() not in pids.values()
        http = get_tcp_server_addresses(executor._cluster.scheduler.http_server)
        assert {host for host, _port in http} == {"127.0.0.1"}  # dashboard, metrics


async def test_the_dask_backend_by_name_migrates_every_user_exactly(
    make_settings: Any, source: UserMongoRepository, target: UserPostgresRepository
) -> None:
    await seed_users(source, 2_000)
    report = await migrate_ranges(make_settings(batch_size=250), executor="dask", partitions=4)
    assert (report.backend, report.workers) == ("dask", 2)
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (2_000, 2_000, 0)
    await assert_target_equals_source(source, target)


@pytest.mark.parametrize("given_as", ["argument", "dask config"])
async def test_a_scheduler_address_uses_the_workers_already_there_and_leaves_them_running(
    make_settings: Any,
    source: UserMongoRepository,
    target: UserPostgresRepository,
    their_cluster: Any,
    given_as: str,
) -> None:
    await seed_users(source, 1_000)
    address = their_cluster.scheduler_address
    settings = make_settings(workers=2)  # ignored: the cluster has the workers it has
    if given_as == "argument":
        report = await migrate_ranges(settings, executor="dask", scheduler=address)
    else:  # what DASK_SCHEDULER_ADDRESS sets
        with dask.config.set({"scheduler-address": address}):
            report = await migrate_ranges(settings, executor="dask")
    assert report.workers == 3
    assert report.rows_written == 1_000
    await assert_target_equals_source(source, target)
    assert len(their_cluster.scheduler.workers) == 3


async def test_an_unreachable_scheduler_is_reported_with_its_address() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    executor = ClusterMigrationFactory.create_range_executor(
        "dask", 2, scheduler=f"tcp://127.0.0.1:{port}", connect_timeout_s=1
    )
    with pytest.raises(ServerUnavailableError, match=f"tcp://127.0.0.1:{port}"):
        async with executor:
            pass
