"""A loopback TCP proxy that adds network latency and caps bandwidth, for the lessons.

The embedded servers answer over loopback in microseconds, so a worker hardly ever
waits on the network and concurrency has no waits to overlap. Put a
:class:`LatencyProxy` between the workers and a server and every round trip costs at
least ``2 * delay_s``, as it would between two machines::

    client ─▶ receive, stamp due time ─▶ delay line ─▶ send when due ─▶ server
    client ◀─ send when due ◀─ delay line ◀─ receive, stamp due time ◀─ server

Each direction of each connection is a delay line: bytes are stamped when they arrive
and leave, in order, at ``arrival + delay_s`` (later if the bandwidth cap says so).
The receiving side keeps reading meanwhile, so a client that pipelines keeps its
throughput: the delay is a propagation delay, not a pause per chunk in series.

The proxy runs its own event loop in a daemon thread, so it serves blocking code,
notebooks, threads and spawned process workers alike. Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from migrationkit._servers.endpoints import Endpoints

log = logging.getLogger(__name__)

#: The most one read takes from a socket.
CHUNK_BYTES = 64 * 1024
#: What one direction of a connection holds in its delay line before it stops reading
#: (TCP then slows the sender down): bounds memory, and throughput to this / delay.
BUFFER_BYTES = 4 * 1024 * 1024
#: Under a bandwidth cap, chunks are cut so that none takes longer than this to send.
SLICE_S = 0.002
#: How long ``start()`` waits for the proxy's thread to listen.
START_TIMEOUT_S = 10.0

Address = tuple[str, int]


@dataclass(frozen=True)
class ProxyStats:
    """What went through a proxy: connections accepted, bytes delivered each way."""

    connections: int
    open_connections: int
    bytes_to_target: int
    bytes_from_target: int


class _Link:
    """When bytes arriving now may leave: after the cap's sending time, then the delay.

    The cap is a token bucket one slice deep: bytes wait for the bytes before them to
    finish sending at ``rate`` bytes/s, so N bytes take at least N / rate.
    """

    def __init__(self, delay_s: float, rate: float | None) -> None:
        self._delay_s, self._rate = delay_s, rate
        self._sent_at = 0.0  # when the bytes before have finished sending

    @property
    def slice_bytes(self) -> int:
        return CHUNK_BYTES if self._rate is None else max(256, int(self._rate * SLICE_S))

    def due(self, now: float, size: int) -> float:
        if self._rate is None:
            return now + self._delay_s
        self._sent_at = max(now, self._sent_at) + size / self._rate
        return self._sent_at + self._delay_s


class _DelayLine:
    """One direction of one connection: chunks in arrival order, each with its due time."""

    _END = b""  # a read never returns b"" but at the end of the stream

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._chunks: deque[tuple[float, bytes]] = deque()
        self._held = 0
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    async def put(self, data: bytes) -> None:
        """Stamp ``data`` now; then, if the line holds too much, wait for room."""
        now = asyncio.get_running_loop().time()
        size = self._link.slice_bytes
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            self._chunks.append((self._link.due(now, len(piece)), piece))
        self._held += len(data)
        self._arrived.set()
        if self._held >= BUFFER_BYTES:
            self._room.clear()
            await self._room.wait()

    def put_end(self) -> None:
        self._chunks.append((self._link.due(asyncio.get_running_loop().time(), 0), self._END))
        self._arrived.set()

    async def get(self) -> bytes | None:
        """Every byte due by the time the first is due; ``None`` at the end of the stream."""
        loop = asyncio.get_running_loop()
        while not self._chunks:
            self._arrived.clear()
            await self._arrived.wait()
        due = self._chunks[0][0]
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        # The loop may wake a timer a clock tick early: the head is due by definition.
        now, parts = max(loop.time(), due), []
        while self._chunks and self._chunks[0][0] <= now and self._chunks[0][1]:
            parts.append(self._chunks.popleft()[1])
        if not parts:
            return None  # the head is the end of the stream
        data = b"".join(parts)
        self._held -= len(data)
        if self._held < BUFFER_BYTES:
            self._room.set()
        return data


class _Started:
    """``with`` / ``async with`` for anything with ``start()`` and ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


