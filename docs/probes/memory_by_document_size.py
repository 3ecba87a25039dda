"""Peak memory of ``migrationkit migrate`` by document size, on every backend, side by side.

Seeds one collection per document size (1 KB, 100 KB, 1 MB of BSON each, the same
total bytes in each: ``--total-mb``, 400 by default, so 400,000 / 4,000 / 400
documents; a first row of 100 documents shows each backend's fixed cost), then runs
``python -m migrationkit migrate`` at the default settings in a child process per
backend and samples the child's whole process tree (worker processes included) from
``/proc`` every 20 ms; the table shows the peak of the summed RSS. The
bulk of each document is a ``bio`` string, which the users mapping ignores: what is
measured is the cost of carrying the documents, not of storing them. Usage::

    MIGRATIONKIT_HOME=/tmp/mk-bench python docs/probes/memory_by_document_size.py
    ... --sizes 1000,1000000 --backends asyncio,multiprocessing --total-mb 100
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
from pathlib import Path

from migrationkit._errors import MigrationKitError
from migrationkit._servers.embedded import EmbeddedServers
from migrationkit._servers.endpoints import Endpoints
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit.workshop.bench.scaling import TreeSampler, child_environment
from migrationkit.workshop.seeding import UserFactory

#: What a backend name in the table runs: ``migrate`` flags beyond the defaults.
BACKENDS = {
    "asyncio": ["--backend", "asyncio"],
    "threading": ["--backend", "threading"],
    "multiprocessing": ["--backend", "multiprocessing"],
    "mp-ranges": ["--backend", "multiprocessing", "--partitions", "4"],
}
#: Bytes of a document that are not the filler (the user fields, ``_id``, BSON framing).
USER_FIELDS_BYTES = 150
INSERT_BYTES = 8 << 20


#: The first row: so few documents that it shows each backend's fixed cost.
BASELINE = (1_000, 100)


def collection_for(size: int, count: int) -> str:
    return f"memory_probe_{size}_{count}"


async def seed(endpoints: Endpoints, size: int, count: int) -> None:
    """Fill the collection for ``size`` x ``count`` (kept if it already holds them)."""
    async with MongoConnectionHandler(endpoints.mongo_uri) as client:
        collection = client["migrationkit"][collection_for(size, count)]
        if await collection.estimated_document_count() == count:
            return
        await collection.drop()
        filler = "x" * max(0, size - USER_FIELDS_BYTES)
        users = UserFactory(0).users(count)
        per_insert = max(1, INSERT_BYTES // size)
        while batch := [dict(user, bio=filler) for user in itertools.islice(users, per_insert)]:
            await collection.insert_many(batch, ordered=False)


async def peak_memory(endpoints: Endpoints, collection: str, flags: list[str]) -> tuple[int, float]:
    """(peak RSS of the migrate process tree in bytes, seconds) for one run; raises if it fails."""
    command = [sys.executable, "-m", "migrationkit", "migrate", "--json", "--quiet", *flags]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_environment(endpoints, collection=collection, table=collection),
    )
    sampler = TreeSampler(process.pid)
    sampling = asyncio.create_task(sampler.run(process))
    stdout, stderr = await process.communicate()
    await sampling
    if process.returncode != 0:
        last_line = stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise MigrationKitError(f"exit {process.returncode}: {''.join(last_line)[:200]}")
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    return sampler.peak_kib * 1024, float(report["elapsed_s"])


def documented_bound(settings: Settings) -> str:
    """The README's bound for the default settings, if this version has a byte limit."""
    batch_bytes = getattr(settings, "batch_bytes", None)
    if batch_bytes is None:
        return "no byte limit in this version"
    batches = settings.workers * (settings.queue_depth + 1) + 1
    return (
        f"{batches} batches of at most {batch_bytes >> 20} MiB of BSON "
        f"(workers {settings.workers} x (queue depth {settings.queue_depth} + 1) + 1)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--total-mb", type=int, default=400)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    backends = args.backends.split(",")
    home = Path(os.environ.get("MIGRATIONKIT_HOME", "/tmp/mk-bench"))
    endpoints = EmbeddedServers(home).start()
    settings = Settings()
    print(f"defaults: batch_size {settings.batch_size:,}; {documented_bound(settings)}")
    header = f"{'document':>10} {'count':>8} " + " ".join(f"{b:>17}" for b in backends)
    print(f"peak RSS of the migrate process tree, MiB (seconds)\n{header}")
    rows = [BASELINE] + [(size, max(1, args.total_mb * 1_000_000 // size)) for size in sizes]
    for size, count in rows:
        await seed(endpoints, size, count)
        cells = []
        for backend in backends:
            try:
                collection = collection_for(size, count)
                peak, seconds = await peak_memory(endpoints, collection, BACKENDS[backend])
            except MigrationKitError as exc:
                print(f"  {backend} at {size:,} B: {exc}", file=sys.stderr, flush=True)
                cells.append("failed")
                continue
            cells.append(f"{peak / 2**20:>9.0f} ({seconds:>4.1f} s)")
        label = f"{size // 1000:,} KB"
        print(f"{label:>10} {count:>8,} " + " ".join(f"{cell:>17}" for cell in cells), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
