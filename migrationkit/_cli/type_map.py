"""``migrationkit types``: what each BSON type becomes in PostgreSQL, and what is kept."""

from __future__ import annotations

import argparse

from migrationkit._mapping.types import format_type_map


def add_types_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``types`` to the ``migrationkit`` command's subparsers."""
    subparsers.add_parser(
        "types",
        help="print the BSON type map: each type's PostgreSQL column and what is kept",
        description="The BSON type map as a Markdown table (the README prints the same).",
    )


def cmd_types(args: argparse.Namespace) -> None:
    """Print the type map; reads no settings and no database."""
    print(format_type_map())