class LatencyProxy(_Started):
    """Forward TCP connections to ``target``, ``delay_s`` late in each direction.

    ``bandwidth_bytes_per_s`` caps each direction of each connection. Use it as a
    context manager (``with`` or ``async with``), or call :meth:`start` and
    :meth:`stop`; clients connect to :attr:`address`.
    """

    def __init__(
        self,
        target: Address,
        *,
        delay_s: float,
        bandwidth_bytes_per_s: float | None = None,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, not {delay_s}")
        if bandwidth_bytes_per_s is not None and bandwidth_bytes_per_s <= 0:
            raise ValueError(f"bandwidth_bytes_per_s must be > 0, not {bandwidth_bytes_per_s}")
        self.target = target
        self.delay_s = delay_s
        self.bandwidth_bytes_per_s = bandwidth_bytes_per_s
        self.listen_host, self._listen_port = listen_host, listen_port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._listening = threading.Event()
        self._startup_error: OSError | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # the loop only holds tasks weakly
        self._connections = self._open_connections = 0
        self._bytes_to_target = self._bytes_from_target = 0

    def __repr__(self) -> str:
        listen = f"{self.listen_host}:{self._port}" if self._port else "not started"
        cap = f", cap {self.bandwidth_bytes_per_s:,.0f} B/s" if self.bandwidth_bytes_per_s else ""
        target = f"{self.target[0]}:{self.target[1]}"
        return f"LatencyProxy({listen} -> {target}, delay {self.delay_s * 1e3:g} ms{cap})"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not started: call start() or use it in `with`")
        return self._port

    @property
    def address(self) -> Address:
        return self.listen_host, self.port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> ProxyStats:
        return ProxyStats(
            connections=self._connections,
            open_connections=self._open_connections,
            bytes_to_target=self._bytes_to_target,
            bytes_from_target=self._bytes_from_target,
        )

    def start(self) -> Self:
        """Listen (in a daemon thread); returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        self._listening.clear()
        self._startup_error = None
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name="latency-proxy", daemon=True
        )
        self._thread.start()
        if not self._listening.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the proxy did not listen within {START_TIMEOUT_S} s")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop listening, close every connection, end the thread. Pending bytes are lost."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop has just ended on its own
                loop.call_soon_threadsafe(stopping.set)
        thread.join()
        self._thread = self._loop = self._stopping = None
        self._port = None

    async def _serve(self) -> None:
        """The thread's main coroutine: listen until :meth:`stop`, then close everything."""
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._accept, self.listen_host, self._listen_port, limit=CHUNK_BYTES
            )
        except OSError as exc:
            self._startup_error = exc
            self._listening.set()
            return
        self._port = server.sockets[0].getsockname()[1]
        self._listening.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            await self._close_everything()
            await server.wait_closed()

    async def _close_everything(self) -> None:
        while self._tasks:  # a connection accepted meanwhile adds a task: go round again
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await _close(list(self._writers), abort=True)
        self._writers.clear()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: the writer is ours before any task runs,
        # so stop() closes it even if the connection's task never started.
        self._writers.add(writer)
        task = asyncio.get_running_loop().create_task(self._forward(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._forwarded)

    def _forwarded(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("the latency proxy dropped a connection", exc_info=error)

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        writers = [client_writer]
        clean = opened = False
        try:
            target_reader, target_writer = await asyncio.open_connection(
                *self.target, limit=CHUNK_BYTES
            )
            writers.append(target_writer)
            self._writers.add(target_writer)
            self._connections += 1
            self._open_connections += 1
            opened = True
            async with asyncio.TaskGroup() as directions:
                directions.create_task(
                    self._carry(client_reader, target_writer, self._count_to_target)
                )
                directions.create_task(
                    self._carry(target_reader, client_writer, self._count_from_target)
                )
            clean = True
        except* OSError:  # refused, reset or broken on either side: drop both sides
            pass
        finally:
            await _close(writers, abort=not clean)
            self._writers.difference_update(writers)
            self._open_connections -= opened

    async def _carry(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        count: Callable[[int], None],
    ) -> None:
        """One direction: read as bytes come, deliver them when due, pass the end on."""
        line = _DelayLine(_Link(self.delay_s, self.bandwidth_bytes_per_s))

        async def receive() -> None:
            while data := await reader.read(CHUNK_BYTES):
                await line.put(data)
            line.put_end()

        async def deliver() -> None:
            while (data := await line.get()) is not None:
                writer.write(data)
                await writer.drain()
                count(len(data))
            if writer.can_write_eof():
                writer.write_eof()  # half-close: the other side may still answer

        async with asyncio.TaskGroup() as both:
            both.create_task(receive())
            both.create_task(deliver())

    def _count_to_target(self, size: int) -> None:
        self._bytes_to_target += size

    def _count_from_target(self, size: int) -> None:
        self._bytes_from_target += size


async def _close(writers: list[asyncio.StreamWriter], *, abort: bool) -> None:
    for writer in writers:
        if abort:
            writer.transport.abort()
        else:
            writer.close()
    # Shielded: a task cancelled while it waits here must not cancel the writers' close
    # futures, which stop() waits on again.
    await asyncio.shield(asyncio.gather(*(_closed(writer) for writer in writers)))


async def _closed(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        await writer.wait_closed()


# --- connection strings ---------------------------------------------------------------

_DEFAULT_PORTS = {"mongodb": 27017, "postgresql": 5432, "postgres": 5432}
# scheme://[userinfo@]hosts[/path][?query], as redact_uri reads credentials.
_URI = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^@/]*@)?"
    r"(?P<hosts>[^/?]*)(?P<path>/[^?]*)?(?:\?(?P<query>.*))?",
    re.DOTALL,
)
# Query parameters that would send the driver around the proxy.
_BYPASS = {
    "mongodb": {"directconnection"},
    "postgresql": {"host", "hostaddr", "port"},
    "postgres": {"host", "hostaddr", "port"},
}


