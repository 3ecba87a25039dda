"""``LatencyProxy`` in front of a local echo server: delay, pipelining, cap, order, closing.

Timings assert the lower bound the proxy guarantees and an upper bound far from what a
wrong proxy would take, so that they hold on a busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import socket
import socketserver
import threading
import time
import warnings
from collections.abc import Iterator

import pytest

from migrationkit import Endpoints
from migrationkit.workshop.latency_proxy import (
    LatencyProxy,
    ProxiedEndpoints,
    proxied_uri,
    uri_address,
)

Address = tuple[str, int]
#: How long a test waits for bytes that should come before it calls the proxy broken.
PATIENCE_S = 10.0


class _Echo(socketserver.BaseRequestHandler):
    """Send every byte back; at the client's end of stream, end ours too."""

    def handle(self) -> None:
        self.server.started.release()  # type: ignore[attr-defined]
        while data := self.request.recv(65536):
            self.request.sendall(data)
        self.request.shutdown(socket.SHUT_WR)
        self.server.ended.release()  # type: ignore[attr-defined]


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        # Released once per connection that started, and that ended.
        self.started, self.ended = threading.Semaphore(0), threading.Semaphore(0)


@pytest.fixture
def echo_server() -> Iterator[_EchoServer]:
    server = _EchoServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def echo(echo_server: _EchoServer) -> Address:
    host, port = echo_server.server_address[:2]
    return str(host), int(port)


async def connect(proxy: LatencyProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*proxy.address)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionResetError):
        await writer.wait_closed()


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(PATIENCE_S):
        return await reader.read()


async def test_a_round_trip_takes_at_least_twice_the_delay(echo: Address) -> None:
    async with LatencyProxy(echo, delay_s=0.05) as proxy:
        reader, writer = await connect(proxy)
        started = time.perf_counter()
        writer.write(b"ping")
        async with asyncio.timeout(PATIENCE_S):
            assert await reader.readexactly(4) == b"ping"
        elapsed = time.perf_counter() - started
        await close(writer)
    assert elapsed >= 2 * 0.05 - 0.002


async def test_pipelined_messages_share_one_round_trip_instead_of_paying_one_each(
    echo: Address,
) -> None:
    delay, messages = 0.05, [bytes([65 + n]) * 65536 for n in range(20)]
    async with LatencyProxy(echo, delay_s=delay) as proxy:
        reader, writer = await connect(proxy)
        started = time.perf_counter()
        for message in messages:  # all sent before the first answer comes back
            writer.write(message)
        async with asyncio.timeout(PATIENCE_S):
            echoed = await reader.readexactly(sum(map(len, messages)))
        elapsed = time.perf_counter() - started
        await close(writer)
    assert echoed == b"".join(messages)
    # One round trip (0.1 s) plus moving 1.3 MB on loopback. A proxy that held each
    # chunk of up to 64 KiB for the delay in turn would take 20 x 0.05 s (1 s) or more.
    assert 2 * delay <= elapsed < 0.6


async def test_a_bandwidth_cap_makes_n_bytes_take_at_least_n_over_the_cap(
    echo: Address,
) -> None:
    cap, size = 1_000_000, 300_000
    async with LatencyProxy(echo, delay_s=0, bandwidth_bytes_per_s=cap) as proxy:
        reader, writer = await connect(proxy)
        started = time.perf_counter()
        writer.write(b"x" * size)
        async with asyncio.timeout(PATIENCE_S):
            await reader.readexactly(size)
        elapsed = time.perf_counter() - started
        await close(writer)
    # Each direction is capped: the echo could start at once, but not outrun the cap.
    assert elapsed >= size / cap


