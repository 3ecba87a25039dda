"""``[mappings.<collection>]`` tables in migrationkit.toml, the ``mapping`` setting, config show."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrationkit._cli.main import main
from migrationkit._errors import ConfigurationError
from migrationkit._settings.profiles import CONFIG_VARIABLE, PROFILE_VARIABLE, resolve_settings
from migrationkit._settings.settings import Settings

CONFIG = """\
default_profile = "dev"

[profiles.dev]
mongo_collection = "customers"
pg_table = "customers"

[mappings.customers]
table = "customers"
columns = [
  { path = "name", name = "name", pg_type = "text" },
  { path = "address.city", pg_type = "text" },
]
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MIGRATIONKIT_* setting from the machine, and a working directory of our own."""
    prefix = Settings.model_config.get("env_prefix", "")
    for name in [*(prefix + key.upper() for key in Settings.model_fields), CONFIG_VARIABLE]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(PROFILE_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)


def write_config(text: str = CONFIG) -> Path:
    path = Path.cwd() / "migrationkit.toml"
    path.write_text(text)
    return path


def test_mappings_beside_the_profiles_are_read_with_the_file() -> None:
    write_config()
    resolved = resolve_settings()
    assert list(resolved.mappings) == ["customers"]
    assert [c.name for c in resolved.mappings["customers"].columns] == ["name", "address__city"]


def test_the_config_files_mapping_is_the_one_the_run_uses() -> None:
    write_config()
    choice = resolve_settings().mapping_choice()
    assert choice.origin == "migrationkit.toml [mappings.customers]"
    assert choice.mapping is not None
    assert choice.mapping.table == "customers"


def test_an_unknown_key_in_a_mapping_names_the_file_the_table_and_the_key() -> None:
    path = write_config(CONFIG.replace('table = "customers"\ncolumns', 'tabel = "x"\ncolumns'))
    with pytest.raises(ConfigurationError) as error:
        resolve_settings()
    message = str(error.value)
    assert message.startswith(f"{path}: invalid mappings:\n")
    assert "- [mappings.customers]: unknown key 'tabel'" in message
    assert "- [mappings.customers]: table is missing" in message


def test_every_problem_of_an_invalid_mapping_is_listed() -> None:
    write_config(
        CONFIG.replace('name = "name"', 'name = "mongo_id"').replace('"text" }', '"tex" }')
    )
    with pytest.raises(ConfigurationError) as error:
        resolve_settings()
    problems = str(error.value).splitlines()[1:]
    assert len(problems) >= 3
    assert any("'mongo_id'" in line and "kit's own columns" in line for line in problems)
    assert sum("unknown pg_type 'tex'" in line for line in problems) == 2


def test_profile_and_mapping_problems_are_reported_together() -> None:
    path = write_config(CONFIG.replace("pg_table", "pg_tabel").replace("table =", "tabel ="))
    with pytest.raises(ConfigurationError) as error:
        resolve_settings()
    first, *problems = str(error.value).splitlines()
    assert first.startswith(f"{path}: [profiles.dev]: unknown setting 'pg_tabel'")
    assert first.endswith("invalid mappings:")
    assert "- [mappings.customers]: unknown key 'tabel'" in "\n".join(problems)


def test_mappings_must_be_tables() -> None:
    write_config('[mappings]\ncustomers = "yes"\n')
    with pytest.raises(ConfigurationError, match=r"\[mappings.customers\] must be a table"):
        resolve_settings()


def test_mapping_is_a_setting_from_a_profile_the_environment_or_a_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(
        CONFIG.replace('pg_table = "customers"', 'pg_table = "customers"\nmapping = "infer"')
    )
    resolved = resolve_settings()
    assert (resolved.settings.mapping, str(resolved.origins["mapping"])) == ("infer", "file:dev")
    monkeypatch.setenv("MIGRATIONKIT_MAPPING", "users")
    resolved = resolve_settings()
    assert str(resolved.origins["mapping"]) == "env:MIGRATIONKIT_MAPPING"
    assert resolved.mapping_choice().origin == "built-in users"
    resolved = resolve_settings(flags={"mapping": "infer"})
    assert str(resolved.origins["mapping"]) == "flag:--mapping"


def test_a_mapping_file_named_in_a_profile_is_found_beside_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "customers.mapping.toml").write_text(CONFIG.split("\n\n", 2)[2])
    config = folder / "workshop.toml"
    profile = 'mongo_collection = "customers"\nmapping = "customers.mapping.toml"\n'
    config.write_text("[profiles.x]\n" + profile)
    choice = resolve_settings(config=config, profile="x").mapping_choice()
    assert choice.origin == f"file:{folder / 'customers.mapping.toml'}"
    monkeypatch.setenv("MIGRATIONKIT_MAPPING", "customers.mapping.toml")  # from the cwd
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_settings(config=config, profile="x").mapping_choice()


def test_show_names_the_mapping_and_its_origin() -> None:
    write_config()
    shown = resolve_settings().show()
    assert shown.splitlines()[-1] == (
        "mapping for 'customers': migrationkit.toml [mappings.customers] "
        "(declared for collection 'customers')"
    )


def test_show_says_when_the_run_would_infer_and_how_to_review_first() -> None:
    shown = resolve_settings(flags={"mapping": None}).show()  # no file: users, built in
    assert shown.splitlines()[-1] == (
        "mapping for 'users': built-in users (the collection is called 'users')"
    )
    write_config(CONFIG.replace("[mappings.customers]", "[mappings.orders]"))
    last = resolve_settings().show().splitlines()[-1]
    assert last.startswith("mapping for 'customers': infer (no mapping declared")
    assert "migrationkit infer" in last


def test_show_points_at_a_mapping_infer_wrote_here_when_none_is_used() -> None:
    Path("orders.mapping.toml").write_text(CONFIG.split("\n\n", 2)[2])
    last = resolve_settings(flags={"mongo_collection": "orders"}).show().splitlines()[-1]
    assert last == (
        "mapping for 'orders': infer (no mapping declared for collection 'orders'): "
        "orders.mapping.toml is here: use it with --mapping orders.mapping.toml"
    )


def test_show_says_why_a_mapping_cannot_be_used_instead_of_failing() -> None:
    shown = resolve_settings(flags={"mapping": "missing.toml"}).show()
    assert "mapping for 'users': cannot be used: mapping file missing.toml does not exist" in shown


def test_config_show_command_takes_the_mapping_flag(capsys: pytest.CaptureFixture[str]) -> None:
    write_config()
    assert main(["config", "show", "--mapping", "users"]) == 0
    out = capsys.readouterr().out
    assert "flag:--mapping" in out
    assert out.splitlines()[-1] == "mapping for 'customers': built-in users (mapping = 'users')"