@dataclass(frozen=True)
class _Uri:
    scheme: str
    userinfo: str
    hosts: str
    path: str
    params: list[str]

    @classmethod
    def parse(cls, uri: str) -> _Uri:
        # Error messages name the scheme at most: the rest may hold a password.
        match = _URI.fullmatch(uri)
        if match is None:
            raise ValueError("not a URI of the form scheme://[user[:password]@]host[:port]/…")
        scheme = match["scheme"].lower()
        if scheme == "mongodb+srv":
            raise ValueError(
                "a mongodb+srv:// URI names a DNS record, not a host: proxy one of the "
                "hosts it resolves to with a mongodb:// URI"
            )
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"cannot proxy a {scheme}:// URI: only mongodb:// and postgresql://")
        if "@" in match["hosts"]:
            raise ValueError("the user or password holds an '@': write it as %40")
        query = match["query"]
        return cls(
            scheme=scheme,
            userinfo=match["userinfo"] or "",
            hosts=match["hosts"],
            path=match["path"] or "",
            params=query.split("&") if query else [],
        )

    def param(self, key: str) -> str | None:
        for param in self.params:
            name, _, value = param.partition("=")
            if name.lower() == key:
                return value
        return None

    def address(self) -> Address:
        hosts = self.hosts.split(",") if self.hosts else []
        if len(hosts) > 1:
            raise ValueError(f"the URI names {len(hosts)} hosts; a proxy stands before one")
        host, port = _split_host(hosts[0]) if hosts else (None, None)
        if host is None and self.scheme != "mongodb":
            host = self.param("hostaddr") or self.param("host")
            port = _port(self.param("port") or "0") or None
        if not host or host.startswith("/") or "%2f" in host.lower():
            raise ValueError("the URI names no TCP host (a Unix socket cannot be proxied)")
        return host, port or _DEFAULT_PORTS[self.scheme]

    def through(self, address: Address) -> str:
        bypass = _BYPASS[self.scheme]
        params = [p for p in self.params if p.partition("=")[0].lower() not in bypass]
        if self.scheme == "mongodb":
            # SecantusDB (like any replica set member) advertises its own address in
            # `hello`; a driver discovering the set would connect there, not here.
            params.append("directConnection=true")
        query = "?" + "&".join(params) if params else ""
        path = self.path or ("/" if query else "")
        return f"{self.scheme}://{self.userinfo}{_join_host(address)}{path}{query}"


