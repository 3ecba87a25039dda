"""What the benchmark ran on: CPUs, memory, load, library and server versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

PACKAGES = ("migrationkit", "asyncpg", "motor", "pymongo", "pydantic", "SecantusDB")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: how busy the machine was besides us."""
    return [round(load, 2) for load in os.getloadavg()]


def describe_machine(*, servers: dict[str, str], load_at_start: list[float]) -> dict[str, Any]:
    """A dict for the report; ``servers`` are the server versions the caller asked for."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_total_bytes": memory_total_bytes(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "servers": servers,
    }
