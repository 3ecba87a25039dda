"""Embedded servers: the pure logic (where binaries are, where files go), no servers run."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from migrationkit._errors import ConfigurationError, ServerUnavailableError
from migrationkit._servers.embedded import (
    HOME_ENV,
    PG_BINDIR_ENV,
    default_home,
    find_pg_bindir,
    find_secantusd,
    socket_dir_for,
)
from migrationkit._servers.embedded import postgres as pg_module
from migrationkit._servers.embedded._common import choose_port, pid_alive
from migrationkit._servers.embedded.postgres import PG_TOOLS, SOCKET_PATH_MAX


def _fake_program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def _fake_bindir(bindir: Path) -> Path:
    for tool in PG_TOOLS:
        _fake_program(bindir / tool)
    return bindir


@pytest.fixture
def debian_root(tmp_path: Path) -> Path:
    """A fake /usr/lib/postgresql with versions 9.6, 10 and 16, and an empty 17."""
    root = tmp_path / "usr-lib-postgresql"
    for version in ("9.6", "10", "16"):
        _fake_bindir(root / version / "bin")
    (root / "17" / "bin").mkdir(parents=True)  # no programs: not a candidate
    (root / "notes").mkdir()
    return root


def test_picks_highest_system_version(debian_root: Path) -> None:
    found = find_pg_bindir({}, debian_root=debian_root, use_pg_config=False)
    assert found == (debian_root / "16" / "bin").resolve()


def test_versions_compare_as_numbers(tmp_path: Path) -> None:
    root = tmp_path / "pg"
    _fake_bindir(root / "9.6" / "bin")
    _fake_bindir(root / "10" / "bin")
    found = find_pg_bindir({}, debian_root=root, use_pg_config=False)
    assert found == (root / "10" / "bin").resolve()


def test_env_override_wins(debian_root: Path, tmp_path: Path) -> None:
    custom = _fake_bindir(tmp_path / "custom" / "bin")
    found = find_pg_bindir(
        {PG_BINDIR_ENV: str(custom)}, debian_root=debian_root, use_pg_config=False
    )
    assert found == custom


def test_env_override_without_programs_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=PG_BINDIR_ENV):
        find_pg_bindir({PG_BINDIR_ENV: str(tmp_path)}, use_pg_config=False)


def test_falls_back_to_pgserver_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = _fake_bindir(tmp_path / "pgserver" / "pginstall" / "bin")
    monkeypatch.setattr(pg_module, "pgserver_bindir", lambda: bundled)
    found = find_pg_bindir({}, debian_root=tmp_path / "absent", use_pg_config=False)
    assert found == bundled


def test_no_binaries_at_all_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_module, "pgserver_bindir", lambda: None)
    with pytest.raises(ServerUnavailableError, match=r"migrationkit\[embedded\]"):
        find_pg_bindir({}, debian_root=tmp_path / "absent", use_pg_config=False)


def test_missing_secantusd_gives_the_install_command(tmp_path: Path) -> None:
    python = _fake_program(tmp_path / "venv" / "bin" / "python")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServerUnavailableError, match=r"pip install 'migrationkit\[embedded\]'"):
        find_secantusd(python=str(python), path=str(tmp_path / "empty"))


def test_secantusd_next_to_python_beats_path(tmp_path: Path) -> None:
    python = _fake_program(tmp_path / "venv" / "bin" / "python")
    beside = _fake_program(tmp_path / "venv" / "bin" / "secantusd-py")
    _fake_program(tmp_path / "elsewhere" / "secantusd-py")
    assert find_secantusd(python=str(python), path=str(tmp_path / "elsewhere")) == beside


def test_secantusd_found_on_path(tmp_path: Path) -> None:
    python = _fake_program(tmp_path / "venv" / "bin" / "python")
    on_path = _fake_program(tmp_path / "elsewhere" / "secantusd-py")
    assert find_secantusd(python=str(python), path=str(tmp_path / "elsewhere")) == on_path


def test_socket_dir_inside_a_short_home() -> None:
    home = Path("/tmp/mk-short")
    assert socket_dir_for(home) == home / "run"


def test_socket_dir_falls_back_to_short_tmp_dir_for_long_homes() -> None:
    long_home = Path("/tmp") / ("x" * 60) / ("y" * 60)
    other_home = Path("/tmp") / ("x" * 60) / ("z" * 60)
    chosen = socket_dir_for(long_home)
    assert chosen.parent == Path("/tmp")
    assert len(os.fsencode(chosen / ".s.PGSQL.65535")) <= SOCKET_PATH_MAX
    assert socket_dir_for(long_home) == chosen  # stable across runs
    assert socket_dir_for(other_home) != chosen  # one per home


def test_home_from_environment_or_default(tmp_path: Path) -> None:
    assert default_home({HOME_ENV: str(tmp_path)}) == tmp_path
    assert default_home({}) == Path.home() / ".migrationkit"


def test_taken_port_is_replaced_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="migrationkit._servers.embedded"):
            port = choose_port(taken, "PostgreSQL")
    assert port != taken
    assert f"port {taken} is taken" in caplog.text


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(None)
    assert not pid_alive(0)
