"""The doctor's report and its server probes, without real servers."""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from migrationkit import ConfigurationError, resolve_settings
from migrationkit._cli.doctor import add_doctor_parser
from migrationkit._servers.doctor import (
    Check,
    Diagnosis,
    install_command,
    installed_checks,
    server_checks,
    settings_fix,
)
from migrationkit._settings.settings import Settings


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and then never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_an_all_good_diagnosis_is_ok_and_says_so() -> None:
    diagnosis = Diagnosis([Check("Servers", "MongoDB", "ok", "answers")])
    assert diagnosis.ok
    assert diagnosis.format().endswith("All good: ready for the workshop.")


def test_a_missing_optional_extra_is_shown_but_is_not_a_problem() -> None:
    diagnosis = Diagnosis([Check("Installed", "[test]", "info", "missing pytest", "pip ...")])
    assert diagnosis.ok
    assert "  --    [test]" in diagnosis.format()


def test_each_problem_gets_a_numbered_fix() -> None:
    diagnosis = Diagnosis(
        [
            Check("Servers", "MongoDB", "problem", "does not answer", "unset A"),
            Check("Servers", "PostgreSQL", "ok", "answers"),
            Check("Servers", "settings", "problem", "bad", "fix or unset B"),
        ]
    )
    text = diagnosis.format()
    assert not diagnosis.ok
    assert "  1. MongoDB: unset A\n  2. settings: fix or unset B" in text
    assert text.endswith("2 problems found.")


def test_install_commands_use_this_interpreter() -> None:
    command = install_command(["embedded"])
    assert command.startswith(f"{sys.executable} -m pip install ")
    assert "[embedded]" in command


def test_the_installed_report_lists_python_the_package_and_each_extra() -> None:
    names = [check.name for check in installed_checks(embedded_needed=True)]
    assert names[:4] == ["python", "migrationkit", "C row writer", "dependencies"]
    assert {"[embedded]", "[notebooks]", "[test]"} <= set(names)


def test_an_invalid_setting_names_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MIGRATIONKIT_BATCH_SIZE", "-5")
    with pytest.raises(ConfigurationError) as raised:
        resolve_settings()
    assert settings_fix(raised.value) == "fix or unset MIGRATIONKIT_BATCH_SIZE"


async def test_both_servers_are_probed_at_once_with_the_timeout_given(silent_port: int) -> None:
    settings = Settings(
        mongo_uri=f"mongodb://127.0.0.1:{silent_port}/?directConnection=true",
        pg_dsn=f"postgresql://learner:secret@127.0.0.1:{silent_port}/db",
    )
    started = time.monotonic()
    checks = await server_checks(settings, timeout=1.0)
    elapsed = time.monotonic() - started
    assert [(check.name, check.level) for check in checks] == [
        ("MongoDB", "problem"),
        ("PostgreSQL", "problem"),
    ]
    assert 0.9 < elapsed < 1.9, "one timeout, not two in a row"
    assert all("secret" not in f"{check.detail} {check.fix}" for check in checks)


def test_the_doctor_parser_takes_a_timeout() -> None:
    parser = argparse.ArgumentParser()
    add_doctor_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor", "--timeout", "0.5"])
    assert (args.command, args.timeout) == ("doctor", 0.5)


def test_the_report_says_whether_the_c_row_writer_was_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from migrationkit._mapping import fast_rows
    from migrationkit._servers.doctor import c_rows

    built = c_rows()
    assert (built.level, built.fix) == ("ok", None)
    assert "built" in built.detail
    monkeypatch.setattr(fast_rows, "AVAILABLE", False)
    missing = c_rows()
    assert missing.level == "info"
    assert "gcc" in (missing.fix or "")