def _split_host(host: str) -> tuple[str, int | None]:
    if host.startswith("["):  # [IPv6]:port
        inside, _, rest = host[1:].partition("]")
        return inside, _port(rest[1:]) if rest.startswith(":") else None
    name, colon, port = host.rpartition(":")
    return (name, _port(port)) if colon else (host, None)


def _port(text: str) -> int:
    if not text.isdigit():
        raise ValueError("the port is not a number")  # not the text: it may be a secret
    return int(text)


def _join_host(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def uri_address(uri: str) -> Address:
    """The ``(host, port)`` a ``mongodb://`` URI or ``postgresql://`` DSN connects to."""
    return _Uri.parse(uri).address()


def proxied_uri(uri: str, proxy: LatencyProxy | Address) -> str:
    """``uri`` with its host and port replaced by the proxy's; all else kept as written.

    User, password, database and options stay. Options that would bypass the proxy go:
    PostgreSQL's ``host``/``hostaddr``/``port``; MongoDB gets ``directConnection=true``.
    """
    address = proxy.address if isinstance(proxy, LatencyProxy) else proxy
    return _Uri.parse(uri).through(address)


class ProxiedEndpoints(_Started):
    """A :class:`LatencyProxy` in front of each server of ``endpoints``.

    Inside ``with ProxiedEndpoints(servers, pg_delay_s=0.005) as proxied:`` pass
    ``endpoints=proxied.endpoints`` to :func:`~migrationkit._run.migration.migrate` (or use
    its URIs): every connection, from any worker kind, then goes through the proxies.
    A delay of ``None`` leaves that server direct (no proxy at all).
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        pg_delay_s: float | None = 0.0,
        mongo_delay_s: float | None = 0.0,
        bandwidth_bytes_per_s: float | None = None,
    ) -> None:
        self.direct = endpoints
        cap = bandwidth_bytes_per_s
        self.mongo: LatencyProxy | None = None
        self.postgres: LatencyProxy | None = None
        if mongo_delay_s is not None:
            self.mongo = LatencyProxy(
                uri_address(endpoints.mongo_uri), delay_s=mongo_delay_s, bandwidth_bytes_per_s=cap
            )
        if pg_delay_s is not None:
            self.postgres = LatencyProxy(
                uri_address(endpoints.pg_dsn), delay_s=pg_delay_s, bandwidth_bytes_per_s=cap
            )

    def __repr__(self) -> str:
        return f"ProxiedEndpoints(mongo={self.mongo!r}, postgres={self.postgres!r})"

    @property
    def proxies(self) -> list[LatencyProxy]:
        return [proxy for proxy in (self.mongo, self.postgres) if proxy is not None]

    @property
    def endpoints(self) -> Endpoints:
        """The same servers, reached through the proxies (while they run)."""
        mongo, pg = self.direct.mongo_uri, self.direct.pg_dsn
        return dataclasses.replace(
            self.direct,
            mongo_uri=mongo if self.mongo is None else proxied_uri(mongo, self.mongo),
            pg_dsn=pg if self.postgres is None else proxied_uri(pg, self.postgres),
        )

    def start(self) -> Self:
        started: list[LatencyProxy] = []
        try:
            for proxy in self.proxies:
                started.append(proxy.start())
        except BaseException:
            for proxy in started:
                proxy.stop()
            raise
        return self

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
