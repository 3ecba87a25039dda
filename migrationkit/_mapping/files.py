"""Where a collection's mapping comes from, decided before any database is touched.

The ``mapping`` setting says ``"users"`` (the built-in mapping), ``"infer"``, or the path
of a TOML file of ``[mappings.<collection>]`` tables. Left unset, the config file's
``[mappings.<collection>]`` is used if there is one, else the built-in mapping for a
collection called ``users`` (so ``migrationkit migrate`` with no settings moves the
seeded users as it always did), else inference. :func:`resolve_mapping` returns the
choice and where it came from; every way it can be wrong is one
:class:`ConfigurationError` naming the file and the table.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from migrationkit._errors import ConfigurationError
from migrationkit._mapping.spec import USERS, MappingError, TableMapping
from migrationkit._mapping.toml import mapping_from_dict
from migrationkit._settings.settings import Settings

#: ``mapping = "users"``: the workshop's users table (:data:`migrationkit._mapping.spec.USERS`).
BUILT_IN_USERS = "users"
#: ``mapping = "infer"``: infer one from the documents.
INFER = "infer"
#: How the config file is named in an origin when its path is not known.
DEFAULT_CONFIG_NAME = "migrationkit.toml"

MappingSource = Literal["built-in", "file", "config", "infer"]


@dataclass(frozen=True, slots=True)
class MappingChoice:
    """The mapping a run uses (``None``: infer one), where it came from, and why.

    ``origin`` is one of ``built-in users``, ``file:PATH``,
    ``migrationkit.toml [mappings.X]`` or ``infer``; ``why`` says which rule chose it.
    """

    mapping: TableMapping | None
    source: MappingSource
    origin: str
    why: str

    @property
    def infers(self) -> bool:
        """True when there is no mapping yet: the run infers one from the documents."""
        return self.mapping is None

    def describe(self) -> str:
        """``file:customers.mapping.toml (mapping = 'customers.mapping.toml')`` and the like."""
        return f"{self.origin} ({self.why})"


def resolve_mapping(
    settings: Settings,
    *,
    config_mappings: Mapping[str, TableMapping],
    config_file: Path | None = None,
    base_dir: Path | None = None,
) -> MappingChoice:
    """What mapping ``settings`` asks for (see the module docstring); no database is read.

    ``config_mappings`` are the config file's ``[mappings.*]`` tables (``config_file``
    names it in the origin); a relative mapping file path is taken from ``base_dir``
    (default: the working directory). The built-in users mapping takes the settings'
    collection and table names. Raises :class:`ConfigurationError` if the file is
    missing, does not map the collection, or holds an invalid mapping (every problem
    listed).
    """
    collection = settings.mongo_collection
    asked = settings.mapping
    if asked == BUILT_IN_USERS:
        return _built_in(settings, why=f"mapping = {asked!r}")
    if asked == INFER:
        return MappingChoice(None, "infer", INFER, f"mapping = {asked!r}")
    if asked is not None:
        path = Path(asked).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        mapping = mapping_for(collection, read_mapping_file(path), where=str(path))
        return MappingChoice(mapping, "file", f"file:{path}", f"mapping = {asked!r}")
    if collection in config_mappings:
        name = config_file.name if config_file is not None else DEFAULT_CONFIG_NAME
        return MappingChoice(
            config_mappings[collection],
            "config",
            f"{name} [mappings.{collection}]",
            f"declared for collection {collection!r}",
        )
    if collection == USERS.collection:
        return _built_in(settings, why=f"the collection is called {collection!r}")
    return MappingChoice(None, "infer", INFER, f"no mapping declared for collection {collection!r}")


def _built_in(settings: Settings, *, why: str) -> MappingChoice:
    mapping = dataclasses.replace(
        USERS, collection=settings.mongo_collection, table=settings.pg_table
    )
    return MappingChoice(mapping, "built-in", "built-in users", why)


def read_mapping_file(path: Path) -> dict[str, TableMapping]:
    """Every ``[mappings.<collection>]`` table of the TOML file at ``path``, validated."""
    if not path.is_file():
        raise ConfigurationError(f"mapping file {path} does not exist")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read mapping file {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"mapping file {path} is not valid TOML: {exc}") from exc
    # A whole migrationkit.toml is a fine mapping file: its other tables are not read.
    if "mappings" not in document:
        raise ConfigurationError(f"mapping file {path} holds no [mappings.<collection>] table")
    return parse_mappings(document["mappings"], where=str(path))


def parse_mappings(tables: Any, *, where: str) -> dict[str, TableMapping]:
    """The ``[mappings.*]`` tables of a parsed TOML document (``where`` names the file).

    Every problem of every table is collected into one :class:`ConfigurationError`, one
    line each: ``PATH [mappings.customers]: column 2 (path 'age'): unknown key 'tpye'``.
    """
    mappings, problems = collect_mappings(tables)
    if problems:
        raise ConfigurationError(f"{where}: invalid mappings:\n" + "\n".join(problems))
    return mappings


def collect_mappings(tables: Any) -> tuple[dict[str, TableMapping], list[str]]:
    """The valid ``[mappings.*]`` tables, and a ``- [mappings.X]: …`` line per problem."""
    if not isinstance(tables, Mapping):
        return {}, ["- mappings must hold tables: [mappings.customers], [mappings.orders], …"]
    mappings: dict[str, TableMapping] = {}
    problems: list[str] = []
    for name, table in tables.items():
        label = f"[mappings.{name}]"
        if not isinstance(table, Mapping):
            problems.append(f"- {label} must be a table of mapping keys (table, columns, …)")
            continue
        try:
            mappings[name] = mapping_from_dict(table, collection=name)
        except MappingError as exc:
            own = f"mapping {name!r}"
            problems += [f"- {label}{_after(problem, own)}" for problem in exc.problems]
    return mappings, problems


def _after(problem: str, prefix: str) -> str:
    """``: the rest`` of a problem, without the reader's own ``mapping 'x'`` prefix."""
    if problem.startswith(prefix):
        rest = problem.removeprefix(prefix)
        return rest if rest.startswith(":") else ":" + rest
    return f": {problem}"


def mapping_for(
    collection: str, mappings: Mapping[str, TableMapping], *, where: str
) -> TableMapping:
    """The mapping of ``collection`` among ``mappings``: by table key, else by ``collection``."""
    if collection in mappings:
        return mappings[collection]
    named = [m for m in mappings.values() if m.collection == collection]
    if len(named) == 1:
        return named[0]
    there = ", ".join(sorted(mappings)) or "none"
    raise ConfigurationError(
        f"{where} has no mapping for collection {collection!r} "
        f"(it maps: {there}); add a [mappings.{collection}] table, "
        f"or run `migrationkit infer` to write one"
    )
