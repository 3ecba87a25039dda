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
import contextlib
import inspect
import json
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import bson
from pymongo.errors import PyMongoError

from migrationkit._errors import (
    ConfigurationError,
    ServerUnavailableError,
    TransientFaultError,
)
from migrationkit._mapping.infer import FieldStats, Inference, Nested, mapping_from_stats
from migrationkit._mapping.types import MAPPING_BSON_OPTIONS
from migrationkit._observe.progress import NullProgress, Progress, TqdmProgress
from migrationkit._redact import redact_uri
from migrationkit._retry import MONGO_TRANSIENT, RetryPolicy
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.profiles import ResolvedSettings
from migrationkit._settings.settings import Settings
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.keyset import iter_id_order

log = logging.getLogger(__name__)

#: Documents read by default: enough to see the common shapes, quick on a slow server.
DEFAULT_SAMPLE = 1_000
#: Documents per batch when reading every one (``--all``).
READ_BATCH = 2_000


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


def target_table(resolved: ResolvedSettings) -> str:
    """``pg_table`` if it was set, else the collection's name (not the ``users`` default)."""
    settings = resolved.settings
    origin = resolved.origins.get("pg_table")
    chosen = origin is not None and origin.kind != "default"
    return settings.pg_table if chosen else settings.mongo_collection


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
    stats, total = await read_collection(
        settings, sample=sample, progress=progress, announce=None if quiet else _to_stderr
    )
    inference = mapping_from_stats(
        stats,
        collection=settings.mongo_collection,
        table=target_table(resolved),
        sampled=sample,
        total=total,
        nested=args.nested,
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


async def read_collection(
    settings: Settings,
    *,
    sample: int | None,
    progress: Progress,
    announce: Callable[[str], None] | None = None,
) -> tuple[FieldStats, int]:
    """The statistics of ``sample`` documents (``None``: every one), and the estimated count.

    ``progress`` counts the documents of ``--all``; a sample is one query, so ``announce``
    is told once what is being read.
    """
    if settings.mongo_uri is not None:
        uri = settings.mongo_uri.get_secret_value()
    else:  # the embedded servers, started if need be
        uri = (await asyncio.to_thread(resolve_endpoints, settings)).mongo_uri
    where = f"{settings.mongo_database}.{settings.mongo_collection}"
    async with MongoConnectionHandler(uri, driver=settings.mongo_driver) as client:
        collection = client[settings.mongo_database].get_collection(
            settings.mongo_collection, codec_options=MAPPING_BSON_OPTIONS
        )
        try:
            total = int(await collection.estimated_document_count())
            if total == 0:
                raise ConfigurationError(
                    f"{where} holds no documents: nothing to infer a mapping from "
                    "(check MIGRATIONKIT_MONGO_DATABASE and MIGRATIONKIT_MONGO_COLLECTION)"
                )
            if sample is None:
                progress.start(total, "reading every document")
                try:
                    stats = await read_every(
                        collection, progress=progress, policy=settings.retry_policy, what=where
                    )
                finally:
                    progress.close()
            else:
                if announce is not None:
                    announce(f"sampling {min(sample, total):,} of ~{total:,} documents of {where}")
                stats = await read_sample(
                    collection, size=sample, policy=settings.retry_policy, what=where
                )
        except PyMongoError as exc:
            raise ServerUnavailableError(
                f"reading {where} from MongoDB at {redact_uri(uri)} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return stats, total


async def read_every(
    collection: Any, *, progress: Progress, policy: RetryPolicy, what: str
) -> FieldStats:
    """Every document once, in ``_id`` order (resumed at the last ``_id`` after a fault)."""
    stats = FieldStats()
    batches = iter_id_order(collection, batch_size=READ_BATCH, policy=policy, what=what)
    async for batch in batches:
        for document in batch:
            stats.add(document)
        progress.advance(len(batch))
    return stats


async def read_sample(collection: Any, *, size: int, policy: RetryPolicy, what: str) -> FieldStats:
    """``size`` documents at random (``$sample``), the whole sample again after a fault.

    MongoDB's random cursor may return a document twice; each is counted once.
    """
    delays = policy.delays()
    while True:
        stats = FieldStats()
        try:
            await _add_sample(collection, stats, size=size)
            return stats
        except MONGO_TRANSIENT as exc:
            delay = next(delays, None)
            if delay is None:
                raise TransientFaultError(
                    f"sampling {what} from MongoDB kept failing: {type(exc).__name__}: {exc}"
                ) from exc
            log.warning("sampling %s failed (%s); again in %.2f s", what, exc, delay)
            await asyncio.sleep(delay)


async def _add_sample(collection: Any, stats: FieldStats, *, size: int) -> None:
    opened = collection.aggregate(
        [{"$sample": {"size": size}}], allowDiskUse=True, batchSize=min(size, READ_BATCH)
    )
    cursor = await opened if inspect.isawaitable(opened) else opened  # PyMongo's is a coroutine
    seen: set[bytes] = set()
    try:
        async for document in cursor:
            key = bson.encode({"_id": document["_id"]}, codec_options=MAPPING_BSON_OPTIONS)
            if key not in seen:
                seen.add(key)
                stats.add(document)
    finally:
        with contextlib.suppress(*MONGO_TRANSIENT):
            await cursor.close()
