"""The README's "Your own collections" agrees with the code it describes."""

from __future__ import annotations

import re
from pathlib import Path

from migrationkit._cli.main import build_parser
from migrationkit._mapping.types import format_type_map

#: Options every command takes (the README lists them once, for all commands).
COMMON_OPTIONS = {"-h", "--help", "--config", "--profile", "--log-format", "-v", "--verbose"}

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.DOTALL | re.MULTILINE)
    assert match is not None, title
    return match.group(1)


def test_the_readme_prints_the_type_map_that_migrationkit_types_prints() -> None:
    assert format_type_map() in section("Your own collections")


def test_the_readmes_infer_usage_names_the_options_infer_has() -> None:
    usage = section("Your own collections").split("```text\nmigrationkit infer", 1)[1]
    named = set(re.findall(r"--[a-z][a-z-]+", usage.split("```", 1)[0]))
    subcommands = next(a for a in build_parser()._actions if a.dest == "command")
    infer = subcommands.choices["infer"]
    options = {flag for action in infer._actions for flag in action.option_strings}
    assert named == options - COMMON_OPTIONS
