"""Run a benchmark step as ``python -m module`` in a fresh child and watch its memory.

The child prints one JSON object as its last line of stdout (what it measured);
while it runs, its process tree is sampled from ``/proc`` with
:class:`~migrationkit.workshop.bench.scaling.TreeSampler`. Settings and
passwords travel in the environment, never on the command line (where ``ps``
would show them).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from migrationkit._errors import MigrationKitError
from migrationkit._redact import redact_uri
from migrationkit.workshop.bench.scaling import TreeSampler


class ChildFailedError(MigrationKitError):
    """A benchmark child process exited with an error; the message ends with its stderr."""


@dataclass(frozen=True)
class ChildResult:
    """What the child printed, and the memory its process tree held."""

    output: dict[str, Any]
    peak_rss_bytes: int  # sampled peak of the summed RSS of the tree
    hwm_bytes: int  # the processes' kernel high-water marks (VmHWM), summed
    processes: int


async def run_child(
    module: str,
    arguments: Sequence[str] = (),
    *,
    env: Mapping[str, str],
    secrets: Sequence[str] = (),
) -> ChildResult:
    """Run ``python -m module *arguments``; raise :class:`ChildFailedError` if it fails.

    ``secrets`` (URIs, DSNs) are redacted from the error message, should the child
    have printed one.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *arguments,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(env),
    )  # fmt: skip
    sampler = TreeSampler(process.pid)
    sampling = asyncio.create_task(sampler.run(process))
    stdout, stderr = await process.communicate()
    await sampling
    if process.returncode != 0:
        message = stderr.decode(errors="replace").strip()[-2_000:]
        for secret in secrets:
            message = message.replace(secret, redact_uri(secret))
        raise ChildFailedError(f"{module} exited with {process.returncode}: {message}")
    lines = stdout.decode().strip().splitlines()
    if not lines:
        raise ChildFailedError(f"{module} printed nothing")
    return ChildResult(
        output=json.loads(lines[-1]),
        peak_rss_bytes=sampler.peak_kib * 1024,
        hwm_bytes=sum(sampler.hwm_kib.values()) * 1024,
        processes=len(sampler.hwm_kib),
    )
