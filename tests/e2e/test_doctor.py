"""``migrationkit doctor`` as a learner runs it: a real process, real or missing servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from migrationkit import Endpoints

Doctor = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def doctor(tmp_path: Path) -> Doctor:
    """Run ``migrationkit doctor`` with only the ``MIGRATIONKIT_*`` variables given."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MIGRATIONKIT_")}
    clean["MIGRATIONKIT_HOME"] = str(tmp_path / "home")  # no embedded server runs there

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "migrationkit", "doctor", *args],
            env=clean | env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.integration
def test_doctor_exits_0_and_says_all_good_when_both_servers_answer(
    doctor: Doctor, servers: Endpoints
) -> None:
    done = doctor(MIGRATIONKIT_MONGO_URI=servers.mongo_uri, MIGRATIONKIT_PG_DSN=servers.pg_dsn)
    assert done.returncode == 0, done.stdout + done.stderr
    servers_section = done.stdout.split("\nServers\n", 1)[1]
    assert "ok    MongoDB       configured" in servers_section
    assert "ok    PostgreSQL    configured" in servers_section
    assert servers_section.count("answers: version") == 2
    assert done.stdout.rstrip().endswith("All good: ready for the workshop.")
    password = servers.pg_dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in done.stdout + done.stderr


@pytest.mark.integration
def test_doctor_exits_1_with_the_fix_when_mongodb_does_not_answer(
    doctor: Doctor, servers: Endpoints
) -> None:
    uri = f"mongodb://learner:hunter2@127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=300"
    done = doctor(MIGRATIONKIT_MONGO_URI=uri, MIGRATIONKIT_PG_DSN=servers.pg_dsn)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  MongoDB       configured  mongodb://learner:***@127.0.0.1:" in done.stdout
    assert "ok    PostgreSQL" in done.stdout
    fixes = done.stdout.split("\nWhat to do\n", 1)[1]
    assert "1. MongoDB: start the server at mongodb://learner:***@" in fixes
    assert "or unset MIGRATIONKIT_MONGO_URI" in fixes
    assert fixes.rstrip().endswith("1 problem found.")
    assert "hunter2" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.integration
def test_doctor_tells_to_check_the_password_when_postgresql_refuses_it(
    doctor: Doctor, servers: Endpoints
) -> None:
    scheme, rest = servers.pg_dsn.split("://", 1)
    user, host = rest.split(":", 1)[0], rest.split("@", 1)[1]
    wrong = f"{scheme}://{user}:not-the-password@{host}"
    done = doctor(MIGRATIONKIT_MONGO_URI=servers.mongo_uri, MIGRATIONKIT_PG_DSN=wrong)
    assert done.returncode == 1
    assert "InvalidPasswordError" in done.stdout
    assert "check the user and password in MIGRATIONKIT_PG_DSN" in done.stdout
    assert "not-the-password" not in done.stdout + done.stderr


def test_doctor_exits_1_when_neither_server_answers_and_names_both_fixes(doctor: Doctor) -> None:
    done = doctor(
        MIGRATIONKIT_MONGO_URI=f"mongodb://127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=300",
        MIGRATIONKIT_PG_DSN=f"postgresql://learner:pw@127.0.0.1:{closed_port()}/db",
    )
    assert done.returncode == 1
    assert "1. MongoDB: " in done.stdout
    assert "2. PostgreSQL: start the server at postgresql://learner:***@" in done.stdout
    assert "2 problems found." in done.stdout


def test_embedded_servers_that_are_not_running_yet_are_not_a_problem(doctor: Doctor) -> None:
    done = doctor()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("embedded    not running: starts on first use") == 2


def test_a_bad_setting_is_a_problem_naming_the_variable(doctor: Doctor) -> None:
    done = doctor(MIGRATIONKIT_WORKERS="0")
    assert done.returncode == 1
    assert "fix or unset MIGRATIONKIT_WORKERS" in done.stdout


def test_doctor_refuses_a_timeout_that_is_not_positive(doctor: Doctor) -> None:
    done = doctor("--timeout", "0")
    assert done.returncode == 2
    assert "must be more than 0" in done.stderr
