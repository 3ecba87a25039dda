"""The machine note every lesson's set-up note ends with."""

from __future__ import annotations

import os
import platform
from types import SimpleNamespace
from typing import Any

import pytest

from migrationkit.workshop.lessons import overlap as O


@pytest.fixture
def busy_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (2.5, 0.0, 0.0))


def lab(*, seeded: int | None) -> Any:
    return SimpleNamespace(seeded=seeded, settings=SimpleNamespace(mongo_collection="users_x"))


@pytest.mark.usefixtures("busy_machine")
def test_the_machine_note_names_the_machine_and_warns_of_its_load() -> None:
    note = O.machine_note()
    assert note.startswith(f"**Machine:** {platform.system()}, {os.cpu_count()} CPUs, Python ")
    assert note.endswith(
        f"Load average over the minute before this cell: 2.5 on {os.cpu_count()} CPUs "
        "(other programs are running: expect spread between runs)."
    )


def test_without_a_load_average_the_machine_note_ends_with_the_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "getloadavg")
    assert O.machine_note().endswith("; both servers on this machine.")


@pytest.mark.usefixtures("busy_machine")
def test_the_setup_note_states_the_run_then_the_machine_note() -> None:
    assert O.setup_note(lab(seeded=12_345), rows=20_000) == (
        "**This run:** 12,345 users in `users_x`, batches of 250, PostgreSQL 5 ms away when "
        f"far, 3 runs a setting. {O.machine_note()}"
    )
