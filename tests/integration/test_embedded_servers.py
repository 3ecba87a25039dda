"""Embedded servers for real: start, reuse, stop, restart with the data, pgserver's binaries."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pymongo import MongoClient, monitoring

from migrationkit._errors import ServerUnavailableError
from migrationkit._servers.embedded import (
    PG_BINDIR_ENV,
    EmbeddedServers,
    Endpoints,
    find_secantusd,
    pgserver_bindir,
    socket_dir_for,
)

pytestmark = pytest.mark.integration


def _secantusd_installed() -> bool:
    try:
        find_secantusd()
    except ServerUnavailableError:
        return False
    return True


if not _secantusd_installed():
    pytest.skip("needs pip install 'migrationkit[embedded]'", allow_module_level=True)


def _alive(pid: int) -> bool:
    """A zombie is gone too: this container's PID 1 does not reap orphans."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """Live direct children of ``pid`` (the postgres backends of a postmaster)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found


def _pids(servers: EmbeddedServers) -> dict[str, int | None]:
    return {status.name: status.pid for status in servers.status()}


def _sql(dsn: str, query: str) -> object:
    async def run() -> object:
        connection = await asyncpg.connect(dsn)
        try:
            return await connection.fetchval(query)
        finally:
            await connection.close()

    return asyncio.run(run())


def _mongo(endpoints: Endpoints) -> MongoClient[dict[str, object]]:
    return MongoClient(endpoints.mongo_uri, serverSelectionTimeoutMS=5000)


def _make_home(*parts: str) -> Path:
    home = Path(tempfile.mkdtemp(dir="/tmp", prefix="mk-")).joinpath(*parts)
    home.mkdir(parents=True, exist_ok=True)
    return home


def _remove(servers: EmbeddedServers, top: Path) -> None:
    servers.stop()
    socket_dir = socket_dir_for(servers.home)
    if not socket_dir.is_relative_to(servers.home):
        shutil.rmtree(socket_dir, ignore_errors=True)
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedServers]:
    """Servers in a fresh short home, always stopped and removed afterwards."""
    monkeypatch.delenv(PG_BINDIR_ENV, raising=False)
    home = _make_home()
    embedded = EmbeddedServers(home)
    try:
        yield embedded
    finally:
        _remove(embedded, home)


def test_endpoints_before_start_say_how_to_start(servers: EmbeddedServers) -> None:
    with pytest.raises(ServerUnavailableError, match="migrationkit servers start"):
        servers.endpoints()


def test_start_gives_working_endpoints(servers: EmbeddedServers) -> None:
    endpoints = servers.start()

    assert endpoints.mongo_uri.startswith("mongodb://127.0.0.1:")
    assert endpoints.pg_dsn.startswith("postgresql://migrationkit:")
    with _mongo(endpoints) as client:
        assert client.admin.command("ping")["ok"] == 1
        client.kit.docs.insert_one({"_id": 1, "name": "Ada"})
        assert client.kit.docs.find_one({"_id": 1}) == {"_id": 1, "name": "Ada"}
    assert _sql(endpoints.pg_dsn, "SELECT 1") == 1
    assert _sql(endpoints.pg_dsn, "SELECT current_database()") == "migrationkit"
    assert servers.endpoints() == endpoints

    password = endpoints.pg_dsn.split(":")[2].split("@")[0]
    for status in servers.status():
        assert status.running, status
        assert status.pid
        assert _alive(status.pid)
        assert password not in status.detail
    assert (servers.home / "postgres.password").stat().st_mode & 0o777 == 0o600


