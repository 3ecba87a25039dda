"""Time and peak memory of a whole migration, run as ``migrationkit migrate`` in a child.

A fresh process gives a memory figure that nothing else in the benchmark has
inflated. While the child runs, its process tree (worker processes included) is
sampled from ``/proc``: the peak of the summed resident sets is the figure we
compare, and each process's kernel high-water mark (``VmHWM``) is kept as a
cross-check that a short spike between samples was not missed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from migrationkit._errors import MigrationKitError
from migrationkit._servers.endpoints import Endpoints
from migrationkit.workshop.bench.report import ScalingPoint

#: How often the child's process tree is sampled.
SAMPLE_S = 0.02


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now (Linux ``/proc``)."""
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        try:  # a process may exit between being listed and being read
            listed = list(Path(f"/proc/{pid}/task").glob("*/children"))
        except OSError:
            continue
        for children in listed:
            try:
                pending.extend(int(child) for child in children.read_text().split())
            except OSError:
                continue
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB; zeros for a process that has just gone."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")  # "VmRSS:\t  123456 kB"
            if key in values:
                values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values["VmRSS"], values["VmHWM"]


class TreeSampler:
    """Peak summed RSS of a process tree, and each process's high-water mark."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kib = 0
        self.hwm_kib: dict[int, int] = {}

    def sample(self) -> None:
        total = 0
        for pid in process_tree(self.root):
            rss, hwm = memory_kib(pid)
            total += rss
            self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), hwm)
        self.peak_kib = max(self.peak_kib, total)

    async def run(self, process: asyncio.subprocess.Process) -> None:
        while process.returncode is None:
            self.sample()
            await asyncio.sleep(SAMPLE_S)


def child_environment(endpoints: Endpoints, *, collection: str, table: str) -> dict[str, str]:
    """Our environment, pointed at the benchmark's servers, collection and table."""
    return os.environ | {
        "MIGRATIONKIT_MONGO_URI": endpoints.mongo_uri,
        "MIGRATIONKIT_PG_DSN": endpoints.pg_dsn,
        "MIGRATIONKIT_MONGO_COLLECTION": collection,
        "MIGRATIONKIT_MAPPING": "users",
        "MIGRATIONKIT_PG_TABLE": table,
    }


async def migrate_in_child(
    endpoints: Endpoints,
    *,
    collection: str,
    table: str,
    backend: str,
    workers: int,
    batch_size: int,
) -> ScalingPoint:
    """Run ``python -m migrationkit migrate --json`` and measure it; raises if it fails."""
    command = [
        sys.executable, "-m", "migrationkit", "migrate", "--json", "--quiet",
        "--backend", backend, "--workers", str(workers), "--batch-size", str(batch_size),
        "--writer", "copy",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_environment(endpoints, collection=collection, table=table),
    )
    sampler = TreeSampler(process.pid)
    sampling = asyncio.create_task(sampler.run(process))
    stdout, stderr = await process.communicate()
    await sampling
    if process.returncode != 0:
        raise MigrationKitError(
            f"the child migration exited with {process.returncode}: "
            f"{stderr.decode(errors='replace').strip()[-2000:]}"
        )
    report: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return ScalingPoint(
        count=int(report["rows_read"]),
        seconds=float(report["elapsed_s"]),
        peak_rss_bytes=sampler.peak_kib * 1024,
        hwm_bytes=sum(sampler.hwm_kib.values()) * 1024,
        processes=len(sampler.hwm_kib),
    )
