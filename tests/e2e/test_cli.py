"""The ``migrationkit`` command as a user runs it: a real process, real servers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from migrationkit import Endpoints

pytestmark = pytest.mark.integration

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(servers: Endpoints) -> Run:
    """Run ``python -m migrationkit ARGS`` against the test servers, on a fresh collection."""
    env = {
        **os.environ,
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_MONGO_COLLECTION": "cli_users",
        "MIGRATIONKIT_PG_TABLE": "cli_users",
        "MIGRATIONKIT_MAPPING": "users",
        "MIGRATIONKIT_WORKERS": "2",
    }

    def run(
        *args: str, cwd: str | None = None, **env_overrides: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "migrationkit", *args],
            env=env | env_overrides,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run


def test_seed_then_migrate_json_reports_every_row_for_every_backend_and_writer(
    run: Run, servers: Endpoints
) -> None:
    seeded = run("seed", "--count", "1500", "--quiet")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 1,500 users" in seeded.stdout
    password = servers.pg_dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    for backend in ("asyncio", "threading", "multiprocessing"):
        for writer in ("copy", "executemany", "insert"):
            done = run(
                "migrate", "--backend", backend, "--writer", writer, "--json", "--batch-size", "400"
            )
            assert done.returncode == 0, done.stderr
            report = json.loads(done.stdout)
            assert report["rows_read"] == report["rows_written"] == 1500
            assert report["rows_rejected"] == 0
            assert (report["backend"], report["writer"], report["workers"]) == (backend, writer, 2)
            assert {"elapsed_s", "rows_per_s", "batch_size", "per_worker"} <= report.keys()
            assert len(report["per_worker"]) == 2
            assert password not in done.stdout + done.stderr


def test_migrate_prints_a_table_by_default(run: Run) -> None:
    assert run("seed", "--count", "300", "--quiet").returncode == 0
    done = run("migrate", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "rows/s" in done.stdout
    assert "asyncio" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "--workers", "0"],
        ["migrate", "--backend", "fibers"],
        ["seed", "--count", "x"],
        ["migrate", "--batch-bytes", "-1"],
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(run: Run, args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("migrationkit")


def test_batch_bytes_zero_is_a_flag_too_and_turns_the_byte_limit_off(run: Run) -> None:
    shown = run("config", "show", "--batch-bytes", "0")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^batch_bytes\s+0\s+flag:--batch-bytes$", shown.stdout, re.MULTILINE)
    assert run("seed", "--count", "300", "--quiet").returncode == 0
    done = run("migrate", "--batch-bytes", "0", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_written"] == 300


def test_a_bad_setting_from_the_environment_is_one_clear_line(run: Run) -> None:
    done = run("migrate", MIGRATIONKIT_BATCH_SIZE="-5")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "migrationkit: error: invalid settings: batch_size: Input should be greater than or "
        "equal to 1, got '-5' (from MIGRATIONKIT_BATCH_SIZE)"
    )


def test_an_unreachable_server_is_one_line_without_a_traceback(run: Run) -> None:
    done = run(
        "migrate",
        MIGRATIONKIT_MONGO_URI="mongodb://u:hunter2@127.0.0.1:9/?serverSelectionTimeoutMS=300",
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith(
        "migrationkit: error: cannot reach MongoDB at mongodb://u:***@"
    )
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr


def test_demo_migrates_with_every_backend_and_prints_a_comparison(run: Run) -> None:
    done = run("demo", "--count", "1000")
    assert done.returncode == 0, done.stderr
    table = done.stdout.split("backend", 1)[1]
    for backend in ("asyncio", "threading", "multiprocessing"):
        assert backend in table
    assert "MISMATCH" not in table
    assert table.count(" ok") == 3


PLUG_IN = '''
from migrationkit._executors.dispatch import RoundRobin
from migrationkit._target.writers import executemany_rows

CALLS = []


class EveryOtherWorker(RoundRobin):
    """Deals to workers 0 and 1 only, whatever the worker count."""

    def __init__(self, size):
        super().__init__(min(size, 2))


async def my_writer(connection, table, rows, columns):
    await executemany_rows(connection, table, rows, columns)
'''


@pytest.mark.parametrize("backend", ["asyncio", "multiprocessing"])
def test_the_console_script_runs_a_dispatcher_and_writer_from_the_current_folder(
    servers: Endpoints, tmp_path: Path, backend: str
) -> None:
    (tmp_path / "my_plugins.py").write_text(PLUG_IN)
    env = {
        **os.environ,
        "MIGRATIONKIT_MONGO_URI": servers.mongo_uri,
        "MIGRATIONKIT_PG_DSN": servers.pg_dsn,
        "MIGRATIONKIT_MONGO_COLLECTION": "cli_plugin_users",
        "MIGRATIONKIT_PG_TABLE": "cli_plugin_users",
        "MIGRATIONKIT_MAPPING": "users",
    }
    script = str(Path(sys.executable).with_name("migrationkit"))
    seeded = subprocess.run(
        [script, "seed", "--count", "1200", "--quiet"], env=env, cwd=tmp_path, check=False
    )
    assert seeded.returncode == 0
    done = subprocess.run(
        [script, "migrate", "--backend", backend, "--workers", "3", "--batch-size", "200",
         "--dispatch", "my_plugins:EveryOtherWorker", "--writer", "my_plugins:my_writer",
         "--json", "--quiet"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows_written"] == 1200
    assert report["writer"] == "my_plugins:my_writer"
    assert [worker["batches"] for worker in report["per_worker"]] == [3, 3, 0]


def test_a_writer_without_the_columns_parameter_is_one_clear_error(
    run: Run, tmp_path: Path
) -> None:
    (tmp_path / "old_writer.py").write_text("async def write(connection, table, rows):\n    pass\n")
    done = run("migrate", "--writer", "old_writer:write", cwd=str(tmp_path))
    assert done.returncode == 1
    assert "must take (connection, table, rows, columns)" in done.stderr


def test_an_unknown_plug_in_is_one_clear_error(run: Run) -> None:
    done = run("migrate", "--dispatch", "nowhere:Nothing")
    assert done.returncode == 1
    assert "cannot import nowhere" in done.stderr


def test_partitions_switch_the_cli_to_range_dispatch_and_resume_is_refused(run: Run) -> None:
    assert run("seed", "--count", "900", "--quiet").returncode == 0
    done = run("migrate", "--backend", "multiprocessing", "--partitions", "3", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["backend"], report["rows_written"]) == ("mp-ranges", 900)
    refused = run("migrate", "--backend", "multiprocessing", "--partitions", "3", "--resume")
    assert refused.returncode == 1
    assert "range run takes no --resume" in refused.stderr


def test_cutover_without_a_follower_exits_5_saying_what_to_start(run: Run) -> None:
    done = run("cutover", "--timeout", "0.5", MIGRATIONKIT_PG_TABLE="cli_never_followed")
    assert done.returncode == 5, done.stderr
    assert "no follower has saved a position for table cli_never_followed" in done.stderr
    assert "migrationkit migrate --follow" in done.stderr


def test_follow_takes_one_collection(run: Run) -> None:
    done = run("migrate", "--follow", "--collections", "a,b")
    assert done.returncode == 1
    assert "--follow follows one collection" in done.stderr
