"""Which mapping a run uses and where it came from: a setting, a file, the config file, a rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from migrationkit._errors import ConfigurationError
from migrationkit._mapping.files import MappingChoice, read_mapping_file, resolve_mapping
from migrationkit._mapping.spec import USERS, Column, TableMapping
from migrationkit._settings.settings import Settings

CUSTOMERS_TOML = """\
[mappings.customers]
table = "customers"
columns = [
  { path = "name", name = "name", pg_type = "text" },
  { path = "age", pg_type = "integer" },
]
"""

DECLARED = TableMapping(
    collection="customers",
    table="clients",
    columns=(Column("name", "name", "text", ("string",)),),
)


def settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def resolve(
    mapping: str | None = None,
    *,
    collection: str = "customers",
    config: dict[str, TableMapping] | None = None,
    **options: Path,
) -> MappingChoice:
    values = {"mongo_collection": collection, "pg_table": collection}
    if mapping is not None:
        values["mapping"] = mapping
    return resolve_mapping(settings(**values), config_mappings=config or {}, **options)


def write(tmp_path: Path, text: str = CUSTOMERS_TOML, name: str = "customers.mapping.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the rules ----------------------------------------------------------------------------


def test_mapping_users_is_the_built_in_mapping_under_the_settings_names() -> None:
    choice = resolve("users", collection="people")
    assert choice.mapping == dataclasses.replace(USERS, collection="people", table="people")
    assert (choice.source, choice.origin) == ("built-in", "built-in users")
    assert choice.why == "mapping = 'users'"


def test_mapping_infer_asks_for_inference_even_when_one_is_declared() -> None:
    choice = resolve("infer", config={"customers": DECLARED})
    assert choice.infers
    assert (choice.mapping, choice.origin, choice.why) == (None, "infer", "mapping = 'infer'")


def test_a_mapping_file_gives_the_collections_table_and_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path)
    choice = resolve(str(path), config={"customers": DECLARED})
    assert choice.mapping is not None
    assert [c.name for c in choice.mapping.columns] == ["name", "age"]
    assert (choice.source, choice.origin) == ("file", f"file:{path}")


def test_a_relative_mapping_file_is_found_from_the_base_folder(tmp_path: Path) -> None:
    write(tmp_path)
    choice = resolve("customers.mapping.toml", base_dir=tmp_path)
    assert choice.origin == f"file:{tmp_path / 'customers.mapping.toml'}"


def test_a_file_table_keyed_otherwise_is_found_by_its_collection_entry(tmp_path: Path) -> None:
    keyed = '[mappings.cust]\ncollection = "customers"'
    path = write(tmp_path, CUSTOMERS_TOML.replace("[mappings.customers]", keyed))
    choice = resolve(str(path))
    assert choice.mapping is not None
    assert choice.mapping.collection == "customers"


def test_unset_uses_the_config_files_mapping_for_the_collection() -> None:
    choice = resolve(config={"customers": DECLARED}, config_file=Path("/etc/mk/prod.toml"))
    assert choice.mapping is DECLARED
    assert (choice.source, choice.origin) == ("config", "prod.toml [mappings.customers]")
    assert choice.why == "declared for collection 'customers'"


def test_without_a_file_path_the_config_origin_says_migrationkit_toml() -> None:
    choice = resolve(config={"customers": DECLARED})
    assert choice.origin == "migrationkit.toml [mappings.customers]"


def test_unset_for_a_collection_called_users_is_the_built_in_mapping() -> None:
    choice = resolve(collection="users")
    assert choice.mapping == USERS
    assert choice.why == "the collection is called 'users'"


def test_a_declared_users_mapping_wins_over_the_built_in_one() -> None:
    declared = dataclasses.replace(DECLARED, collection="users")
    assert resolve(collection="users", config={"users": declared}).mapping is declared


def test_unset_for_any_other_collection_infers_and_says_so() -> None:
    choice = resolve(collection="orders", config={"customers": DECLARED})
    assert choice.infers
    assert choice.origin == "infer"
    assert choice.why == "no mapping declared for collection 'orders'"
    assert choice.describe() == "infer (no mapping declared for collection 'orders')"


# -- the errors ---------------------------------------------------------------------------


def test_a_mapping_file_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"mapping file .*gone\.toml does not exist"):
        resolve(str(tmp_path / "gone.toml"))


def test_a_file_without_the_collection_lists_what_it_maps(tmp_path: Path) -> None:
    path = write(tmp_path)
    with pytest.raises(ConfigurationError) as error:
        resolve(str(path), collection="orders")
    message = str(error.value)
    assert message.startswith(f"{path} has no mapping for collection 'orders' (it maps: customers)")
    assert "migrationkit infer" in message


def test_an_invalid_mapping_lists_every_problem_naming_the_file_and_table(tmp_path: Path) -> None:
    broken = CUSTOMERS_TOML.replace(
        'name = "name", pg_type = "text"', 'name = "id", pg_type = "txt"'
    )
    path = write(tmp_path, broken)
    with pytest.raises(ConfigurationError) as error:
        resolve(str(path))
    lines = str(error.value).splitlines()
    assert lines[0] == f"{path}: invalid mappings:"
    problems = lines[1:]
    assert all(line.startswith("- [mappings.customers]: ") for line in problems)
    assert any("clashes with the kit's own columns" in line for line in problems)
    assert any("unknown pg_type 'txt'" in line for line in problems)


def test_an_unknown_key_names_the_table_the_column_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, CUSTOMERS_TOML.replace('pg_type = "integer"', 'pg_tpye = "integer"'))
    with pytest.raises(ConfigurationError) as error:
        resolve(str(path))
    assert "- [mappings.customers]: column 1: unknown key 'pg_tpye'" in str(error.value)


def test_every_table_of_a_file_is_checked_not_only_the_one_used(tmp_path: Path) -> None:
    path = write(tmp_path, CUSTOMERS_TOML + '\n[mappings.orders]\ncolumns = "none"\n')
    with pytest.raises(ConfigurationError) as error:
        resolve(str(path))
    assert "- [mappings.orders]: table is missing" in str(error.value)
    assert "- [mappings.orders]: columns must be an array" in str(error.value)


def test_a_mapping_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[mappings.customers\n")
    with pytest.raises(ConfigurationError, match=rf"mapping file {path} is not valid TOML"):
        resolve(str(path))


def test_a_toml_file_without_mappings_says_what_it_lacks(tmp_path: Path) -> None:
    path = write(tmp_path, "[profiles.dev]\nworkers = 2\n")
    with pytest.raises(ConfigurationError, match=r"holds no \[mappings.<collection>\] table"):
        resolve(str(path))


def test_a_whole_config_file_reads_as_a_mapping_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[profiles.dev]\nworkers = 2\n\n" + CUSTOMERS_TOML)
    assert list(read_mapping_file(path)) == ["customers"]


def test_mappings_that_are_not_tables_are_one_clear_problem(tmp_path: Path) -> None:
    path = write(tmp_path, 'mappings = "customers"\n')
    with pytest.raises(ConfigurationError, match=r"mappings must hold tables"):
        read_mapping_file(path)


def test_an_empty_mapping_setting_is_refused() -> None:
    with pytest.raises(ValueError, match=r"users.*infer.*path"):
        settings(mapping=" ")
