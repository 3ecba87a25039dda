"""Where each setting comes from: defaults, a ``migrationkit.toml`` profile, environment, flags.

    # migrationkit.toml: in the working directory, or --config PATH / MIGRATIONKIT_CONFIG
    default_profile = "dev"        # used when neither --profile nor MIGRATIONKIT_PROFILE says

    [profiles.dev]
    workers = 2

    [profiles.prod]
    backend = "multiprocessing"
    pg_dsn = "postgresql://app@db.internal:5432/app"

    [mappings.customers]           # how a collection becomes tables (migrationkit infer)
    table = "customers"
    columns = [{ path = "name", name = "name", pg_type = "text" }]

Each source overrides the one before: default < the file's profile < ``MIGRATIONKIT_*``
variables < command-line flags. :func:`resolve_settings` returns the settings with the
origin of each one (``migrationkit config show`` prints them, secrets redacted); an
unknown key or a bad value is one :class:`ConfigurationError` naming the key and where
it was set. The ``[mappings.<collection>]`` tables are read and checked with the file
(:mod:`migrationkit._mapping.files` says which mapping a run uses).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource

from migrationkit._errors import ConfigurationError
from migrationkit._mapping.files import MappingChoice, collect_mappings, resolve_mapping
from migrationkit._mapping.spec import TableMapping
from migrationkit._settings.settings import Settings

CONFIG_FILE_NAME = "migrationkit.toml"
CONFIG_VARIABLE = "MIGRATIONKIT_CONFIG"
PROFILE_VARIABLE = "MIGRATIONKIT_PROFILE"
ENV_PREFIX = Settings.model_config.get("env_prefix", "")
SECRET_SETTINGS = ("mongo_uri", "pg_dsn")


@dataclass(frozen=True)
class Origin:
    """Where a value came from: ``default``, ``file:PROFILE``, ``env:VARIABLE``, ``flag:--FLAG``."""

    kind: Literal["default", "file", "env", "flag"]
    name: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "default" else f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class ConfigFile:
    """A parsed ``migrationkit.toml``: settings by profile, the default profile, the mappings."""

    path: Path
    profiles: dict[str, dict[str, Any]]
    default_profile: str | None = None
    mappings: dict[str, TableMapping] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> ConfigFile:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
        return cls._parse(path, document)

    @classmethod
    def _parse(cls, path: Path, document: dict[str, Any]) -> ConfigFile:
        problems = [
            f"unknown key {key!r} at the top level"
            + (" (settings go in a [profiles.NAME] table)" if key in Settings.model_fields else "")
            for key in document.keys() - {"default_profile", "profiles", "mappings"}
        ]
        profiles = document.get("profiles", {})
        if not isinstance(profiles, dict) or not all(
            isinstance(p, dict) for p in profiles.values()
        ):
            problems.append("[profiles] must hold tables: [profiles.dev], [profiles.prod], …")
            profiles = {}
        for name, values in profiles.items():
            unknown = sorted(values.keys() - Settings.model_fields.keys())
            problems += [f"[profiles.{name}]: {unknown_setting(key)}" for key in unknown]
        default = document.get("default_profile")
        if default is not None and (not isinstance(default, str) or default not in profiles):
            problems.append(
                f"default_profile = {default!r} names no profile (profiles: {names(profiles)})"
            )
        mappings, mapping_problems = collect_mappings(document.get("mappings", {}))
        if problems or mapping_problems:
            message = f"{path}: " + "; ".join(sorted(problems))
            if mapping_problems:
                message += ("; " if problems else "") + "invalid mappings:\n"
                message += "\n".join(mapping_problems)
            raise ConfigurationError(message)
        return cls(path, profiles, default, mappings)


def unknown_setting(key: str) -> str:
    close = difflib.get_close_matches(key, list(Settings.model_fields), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting {key!r}{hint}"


def names(profiles: Mapping[str, Any]) -> str:
    return ", ".join(sorted(profiles)) or "none"


@dataclass(frozen=True)
class ResolvedSettings:
    """The effective settings, where each one came from, and which file and profile were used."""

    settings: Settings
    origins: dict[str, Origin]
    file: Path | None = None
    profile: str | None = None
    profile_origin: str | None = None  # "--profile", MIGRATIONKIT_PROFILE or "default_profile"
    file_values: dict[str, Any] = field(default_factory=dict, repr=False)
    mappings: dict[str, TableMapping] = field(default_factory=dict, repr=False)
    """The config file's ``[mappings.<collection>]`` tables, by collection."""

    def mapping_choice(self) -> MappingChoice:
        """The mapping a run with these settings uses, and where it comes from.

        A mapping file named in the config file's profile is found from that file's folder;
        one from the environment or a flag, from the working directory.
        """
        origin = self.origins.get("mapping")
        from_file = origin is not None and origin.kind == "file" and self.file is not None
        return resolve_mapping(
            self.settings,
            config_mappings=self.mappings,
            config_file=self.file,
            base_dir=self.file.parent if from_file and self.file is not None else None,
        )

    def show(self) -> str:
        """Every setting, its value (passwords hidden) and its origin, as a table."""
        if self.file is None:
            header = f"config file: none ({CONFIG_FILE_NAME} not found)"
        else:
            chosen = f"{self.profile} (from {self.profile_origin})" if self.profile else "none"
            header = f"config file: {self.file}\nprofile: {chosen}"
        values = self.settings.redacted()
        rows = [
            (key, "(not set)" if values[key] is None else str(values[key]), str(origin))
            for key, origin in self.origins.items()
        ]
        widths = [
            max(len(row[column]) for row in [("setting", "value", ""), *rows]) for column in (0, 1)
        ]
        lines = [f"{'setting':<{widths[0]}}  {'value':<{widths[1]}}  source"]
        lines += [f"{k:<{widths[0]}}  {v:<{widths[1]}}  {o}" for k, v, o in rows]
        return header + "\n\n" + "\n".join(lines) + "\n\n" + self._mapping_line()

    def _mapping_line(self) -> str:
        collection = self.settings.mongo_collection
        try:
            choice = self.mapping_choice()
        except ConfigurationError as exc:
            return f"mapping for {collection!r}: cannot be used: {exc}"
        if choice.infers:
            written = Path(f"{collection}.mapping.toml")  # where `migrationkit infer` writes
            hint = (
                f"{written} is here: use it with --mapping {written}"
                if written.is_file()
                else "`migrationkit infer` writes one to review"
            )
            return f"mapping for {collection!r}: infer ({choice.why}): {hint}"
        return f"mapping for {collection!r}: {choice.describe()}"


