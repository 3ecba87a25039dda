"""``migrationkit infer``: read a sample of the collection, write a mapping to review, say why.

Read-only: it reads MongoDB and writes one local TOML file, never a database, and takes
no lock, so it can run beside a migration. The sample is one ``$sample`` aggregation:
on MongoDB a random sample (fields that only recent or old documents have are seen
too); on SecantusDB as quick as any other way, since every query there scans the whole
collection, ``limit`` or not (measured: the README's "Your own collections").
``--all`` reads every document once, in ``_id`` order, as the migration does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import get_args

from migrationkit._errors import (
    ConfigurationError,
)
from migrationkit._mapping.infer import Inference, Nested
from migrationkit._observe.progress import NullProgress, Progress, TqdmProgress
from migrationkit._run.inference import DEFAULT_SAMPLE, infer_collection, target_table
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.profiles import ResolvedSettings

log = logging.getLogger(__name__)


def _sample_size(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_infer_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``infer`` to the ``migrationkit`` command's subparsers."""
    infer = subparsers.add_parser(
        "infer",
        help="read a sample of the collection and write a mapping to review",
        description="Read a sample of the configured collection (read-only), write the "
        "mapping it suggests as TOML to review, and report every field: how often it is "
        "present, its BSON types, the column chosen and why, and the warnings.",
    )
    how_many = infer.add_mutually_exclusive_group()
    how_many.add_argument(
        "--sample",
        type=_sample_size,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"documents to read, chosen at random (default {DEFAULT_SAMPLE:,})",
    )
    how_many.add_argument("--all", action="store_true", help="read every document")
    infer.add_argument(
        "--nested",
        choices=get_args(Nested),
        default="jsonb",
        help="objects and arrays as jsonb (default); flatten objects into a__b columns; "
        "child: flatten, and arrays become child tables",
    )
    infer.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="where to write the mapping (default ./<collection>.mapping.toml)",
    )
    infer.add_argument("--force", action="store_true", help="replace the file if it exists")
    infer.add_argument("--json", action="store_true", help="print the report as one JSON object")
    infer.add_argument("--quiet", action="store_true", help="no progress on stderr")


def next_command(path: Path) -> str:
    """The command that migrates with the mapping written to ``path``."""
    return f"migrationkit migrate --mapping {shlex.quote(str(path))}"


async def cmd_infer(args: argparse.Namespace, resolved: ResolvedSettings) -> None:
    """Read, infer, write the TOML, print the report (or JSON) and the next command."""
    settings = resolved.settings
    out: Path = args.out or Path(f"{settings.mongo_collection}.mapping.toml")
    refuse_to_overwrite(out, force=args.force)  # before a long read, not after
    quiet = args.quiet or args.json
    sample = None if args.all else args.sample
    progress: Progress = NullProgress() if quiet else TqdmProgress(unit=" docs")
    if settings.mongo_uri is not None:
        uri = settings.mongo_uri.get_secret_value()
    else:  # the embedded servers, started if need be
        uri = (await asyncio.to_thread(resolve_endpoints, settings)).mongo_uri
    inference = await infer_collection(
        settings,
        uri,
        sample=sample,
        nested=args.nested,
        table=target_table(settings),
        progress=progress,
        announce=None if quiet else _to_stderr,
    )
    write_mapping(out, inference, force=args.force)
    if args.json:
        print(
            json.dumps(
                {
                    **inference.report.to_dict(),
                    "mapping_file": str(out),
                    "next_command": next_command(out),
                }
            )
        )
        return
    print(inference.report.format())
    print(f"\nWrote the mapping to {out}: review it (each column says what the sample held).")
    print("Then migrate with it:")
    print(f"  {next_command(out)}")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def refuse_to_overwrite(path: Path, *, force: bool) -> None:
    if path.exists() and not force:
        raise ConfigurationError(
            f"{path} exists: pass --force to replace it, or --out PATH to write elsewhere"
        )


def write_mapping(path: Path, inference: Inference, *, force: bool) -> None:
    """Write the TOML; without ``force`` never over a file that appeared meanwhile."""
    try:
        with path.open("w" if force else "x", encoding="utf-8") as file:
            file.write(inference.to_toml())
    except FileExistsError:
        raise ConfigurationError(f"{path} exists: pass --force to replace it") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from exc