def test_writes_through_the_embedded_uri_are_not_retryable(servers: EmbeddedServers) -> None:
    # SecantusDB scans its record of retryable writes at every write: writes fell from
    # 937/s to 69/s over 12,000 of them (docs/change_streams.md). A write that carries no
    # transaction number is never recorded.
    sent: list[dict[str, object]] = []

    class Commands(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name in {"insert", "update", "delete"}:
                sent.append(dict(event.command))

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

        def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    endpoints = servers.start()
    with MongoClient(endpoints.mongo_uri, event_listeners=[Commands()]) as client:
        client.kit.writes.insert_one({"_id": 1})
        client.kit.writes.update_one({"_id": 1}, {"$set": {"v": 2}})
        client.kit.writes.delete_one({"_id": 1})
    assert [next(iter(command)) for command in sent] == ["insert", "update", "delete"]
    assert not [command for command in sent if "txnNumber" in command]


def test_start_twice_reuses_the_servers(servers: EmbeddedServers) -> None:
    first = servers.start()
    pids = _pids(servers)
    assert servers.start() == first
    assert _pids(servers) == pids


def test_stop_ends_every_process_and_restart_keeps_the_data(servers: EmbeddedServers) -> None:
    endpoints = servers.start()
    with _mongo(endpoints) as client:
        client.kit.docs.insert_one({"_id": "kept", "n": 42})
    _sql(endpoints.pg_dsn, "CREATE TABLE kept AS SELECT 42 AS n")
    pids = _pids(servers)
    postmaster = pids["postgresql"]
    assert postmaster is not None
    backends = _children(postmaster)
    assert backends  # checkpointer, walwriter, ...

    servers.stop()

    for pid in [*pids.values(), *backends]:
        assert pid is not None
        assert not _alive(pid), f"pid {pid} survived stop()"
    assert not any(status.running for status in servers.status())
    with pytest.raises(ServerUnavailableError):
        servers.endpoints()
    servers.stop()  # idempotent

    again = servers.start()
    with _mongo(again) as client:
        assert client.kit.docs.find_one({"_id": "kept"}) == {"_id": "kept", "n": 42}
    assert _sql(again.pg_dsn, "SELECT n FROM kept") == 42
    assert again.pg_dsn == endpoints.pg_dsn  # same port and password


def test_taken_port_on_restart_moves_to_a_free_one(
    servers: EmbeddedServers, caplog: pytest.LogCaptureFixture
) -> None:
    servers.start()
    old_port = {status.name: status.port for status in servers.status()}["postgresql"]
    assert old_port is not None
    servers.stop()
    with socket.socket() as squatter, caplog.at_level(logging.WARNING):
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        endpoints = servers.start()
    assert f":{old_port}/" not in endpoints.pg_dsn
    assert f"port {old_port} is taken" in caplog.text
    assert _sql(endpoints.pg_dsn, "SELECT 1") == 1


def test_postgres_that_cannot_start_reports_its_log(servers: EmbeddedServers) -> None:
    servers.start()
    servers.stop()
    with (servers.home / "postgres" / "postgresql.conf").open("a") as conf:
        conf.write("no_such_setting = 1\n")
    with pytest.raises(ServerUnavailableError, match="no_such_setting"):
        servers.start()


def test_long_home_puts_the_socket_in_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PG_BINDIR_ENV, raising=False)
    top = _make_home()
    embedded = EmbeddedServers(top / ("h" * 100))
    try:
        assert not socket_dir_for(embedded.home).is_relative_to(embedded.home)
        endpoints = embedded.start()
        assert _sql(endpoints.pg_dsn, "SELECT 1") == 1
    finally:
        _remove(embedded, top)


def test_pgserver_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = pgserver_bindir()
    if bundled is None:
        pytest.skip("pgserver is not installed")
    monkeypatch.setenv(PG_BINDIR_ENV, str(bundled))
    home = _make_home()
    embedded = EmbeddedServers(home)
    try:
        endpoints = embedded.start()
        version = _sql(endpoints.pg_dsn, "SHOW server_version")
        assert isinstance(version, str)
        assert version.startswith("16")
        postgres = embedded.status()[1]
        assert postgres.running
        assert "PostgreSQL 16" in postgres.detail
        assert str(bundled) in postgres.detail
    finally:
        _remove(embedded, home)
