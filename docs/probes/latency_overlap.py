"""Do more workers overlap more waits once PostgreSQL is a few milliseconds away?

Seeds ``--rows`` users, then runs a real ``migrate()`` with the PostgreSQL endpoint
direct and behind a :class:`~migrationkit.workshop.latency_proxy.LatencyProxy` at 0, 2 and 5 ms
one way (MongoDB stays direct), for asyncio with 1, 2, 4, 8 workers and threading with
1, 2, 4; small ``executemany`` batches, so that round trips are what a batch costs.
Prints what one round trip costs, then rows/s (median of ``--repeats`` whole rounds) and
the ratio to 1 worker of the same backend,
then how many MB/s the proxy itself carries. Usage:
``MIGRATIONKIT_HOME=/tmp/mk-bench python docs/probes/latency_overlap.py [--rows 20000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import socketserver
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

import asyncpg

from migrationkit import Endpoints, Settings, UserMongoRepository, migrate
from migrationkit._mapping.spec import users_mapping
from migrationkit._servers.embedded import EmbeddedServers
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._target.connection import PostgresConnectionHandler
from migrationkit._target.tables import drop_target
from migrationkit.workshop import seed_users
from migrationkit.workshop.latency_proxy import LatencyProxy, ProxiedEndpoints

NAME = "probe_latency_users"
DELAYS_MS: list[float | None] = [None, 0, 2, 5]  # None: no proxy at all
RUNS = [("asyncio", n) for n in (1, 2, 4, 8)] + [("threading", n) for n in (1, 2, 4)]


async def sweep(endpoints: Endpoints, *, rows: int, batch: int, repeats: int) -> None:
    async with MongoConnectionHandler(endpoints.mongo_uri) as client:
        await seed_users(UserMongoRepository(client["migrationkit"][NAME]), rows, seed=14)
    trials: dict[tuple[str, int, float | None], list[float]] = defaultdict(list)
    for round_number in range(1, repeats + 1):  # whole rounds: a busy spell hits every cell
        print(f"round {round_number} of {repeats}", flush=True)
        for delay_ms in DELAYS_MS:
            pg_delay = None if delay_ms is None else delay_ms / 1e3
            async with ProxiedEndpoints(endpoints, pg_delay_s=pg_delay, mongo_delay_s=None) as via:
                for backend, workers in RUNS:
                    settings = Settings(
                        mongo_collection=NAME,
                        mapping="users",
                        pg_table=NAME,
                        backend=backend,
                        workers=workers,
                        writer="executemany",
                        batch_size=batch,
                    )
                    report = await migrate(settings, endpoints=via.endpoints)
                    trials[backend, workers, delay_ms].append(report.rows_per_s)
    print_table({key: statistics.median(rates) for key, rates in trials.items()})
    async with PostgresConnectionHandler(endpoints.pg_dsn) as pool:
        await drop_target(pool, users_mapping(NAME))


async def round_trips(endpoints: Endpoints, *, count: int = 200) -> None:
    """What one ``SELECT 1`` costs direct and through the proxy (median)."""
    print(f"\none SELECT 1 round trip (median of {count}):")
    for delay_ms in DELAYS_MS:
        pg_delay = None if delay_ms is None else delay_ms / 1e3
        async with ProxiedEndpoints(endpoints, pg_delay_s=pg_delay, mongo_delay_s=None) as via:
            connection = await asyncpg.connect(via.endpoints.pg_dsn)
            times = []
            for _ in range(count):
                started = time.perf_counter()
                await connection.fetchval("SELECT 1")
                times.append(time.perf_counter() - started)
            await connection.close()
        print(f"  {label(delay_ms):>6}  {statistics.median(times) * 1e3:7.2f} ms")


def label(delay_ms: float | None) -> str:
    return "direct" if delay_ms is None else f"{delay_ms:g} ms"


def print_table(rates: dict[tuple[str, int, float | None], float]) -> None:
    print("\nrows/s (median) and the ratio to 1 worker; one-way delay to PostgreSQL:")
    print(f"{'backend':<10}{'workers':>7} " + "".join(f"{label(d):>19}" for d in DELAYS_MS))
    for backend, workers in RUNS:
        cells = []
        for delay in DELAYS_MS:
            rate, alone = rates[backend, workers, delay], rates[backend, 1, delay]
            cells.append(f"{rate:>11,.0f} {rate / alone:>5.2f}x ")
        print(f"{backend:<10}{workers:>7} " + "".join(cells))


class _Sink(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        buffer = bytearray(1 << 20)
        while self.request.recv_into(buffer):
            pass


def megabytes_per_s(address: tuple[str, int], size: int) -> float:
    """Send ``size`` bytes one way to a server that discards them; MB/s."""
    chunk = b"\0" * (1 << 20)
    started = time.perf_counter()
    with socket.create_connection(address) as client:
        for _ in range(size // len(chunk)):
            client.sendall(chunk)
        client.shutdown(socket.SHUT_WR)
        client.recv(1)  # the sink has read everything once the proxy passes its end on
    return size / (time.perf_counter() - started) / 1e6


def proxy_throughput(size: int) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Sink) as sink:
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        host, port = sink.server_address[:2]
        target = (str(host), int(port))
        print(f"\none way, {size / 1e6:,.0f} MB, a sink that discards:")
        print(f"  direct loopback      {megabytes_per_s(target, size):>7,.0f} MB/s")
        for delay in (0.0, 0.005):
            with LatencyProxy(target, delay_s=delay) as proxy:
                rate = megabytes_per_s(proxy.address, size)
            print(f"  proxy, {delay * 1e3:g} ms delay   {rate:>7,.0f} MB/s")
        sink.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=512)
    options = parser.parse_args()
    home = Path(os.environ.get("MIGRATIONKIT_HOME", "/tmp/mk-bench"))
    endpoints = EmbeddedServers(home).start()
    print(f"{options.rows:,} rows, executemany, batches of {options.batch}, {os.cpu_count()} CPUs")
    asyncio.run(round_trips(endpoints))
    asyncio.run(sweep(endpoints, rows=options.rows, batch=options.batch, repeats=options.repeats))
    proxy_throughput(options.megabytes * 1_000_000)


if __name__ == "__main__":
    main()
