"""Exercise checks run against the session's real servers, found through the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrationkit import Endpoints

EXERCISES = Path(__file__).resolve().parents[2] / "notebooks" / "exercises"
SOLUTIONS = EXERCISES / "solutions"


@pytest.fixture(autouse=True)
def servers_in_environment(servers: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a learner's machine has: checks find the servers without being told."""
    monkeypatch.setenv("MIGRATIONKIT_MONGO_URI", servers.mongo_uri)
    monkeypatch.setenv("MIGRATIONKIT_PG_DSN", servers.pg_dsn)


@pytest.fixture
def variant(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a learner's version of ``<name>.py`` (a common mistake) into a folder of its own."""

    def write(name: str, source: str) -> Path:
        (tmp_path / f"{name}.py").write_text(source)
        return tmp_path

    return write