def find_config_file(path: str | Path | None = None, *, cwd: Path | None = None) -> Path | None:
    """``path`` (``--config``), else ``$MIGRATIONKIT_CONFIG``, else ``./migrationkit.toml`` if any.

    A file named explicitly must exist; the one in the working directory is optional.
    """
    for given, by in ((path, "--config"), (os.environ.get(CONFIG_VARIABLE), CONFIG_VARIABLE)):
        if given:
            explicit = Path(given).expanduser()
            if not explicit.is_file():
                raise ConfigurationError(f"config file {explicit} (from {by}) does not exist")
            return explicit
    default = (cwd or Path.cwd()) / CONFIG_FILE_NAME
    return default if default.is_file() else None


def resolve_settings(
    *,
    config: str | Path | None = None,
    profile: str | None = None,
    flags: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> ResolvedSettings:
    """Settings from defaults, the config file's profile, the environment and ``flags``.

    ``flags`` maps setting names to command-line values (``None``: not given); a flag
    is named ``--batch-size`` for ``batch_size`` in messages.
    """
    path = find_config_file(config, cwd=cwd)
    file = ConfigFile.read(path) if path is not None else None
    chosen, chosen_by = choose_profile(profile, file, cwd=cwd)
    values: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    file_values = file.profiles[chosen] if file is not None and chosen is not None else {}
    for key, value in file_values.items():
        values[key], origins[key] = value, Origin("file", str(chosen))
    for key, value in EnvSettingsSource(Settings)().items():
        values[key], origins[key] = value, Origin("env", ENV_PREFIX + key.upper())
    for key, value in (flags or {}).items():
        if value is not None:
            values[key], origins[key] = value, Origin("flag", "--" + key.replace("_", "-"))
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise ConfigurationError(describe_errors(exc, origins, path)) from None
    every = {key: origins.get(key, Origin("default")) for key in Settings.model_fields}
    mappings = dict(file.mappings) if file is not None else {}
    return ResolvedSettings(
        settings, every, path, chosen, chosen_by, dict(file_values), mappings=mappings
    )


def choose_profile(
    profile: str | None, file: ConfigFile | None, *, cwd: Path | None = None
) -> tuple[str | None, str | None]:
    """The profile to use and who asked for it; an error if it is not in the file."""
    asked = [(profile, "--profile"), (os.environ.get(PROFILE_VARIABLE), PROFILE_VARIABLE)]
    if file is not None:
        asked.append((file.default_profile, "default_profile"))
    chosen, by = next(((name, by) for name, by in asked if name), (None, None))
    if chosen is None:
        return None, None
    if file is None:
        raise ConfigurationError(
            f"profile {chosen!r} (from {by}) needs a config file, and there is no "
            f"{CONFIG_FILE_NAME} in {cwd or Path.cwd()}: use --config PATH or {CONFIG_VARIABLE}"
        )
    if chosen not in file.profiles:
        raise ConfigurationError(
            f"{file.path}: no profile {chosen!r} (from {by}); profiles: {names(file.profiles)}"
        )
    return chosen, by


def describe_errors(exc: ValidationError, origins: Mapping[str, Origin], path: Path | None) -> str:
    """One line for all of a validation's errors, each naming its key and where it was set."""
    problems = []
    for error in exc.errors(include_url=False):
        key = ".".join(map(str, error["loc"])) or "settings"
        origin = origins.get(key)
        if error["type"] == "extra_forbidden":
            message = unknown_setting(key)
        else:
            shown = "" if key in SECRET_SETTINGS else f", got {error['input']!r}"
            message = f"{key}: {error['msg']}{shown}"
        if origin is not None and origin.kind == "file":
            message += f" (in {path} [profiles.{origin.name}])"
        elif origin is not None:
            message += f" (from {origin.name})"
        problems.append(message)
    return "invalid settings: " + "; ".join(problems)
