"""Dispatchers and writers by name: registered ones, import paths, and clear errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from migrationkit import Settings
from migrationkit._errors import ConfigurationError
from migrationkit._executors.dispatch import DISPATCHERS, LeastLoaded, RoundRobin, make_dispatcher
from migrationkit._normalize.rows import ROW_COLUMNS
from migrationkit._registry import Registry
from migrationkit._target.writers import (
    ROW_WRITERS,
    WRITERS,
    copy_rows,
    insert_statement,
    row_writer,
)


def test_built_in_names_are_registered() -> None:
    assert DISPATCHERS.names() == ["round-robin", "least-loaded"]
    assert WRITERS == ("copy", "executemany", "insert")


def test_a_registered_item_is_found_by_name() -> None:
    registry: Registry[int] = Registry("number")
    registry.register("one", 1)
    assert registry.get("one") == 1
    assert "one" in registry


def test_an_import_path_needs_no_registration() -> None:
    assert DISPATCHERS.get("migrationkit._executors.dispatch:LeastLoaded") is LeastLoaded
    assert row_writer("migrationkit._target.writers:copy_rows") is copy_rows


def test_a_function_is_its_own_writer() -> None:
    assert row_writer(copy_rows) is copy_rows


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("random", "unknown dispatcher 'random'; choose one of round-robin, least-loaded"),
        ("no_such_module:Thing", "cannot import no_such_module"),
        ("migrationkit._executors.dispatch:Nothing", "has no attribute 'Nothing'"),
    ],
)
def test_a_bad_name_says_what_is_wrong(name: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DISPATCHERS.get(name)


def test_a_name_with_a_colon_cannot_be_registered() -> None:
    with pytest.raises(ValueError, match="without ':'"):
        ROW_WRITERS.register("a:b", copy_rows)


def test_make_dispatcher_gives_every_dispatcher_the_worker_count() -> None:
    robin = make_dispatcher("round-robin", 3)
    assert isinstance(robin, RoundRobin)
    assert [robin.choose([0, 0, 0]) for _ in range(4)] == [0, 1, 2, 0]
    assert make_dispatcher("least-loaded", 3).choose([2, 0, 1]) == 1


def test_settings_refuse_an_unknown_writer_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"writer\n.*unknown writer 'fast'"):
        Settings(writer="fast")
    with pytest.raises(ValidationError, match=r"dispatch\n.*unknown dispatcher"):
        Settings(dispatch="fastest")


def test_settings_take_an_import_path() -> None:
    settings = Settings(
        writer="migrationkit._target.writers:executemany_rows", dispatch="round-robin"
    )
    assert settings.writer == "migrationkit._target.writers:executemany_rows"


def test_insert_statement_numbers_parameters_row_after_row() -> None:
    assert insert_statement("users", ROW_COLUMNS, rows=2) == (
        'INSERT INTO "users" ("mongo_id", "username", "email", "age", "registered_at") '
        "VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)"
    )
