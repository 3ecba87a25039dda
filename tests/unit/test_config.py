"""Settings from defaults < a migrationkit.toml profile < MIGRATIONKIT_* < flags; errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrationkit._cli.main import main
from migrationkit._errors import ConfigurationError
from migrationkit._observe.logs import HANDLER_NAME
from migrationkit._settings.profiles import (
    CONFIG_VARIABLE,
    PROFILE_VARIABLE,
    resolve_settings,
)
from migrationkit._settings.settings import Settings

PROFILES = """\
default_profile = "dev"

[profiles.dev]
backend = "threading"
workers = 2
batch_size = 2000

[profiles.prod]
backend = "multiprocessing"
pg_dsn = "postgresql://app:hunter2@db.internal:5432/app"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No MIGRATIONKIT_* setting from the machine, and a working directory of our own."""
    prefix = Settings.model_config.get("env_prefix", "")
    for name in [*(prefix + key.upper() for key in Settings.model_fields), CONFIG_VARIABLE]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(PROFILE_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)


def write_config(text: str = PROFILES, name: str = "migrationkit.toml") -> Path:
    path = Path.cwd() / name
    path.write_text(text)
    return path


def test_without_a_file_every_setting_is_its_default() -> None:
    resolved = resolve_settings()
    assert resolved.file is None
    assert resolved.settings == Settings()
    assert {str(origin) for origin in resolved.origins.values()} == {"default"}


def test_file_then_environment_then_flags_each_override_the_one_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config()
    monkeypatch.setenv("MIGRATIONKIT_BATCH_SIZE", "5000")
    monkeypatch.setenv("MIGRATIONKIT_WORKERS", "3")
    resolved = resolve_settings(flags={"workers": 8, "writer": None})
    settings, origins = resolved.settings, resolved.origins
    assert (settings.backend, origins["backend"].kind) == ("threading", "file")
    assert (settings.batch_size, str(origins["batch_size"])) == (
        5000,
        "env:MIGRATIONKIT_BATCH_SIZE",
    )
    assert (settings.workers, str(origins["workers"])) == (8, "flag:--workers")
    assert (settings.writer, str(origins["writer"])) == ("copy", "default")
    assert str(origins["backend"]) == "file:dev"


def test_the_profile_comes_from_the_flag_then_the_environment_then_default_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config()
    assert resolve_settings().profile == "dev"
    monkeypatch.setenv(PROFILE_VARIABLE, "prod")
    assert resolve_settings().settings.backend == "multiprocessing"
    assert resolve_settings().profile_origin == PROFILE_VARIABLE
    assert resolve_settings(profile="dev").settings.backend == "threading"


def test_a_file_without_default_profile_applies_only_when_a_profile_is_named() -> None:
    write_config(PROFILES.replace('default_profile = "dev"\n', ""))
    assert resolve_settings().settings.backend == "asyncio"
    assert resolve_settings(profile="dev").settings.backend == "threading"


def test_the_file_can_be_named_by_flag_or_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "conf"
    elsewhere.mkdir()
    path = elsewhere / "workshop.toml"
    path.write_text('default_profile = "x"\n[profiles.x]\nworkers = 5\n')
    assert resolve_settings(config=path).settings.workers == 5
    monkeypatch.setenv(CONFIG_VARIABLE, str(path))
    assert resolve_settings().file == path


def test_a_named_file_that_does_not_exist_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.toml \(from --config\) does not exist"):
        resolve_settings(config="missing.toml")
    monkeypatch.setenv(CONFIG_VARIABLE, "gone.toml")
    with pytest.raises(ConfigurationError, match=rf"gone\.toml \(from {CONFIG_VARIABLE}\)"):
        resolve_settings()


def test_an_unknown_key_in_a_profile_names_it_the_profile_and_the_file() -> None:
    path = write_config(PROFILES.replace("workers = 2", "wokers = 2"))
    with pytest.raises(ConfigurationError) as error:
        resolve_settings(profile="prod")  # even in a profile that is not used
    message = str(error.value)
    assert str(path) in message
    assert "[profiles.dev]: unknown setting 'wokers' (did you mean 'workers'?)" in message


def test_a_setting_at_the_top_level_says_where_settings_go() -> None:
    write_config("workers = 2\n")
    with pytest.raises(ConfigurationError, match=r"unknown key 'workers' at the top level.*"):
        resolve_settings()


def test_a_bad_value_in_the_file_names_the_key_the_file_and_the_profile() -> None:
    path = write_config(PROFILES.replace("workers = 2", "workers = 0"))
    with pytest.raises(ConfigurationError) as error:
        resolve_settings()
    assert str(error.value) == (
        "invalid settings: workers: Input should be greater than or equal to 1, got 0 "
        f"(in {path} [profiles.dev])"
    )


def test_a_bad_value_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MIGRATIONKIT_BACKEND", "fibers")
    with pytest.raises(
        ConfigurationError, match=r"backend: .*'fibers' \(from MIGRATIONKIT_BACKEND\)"
    ):
        resolve_settings()


def test_a_bad_value_from_a_flag_names_the_flag() -> None:
    with pytest.raises(ConfigurationError, match=r"batch_size: .* \(from --batch-size\)"):
        resolve_settings(flags={"batch_size": 0})


def test_a_bad_secret_is_named_without_showing_its_value() -> None:
    write_config("[profiles.p]\npg_dsn = 5\n")
    with pytest.raises(ConfigurationError) as error:
        resolve_settings(profile="p")
    assert "pg_dsn: Input should be a valid string (in" in str(error.value)
    assert "got" not in str(error.value)


def test_an_unknown_profile_lists_the_profiles_there_are() -> None:
    write_config()
    with pytest.raises(
        ConfigurationError, match=r"no profile 'stage' \(from --profile\); profiles: dev, prod"
    ):
        resolve_settings(profile="stage")


def test_a_profile_without_a_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_VARIABLE, "prod")
    with pytest.raises(
        ConfigurationError, match=rf"'prod' \(from {PROFILE_VARIABLE}\) needs a config file"
    ):
        resolve_settings()


def test_default_profile_must_name_a_profile() -> None:
    write_config(PROFILES.replace('default_profile = "dev"', 'default_profile = "qa"'))
    with pytest.raises(ConfigurationError, match=r"default_profile = 'qa' names no profile"):
        resolve_settings()


def test_a_file_that_is_not_toml_is_one_error_naming_it() -> None:
    path = write_config("[profiles.dev\nworkers = 2\n")
    with pytest.raises(ConfigurationError, match=rf"{path} is not valid TOML: .*line 1"):
        resolve_settings()


def test_show_lists_every_setting_with_its_source_and_hides_passwords(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config()
    monkeypatch.setenv("MIGRATIONKIT_WORKERS", "6")
    shown = resolve_settings(profile="prod", flags={"batch_size": 100}).show()
    assert "hunter2" not in shown
    lines = {line.split()[0]: line.split()[1:] for line in shown.splitlines()[3:] if line}
    assert lines.keys() >= set(Settings.model_fields)
    assert lines["pg_dsn"] == ["postgresql://app:***@db.internal:5432/app", "file:prod"]
    assert lines["workers"] == ["6", "env:MIGRATIONKIT_WORKERS"]
    assert lines["batch_size"] == ["100", "flag:--batch-size"]
    assert lines["writer"] == ["copy", "default"]
    assert "profile: prod (from --profile)" in shown


def test_config_show_command_prints_the_sources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config()
    monkeypatch.setenv("MIGRATIONKIT_BATCH_SIZE", "5000")
    assert main(["config", "show", "--workers", "8", "--log-format", "json"]) == 0
    out = capsys.readouterr().out
    assert "profile: dev (from default_profile)" in out
    for expected in (
        "file:dev",
        "env:MIGRATIONKIT_BATCH_SIZE",
        "flag:--workers",
        "flag:--log-format",
    ):
        assert expected in out


def test_every_command_reports_a_bad_config_file_as_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_config(PROFILES.replace("workers = 2", "wokers = 2"))
    assert main(["--profile", "dev", "verify"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown setting 'wokers'" in err


@pytest.mark.parametrize("profile", ["dev", "workshop", "prod"])
def test_the_example_file_is_valid_for_every_profile(profile: str) -> None:
    example = Path(__file__).resolve().parents[2] / "migrationkit.example.toml"
    resolved = resolve_settings(config=example, profile=profile)
    assert resolved.profile == profile
    assert any(origin.kind == "file" for origin in resolved.origins.values())
