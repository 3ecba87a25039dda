"""Target lock keys and the holder's description, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

from migrationkit._errors import MigrationKitError, TargetBusyError
from migrationkit._target.run_lock import KEY_NAMESPACE, RunInfo, command_line, lock_key


def test_a_table_always_gets_the_same_key() -> None:
    # A fixed value: runs of different versions, hosts and processes must agree on it.
    assert lock_key("public", "users") == lock_key("public", "users") == 6454621510241615581


def test_keys_fit_postgresql_bigint() -> None:
    for table in ("users", "orders", "a", "x" * 63):
        assert -(2**63) <= lock_key("public", table) < 2**63


def test_different_tables_and_schemas_get_different_keys() -> None:
    keys = {
        lock_key("public", "users"),
        lock_key("public", "users_1"),
        lock_key("staging", "users"),
        lock_key("public", "orders"),
    }
    assert len(keys) == 4


def test_keys_are_namespaced_so_small_integers_other_apps_use_are_not_ours() -> None:
    assert KEY_NAMESPACE.startswith("migrationkit:")
    assert all(abs(lock_key("public", f"t{n}")) > 2**32 for n in range(1_000))


def test_the_holder_is_described_on_one_line_with_everything_an_operator_needs() -> None:
    holder = RunInfo(
        run_id="3f2a1b0c9d8e",
        host="build-1",
        pid=4242,
        started_at=datetime(2025, 6, 1, 10, 0, 3, tzinfo=UTC),
        command="migrationkit migrate --backend asyncio",
    )
    text = holder.describe()
    assert "\n" not in text
    assert text == (
        "run 3f2a1b0c9d8e on host build-1, pid 4242, started 2025-06-01 10:00:03 UTC: "
        "migrationkit migrate --backend asyncio"
    )


def test_the_recorded_command_hides_passwords_and_names_our_command() -> None:
    argv = ["/venv/lib/migrationkit/__main__.py", "migrate", "postgresql://me:hunter2@db/x"]
    assert command_line(argv) == "migrationkit migrate 'postgresql://me:***@db/x'"


def test_target_busy_is_a_migrationkit_error_that_carries_the_table_and_holder() -> None:
    error = TargetBusyError("table users is being migrated by another run", table="users")
    assert isinstance(error, MigrationKitError)
    assert (error.table, error.holder) == ("users", None)
