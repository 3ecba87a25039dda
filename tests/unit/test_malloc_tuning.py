"""Big buffers go back to the OS: glibc's mmap threshold, fixed for us and our children."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from migrationkit._cli.malloc_tuning import ENVIRONMENT_VARIABLE, THRESHOLD_BYTES

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

PROBE = (
    "import os; from migrationkit._cli.malloc_tuning import return_big_buffers_to_the_os as r; "
    f"print(r(), os.environ.get({ENVIRONMENT_VARIABLE!r}))"
)


def run_probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean | env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_threshold_is_fixed_here_and_handed_to_child_processes() -> None:
    assert run_probe() == f"True {THRESHOLD_BYTES}"


def test_a_threshold_the_user_chose_is_kept() -> None:
    assert run_probe(**{ENVIRONMENT_VARIABLE: "65536"}) == "False 65536"