async def test_bytes_arrive_whole_and_in_order_however_they_are_chunked(echo: Address) -> None:
    chance = random.Random(14)
    payload = chance.randbytes(2_000_000)
    async with LatencyProxy(echo, delay_s=0.001) as proxy:
        reader, writer = await connect(proxy)

        async def send() -> None:
            position = 0
            while position < len(payload):
                size = chance.randint(1, 20_000)
                writer.write(payload[position : position + size])
                await writer.drain()
                position += size
            writer.write_eof()

        _, echoed = await asyncio.gather(send(), read_to_end(reader))
        await close(writer)
    assert echoed == payload


async def test_half_close_reaches_the_server_and_its_answer_still_comes_back(
    echo: Address,
) -> None:
    async with LatencyProxy(echo, delay_s=0.01) as proxy:
        reader, writer = await connect(proxy)
        writer.write(b"last words")
        writer.write_eof()  # the echo server answers, then ends only once it sees this
        answer = await read_to_end(reader)
        await close(writer)
    assert answer == b"last words"


async def test_stop_closes_the_clients_connections(echo: Address) -> None:
    proxy = LatencyProxy(echo, delay_s=0.01).start()
    try:
        reader, writer = await connect(proxy)
        writer.write(b"ping")
        await reader.readexactly(4)
    finally:
        await asyncio.to_thread(proxy.stop)
    try:
        rest = await read_to_end(reader)
    except ConnectionResetError:
        rest = b""
    await close(writer)
    assert rest == b""


async def test_stop_closes_the_connections_to_the_server(
    echo_server: _EchoServer, echo: Address
) -> None:
    proxy = LatencyProxy(echo, delay_s=0.01).start()
    try:
        reader, writer = await connect(proxy)
        writer.write(b"ping")
        await reader.readexactly(4)
    finally:
        await asyncio.to_thread(proxy.stop)
    await close(writer)
    assert await asyncio.to_thread(echo_server.ended.acquire, timeout=PATIENCE_S)


async def test_stop_releases_the_port_and_ends_the_thread(echo: Address) -> None:
    proxy = LatencyProxy(echo, delay_s=0).start()
    address = proxy.address
    await asyncio.to_thread(proxy.stop)
    assert not proxy.running
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*address)


def test_stop_with_bytes_in_flight_leaves_no_unclosed_transport_or_task(
    echo_server: _EchoServer, echo: Address, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with LatencyProxy(echo, delay_s=0.5) as proxy:
            clients = [socket.create_connection(proxy.address) for _ in range(3)]
            for client in clients:
                client.sendall(b"still on its way when the proxy stops")
            for _ in clients:  # the proxy has connected each of them to the server
                assert echo_server.started.acquire(timeout=PATIENCE_S)
            assert proxy.stats.bytes_to_target == 0  # still in the delay line
        for client in clients:
            client.close()
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records] == []


def test_it_serves_blocking_sockets_from_plain_code(echo: Address) -> None:
    with LatencyProxy(echo, delay_s=0.01) as proxy, socket.create_connection(proxy.address) as s:
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(PATIENCE_S)
        received = b""
        while data := s.recv(1024):
            received += data
    assert received == b"hello"


async def test_its_counters_count_connections_and_bytes_each_way(
    echo_server: _EchoServer, echo: Address
) -> None:
    async with LatencyProxy(echo, delay_s=0) as proxy:
        for _ in range(2):
            reader, writer = await connect(proxy)
            writer.write(b"12345")
            writer.write_eof()
            await read_to_end(reader)
            await close(writer)
            await asyncio.to_thread(echo_server.ended.acquire, timeout=PATIENCE_S)
        stats = proxy.stats
    assert (stats.connections, stats.bytes_to_target, stats.bytes_from_target) == (2, 10, 10)


# --- connection strings ---------------------------------------------------------------

PROXY: Address = ("127.0.0.1", 41000)


def test_a_proxied_dsn_keeps_user_password_database_and_options() -> None:
    dsn = "postgresql://mk:s3cr%40t@db.example.org:6543/sales?sslmode=disable&application_name=a"
    assert proxied_uri(dsn, PROXY) == (
        "postgresql://mk:s3cr%40t@127.0.0.1:41000/sales?sslmode=disable&application_name=a"
    )


