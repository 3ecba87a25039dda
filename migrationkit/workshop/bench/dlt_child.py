"""``python -m migrationkit.workshop.bench.dlt_child``: the same collection through dlt.

What a data engineer would write with dlt (the ``bench`` extra): a ``dlt.resource``
yielding pages of documents from a pymongo cursor, into dlt's ``postgres``
destination on the same server, ``write_disposition="replace"`` so every round
loads the same rows. BSON types dlt does not know become their exact Python
equivalents first (ObjectId as text, Decimal128 as ``Decimal``), as dlt's own
MongoDB source does. ``json_columns`` keeps a map keyed by ids as one json
column: left to itself dlt's normalizer makes a column per key (thousands, past
PostgreSQL's limit of 1,600 per table).

Configuration is by code and environment only: no ``.dlt`` folder is read
(``DLT_PROJECT_DIR`` and ``DLT_DATA_DIR`` point at a scratch directory) and
telemetry is off (``RUNTIME__DLTHUB_TELEMETRY=false``). Connection strings come
from ``MIGRATIONKIT_MONGO_URI`` and ``MIGRATIONKIT_PG_DSN``. Prints one JSON line:
the seconds ``pipeline.run`` took, the documents, and the tables and columns dlt made.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from bson import Decimal128, ObjectId
from pymongo import MongoClient

#: What the child sets before dlt is imported; the parent passes the same.
DLT_ENVIRONMENT = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "RUNTIME__LOG_LEVEL": "WARNING",
}


def plain(value: Any) -> Any:
    """``value`` with ObjectId and Decimal128 (at any depth) as str and Decimal."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return value


def pages(collection: Any, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """The collection in pages of ``batch_size`` documents: dlt extracts pages fastest."""
    page: list[dict[str, Any]] = []
    for document in collection.find({}, batch_size=batch_size):
        page.append(plain(document))
        if len(page) == batch_size:
            yield page
            page = []
    if page:
        yield page


@dataclass(frozen=True)
class DltJob:
    """What to load, and where: the child's one argument, as JSON (no secrets in it)."""

    database: str
    collection: str
    dataset: str  # the PostgreSQL schema dlt loads into
    table: str
    batch_size: int
    scratch: str  # dlt's pipelines, project and data directory
    json_columns: tuple[str, ...] = ()

    def to_argument(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_argument(cls, text: str) -> DltJob:
        data = json.loads(text)
        return cls(**data | {"json_columns": tuple(data.get("json_columns", ()))})


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m migrationkit.workshop.bench.dlt_child '{JSON}'", file=sys.stderr)
        return 2
    job = DltJob.from_argument(argv[0])
    os.environ.update(DLT_ENVIRONMENT)
    os.environ["DLT_PROJECT_DIR"] = os.environ["DLT_DATA_DIR"] = job.scratch
    # Imported by name: dlt is an optional extra (and mypy must not need it installed).
    dlt = importlib.import_module("dlt")
    client: MongoClient[dict[str, Any]] = MongoClient(os.environ["MIGRATIONKIT_MONGO_URI"])
    try:
        collection = client[job.database][job.collection]
        pipeline = dlt.pipeline(
            pipeline_name=f"migrationkit_bench_{job.dataset}",
            pipelines_dir=job.scratch,
            destination=dlt.destinations.postgres(credentials=os.environ["MIGRATIONKIT_PG_DSN"]),
            dataset_name=job.dataset,
        )
        resource = dlt.resource(
            pages(collection, job.batch_size),
            name=job.table,
            write_disposition="replace",
            columns={name: {"data_type": "json"} for name in job.json_columns},
        )
        started = time.perf_counter()
        pipeline.run(resource)
        seconds = time.perf_counter() - started
    finally:
        client.close()
    tables = pipeline.default_schema.data_tables()
    rows = pipeline.last_trace.last_normalize_info.row_counts
    print(
        json.dumps(
            {
                "seconds": seconds,
                "documents": int(rows.get(job.table, 0)),
                "tables": len(tables),
                "columns": sum(len(table["columns"]) for table in tables),
                "rows_by_table": {name: int(count) for name, count in rows.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
