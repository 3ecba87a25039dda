"""The public surface: what ``migrationkit`` exports is complete, documented, and all there is."""

from __future__ import annotations

import inspect
import pkgutil
import typing

import migrationkit
from migrationkit import _errors


def test_all_names_every_public_object_exported_by_the_package() -> None:
    public = {
        name
        for name, value in vars(migrationkit).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    optional = set(migrationkit._OPTIONAL)  # imported on first use: they need an extra
    assert public == set(migrationkit.__all__) - {"__version__"} - optional


def test_every_name_in_all_exists() -> None:
    for name in migrationkit.__all__:
        assert hasattr(migrationkit, name), name


def test_every_exported_class_and_function_says_what_it_is_for() -> None:
    undocumented = [
        name
        for name in migrationkit.__all__
        if (inspect.isclass(obj := getattr(migrationkit, name)) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()
    ]
    assert undocumented == []


def test_every_error_a_run_can_raise_is_exported() -> None:
    errors = {
        name
        for name, value in vars(_errors).items()
        if inspect.isclass(value) and issubclass(value, migrationkit.MigrationKitError)
    }
    assert errors <= set(migrationkit.__all__)


def public_names_in(annotation: object) -> set[str]:
    """The migrationkit names an annotation mentions (``Progress | None`` → ``Progress``)."""
    names: set[str] = set()
    for part in (annotation, *typing.get_args(annotation)):
        module = getattr(part, "__module__", "") or ""
        if module.startswith("migrationkit") and hasattr(part, "__name__"):
            names.add(part.__name__)
        if part is not annotation:
            names |= public_names_in(part)
    return names


def test_what_the_entry_points_take_and_return_can_be_imported_from_migrationkit() -> None:
    entry_points = [
        migrationkit.migrate,
        migrationkit.Migration.__init__,
        migrationkit._run.verify,
        migrationkit.ClusterMigrationFactory.create,
        migrationkit.ClusterMigrationBase.__init__,
    ]
    needed: set[str] = set()
    for function in entry_points:
        for annotation in typing.get_type_hints(function).values():
            needed |= public_names_in(annotation)
    assert needed - set(migrationkit.__all__) == set()


def test_every_module_but_the_package_and_the_workshop_is_private() -> None:
    public = [
        module.name
        for module in pkgutil.walk_packages(migrationkit.__path__, "migrationkit.")
        if not any(part.startswith("_") for part in module.name.split(".")[1:])
        and not module.name.startswith("migrationkit.workshop")
    ]
    assert public == []
