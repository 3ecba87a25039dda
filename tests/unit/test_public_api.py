import inspect

import migrationkit


def test_all_names_every_public_object_exported_by_the_package() -> None:
    public = {
        name
        for name, value in vars(migrationkit).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(migrationkit.__all__) - {"__version__"}


def test_every_name_in_all_exists() -> None:
    for name in migrationkit.__all__:
        assert hasattr(migrationkit, name), name