def test_a_proxied_dsn_drops_the_host_and_port_options_that_would_bypass_the_proxy() -> None:
    dsn = "postgresql://mk@/sales?host=db.example.org&port=6543&connect_timeout=5"
    assert proxied_uri(dsn, PROXY) == "postgresql://mk@127.0.0.1:41000/sales?connect_timeout=5"


def test_a_proxied_mongo_uri_connects_directly_and_keeps_the_rest() -> None:
    uri = "mongodb://app:pw@h1:27017,h2:27018/shop?replicaSet=rs0&directConnection=false&w=1"
    assert proxied_uri(uri, PROXY) == (
        "mongodb://app:pw@127.0.0.1:41000/shop?replicaSet=rs0&w=1&directConnection=true"
    )


def test_a_mongo_uri_without_a_path_gets_one_before_its_options() -> None:
    assert proxied_uri("mongodb://h1", PROXY) == "mongodb://127.0.0.1:41000/?directConnection=true"


def test_an_ipv6_proxy_address_is_bracketed() -> None:
    assert proxied_uri("postgresql://u@h/db", ("::1", 5)) == "postgresql://u@[::1]:5/db"


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("mongodb://127.0.0.1:59707/?directConnection=true", ("127.0.0.1", 59707)),
        ("mongodb://u:p@mongo.example.org/db", ("mongo.example.org", 27017)),
        ("postgresql://u:p@db.example.org/db", ("db.example.org", 5432)),
        ("postgres://u@[::1]:6000/db", ("::1", 6000)),
        ("postgresql:///db?host=10.0.0.9&port=7000", ("10.0.0.9", 7000)),
    ],
)
def test_uri_address_is_the_host_and_port_the_driver_would_use(uri: str, address: Address) -> None:
    assert uri_address(uri) == address


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb+srv://app:hunter2@cluster.example.org/db",
        "postgresql://app:hun@ter2@db.example.org/db",
        "postgresql://app:hunter2@db.example.org:hunter2/db",
        "postgresql://app:hunter2@/db?host=/var/run/postgresql",
        "mongodb://app:hunter2@h1,h2/db",
        "host=db.example.org user=app password=hunter2",
        "mysql://app:hunter2@db.example.org/db",
    ],
)
def test_a_uri_it_cannot_proxy_is_refused_without_showing_the_password(
    uri: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError, match=r".") as refused:
        uri_address(uri)
    output = capsys.readouterr()
    assert "hunter2" not in str(refused.value) + output.out + output.err + caplog.text


def test_proxied_endpoints_hold_the_password_but_never_show_it(
    echo: Address, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = echo
    direct = Endpoints(
        mongo_uri=f"mongodb://{host}:{port}/?directConnection=true",
        pg_dsn=f"postgresql://mk:hunter2@{host}:{port}/migrationkit",
    )
    with ProxiedEndpoints(direct, pg_delay_s=0.001) as proxied:
        endpoints = proxied.endpoints
        print(proxied, endpoints)
        logging.getLogger("test").info("%s %s", proxied, endpoints)
    output = capsys.readouterr()
    assert endpoints.pg_dsn.startswith("postgresql://mk:hunter2@127.0.0.1:")
    assert "hunter2" not in output.out + output.err + caplog.text


def test_a_server_whose_delay_is_none_is_reached_directly(echo: Address) -> None:
    host, port = echo
    direct = Endpoints(
        mongo_uri=f"mongodb://{host}:{port}/?directConnection=true",
        pg_dsn=f"postgresql://mk@{host}:{port}/migrationkit",
    )
    with ProxiedEndpoints(direct, pg_delay_s=0.001, mongo_delay_s=None) as proxied:
        endpoints = proxied.endpoints
    assert endpoints.mongo_uri == direct.mongo_uri
    assert endpoints.pg_dsn != direct.pg_dsn
