"""The chaos test of ``migrate --follow``: random inserts, updates (nested fields, arrays)
and deletes run during the full load and while following; the follower is SIGKILLed at
random moments, during the load and while following, and resumed each time. At the end
``cutover`` must find the target equal to the source, and a checker that watched the
target all along must have seen no illegal transition: no row back after its delete,
no version older than one already seen."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from migrationkit import Endpoints, MongoConnectionHandler
from migrationkit.workshop.bench.follow_load import RandomChanges, customers
from migrationkit.workshop.latency_proxy import ProxiedEndpoints

pytestmark = pytest.mark.integration

DOCUMENTS = 4_000
KILLS = 4
#: Per batch: small, so the load has many batches to be killed in the middle of.
BATCH_SIZE = 50
#: Between the first follower and PostgreSQL, each way: a load of a few seconds on any
#: machine, so the first kill lands after a checkpoint and before the load's end.
FIRST_LOAD_PG_DELAY_S = 0.01


class Workload:
    """One writer, one change at a time, until stopped (see :class:`RandomChanges`)."""

    def __init__(self, collection: Any, *, seed: int) -> None:
        self.collection = collection
        self.changes = RandomChanges(range(DOCUMENTS), seed=seed)
        self.writes = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            await self.collection.bulk_write([self.changes.next()])
            self.writes += 1
            await asyncio.sleep(0)  # let the test's other tasks run


class TransitionChecker:
    """Watches the target table; records any row back after a delete or older than seen."""

    def __init__(self, connection: Any, table: str) -> None:
        self.connection, self.table = connection, table
        self.seen: dict[str, int] = {}
        self.gone: set[str] = set()
        self.illegal: list[str] = []
        self.looks = 0

    async def look(self) -> None:
        try:
            rows = await self.connection.fetch(f'SELECT mongo_id, "v" FROM "{self.table}"')
        except asyncpg.UndefinedTableError:
            return
        self.looks += 1
        now = {row["mongo_id"]: row["v"] for row in rows}
        for key, version in now.items():
            if key in self.gone:
                self.illegal.append(f"{key} is back after its delete (v {version})")
            elif version < self.seen.get(key, 0):
                self.illegal.append(f"{key} went from v {self.seen[key]} back to v {version}")
            self.seen[key] = max(version, self.seen.get(key, 0))
        self.gone |= set(self.seen) - set(now)


@pytest.mark.parametrize("backend", ["asyncio", "multiprocessing"])
async def test_a_followed_load_killed_again_and_again_ends_equal_to_the_source(
    servers: Endpoints, tmp_path: Any, backend: str
) -> None:
    collection_name = table = f"chaos_{backend}"
    env = {
        **os.environ,
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_MONGO_COLLECTION": collection_name,
        "MIGRATIONKIT_PG_TABLE": table,
        "MIGRATIONKIT_BACKEND": backend,
        "MIGRATIONKIT_WORKERS": "2",
        "MIGRATIONKIT_BATCH_SIZE": str(BATCH_SIZE),
    }
    env.pop("MIGRATIONKIT_MAPPING", None)

    def command(*args: str) -> list[str]:
        return [sys.executable, "-m", "migrationkit", *args]

    def start(*args: str, pg_dsn: str = servers.pg_dsn) -> subprocess.Popen[str]:
        return subprocess.Popen(
            command(*args), env={**env, "MIGRATIONKIT_PG_DSN": pg_dsn}, cwd=tmp_path,
            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    rng = random.Random(backend)
    async with MongoConnectionHandler(servers.mongo_uri) as client:
        collection = client["migrationkit"][collection_name]
        await collection.drop()
        await collection.insert_many(customers(DOCUMENTS, seed=7))
        inferred = await asyncio.to_thread(
            subprocess.run, command("infer", "--nested", "child", "--all", "--quiet"),
            env=env, cwd=tmp_path, text=True, capture_output=True, check=False,
        )  # fmt: skip
        assert inferred.returncode == 0, inferred.stderr
        db = await asyncpg.connect(servers.pg_dsn)
        checker = TransitionChecker(db, table)
        workload = Workload(collection, seed=11)
        writer = asyncio.ensure_future(workload.run())
        kills = 0
        slow_postgres = ProxiedEndpoints(
            servers, pg_delay_s=FIRST_LOAD_PG_DELAY_S, mongo_delay_s=None
        ).start()
        follower = start("migrate", "--follow", "--quiet", pg_dsn=slow_postgres.endpoints.pg_dsn)
        try:
            while kills < KILLS:
                await wait_until(checker, follower, kill_when(kills, db, table, rng))
                follower.send_signal(signal.SIGKILL)
                follower.wait()
                slow_postgres.stop()
                kills += 1
                follower = start("migrate", "--follow", "--resume", "--quiet")
            await asyncio.sleep(1.0)  # the last follower runs while the writes go on
            workload.stop.set()
            await writer
            cut = await asyncio.to_thread(
                subprocess.run, command("cutover", "--timeout", "120"),
                env=env, cwd=tmp_path, text=True, capture_output=True, check=False,
            )  # fmt: skip
            await checker.look()
            follower.send_signal(signal.SIGTERM)
            out, err = follower.communicate(timeout=60)
            position = await db.fetchrow(
                "SELECT changes_applied, phase FROM migrationkit_stream_positions "
                "WHERE target_table = $1",
                table,
            )
        finally:
            slow_postgres.stop()
            workload.stop.set()
            if follower.poll() is None:
                follower.kill()
                follower.wait()
            await asyncio.gather(writer, return_exceptions=True)
            await collection.drop()
        print(
            f"\n{backend}: {workload.writes:,} writes, {kills} kills survived, "
            f"{position['changes_applied']:,} changes applied, {checker.looks} looks at the "
            f"target, illegal transitions: {len(checker.illegal)}; cutover: {cut.stdout.strip()}"
        )
        assert cut.returncode == 0, cut.stdout + cut.stderr
        assert "differ" not in cut.stdout
        assert follower.returncode == 0, err
        assert "go on with `migrationkit migrate --follow --resume`" in out
        assert checker.illegal == []
        assert position["phase"] == "following"
        assert position["changes_applied"] > 0
        await db.close()


def kill_when(kills: int, db: Any, table: str, rng: random.Random) -> Callable[[], Any]:
    """The first kill in the middle of the load; the others while following, at random."""
    delay = rng.uniform(0.3, 1.5)
    state: dict[str, Any] = {}

    async def ready() -> bool:
        phase = (
            await db.fetchval(
                "SELECT phase FROM migrationkit_stream_positions WHERE target_table = $1", table
            )
            if await db.fetchval("SELECT to_regclass('migrationkit_stream_positions')")
            else None
        )
        if kills == 0:
            done = (
                await db.fetchval(
                    "SELECT rows_done FROM migrationkit_checkpoints WHERE target_table = $1", table
                )
                if await db.fetchval("SELECT to_regclass('migrationkit_checkpoints')")
                else None
            )
            return phase == "loading" and bool(done)
        if phase != "following":
            return False
        loop = asyncio.get_running_loop()
        state.setdefault("since", loop.time())
        return loop.time() - state["since"] >= delay

    return ready


async def wait_until(
    checker: TransitionChecker, follower: subprocess.Popen[str], ready: Callable[[], Any]
) -> None:
    """Look at the target every few milliseconds until ``ready``; fail if the follower died
    or the moment never came (then with what the follower printed)."""
    try:
        async with asyncio.timeout(120):
            while not await ready():
                if follower.poll() is not None:
                    raise AssertionError(f"the follower exited: {follower.communicate()}")
                await checker.look()
                await asyncio.sleep(0.02)
    except TimeoutError:
        follower.kill()
        raise AssertionError(f"the moment to kill never came: {follower.communicate()}") from None
