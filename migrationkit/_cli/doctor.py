"""``migrationkit doctor``: its arguments, and the command that prints the diagnosis."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from migrationkit._errors import MigrationKitError
from migrationkit._servers.doctor import DEFAULT_TIMEOUT_S, diagnose
from migrationkit._settings.settings import Settings


def positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def add_doctor_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``doctor`` to the ``migrationkit`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        help="check the installation and the servers, and say what to fix",
        description="Is this machine ready for the workshop, and if not, what to do.",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for each server (default {DEFAULT_TIMEOUT_S:g})",
    )
    return parser


def cmd_doctor(args: argparse.Namespace, settings: Settings | MigrationKitError) -> int:
    """Print the diagnosis; 0 when all is well, 1 when something needs fixing."""
    diagnosis = asyncio.run(diagnose(settings, timeout=args.timeout))
    print(diagnosis.format())
    return 0 if diagnosis.ok else 1
