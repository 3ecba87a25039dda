"""Client CPU per document: BSON decoding, validation, and a whole batch's preparation.

No servers needed. Usage: ``python docs/probes/client_cpu_per_document.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import bson
from bson import ObjectId

from migrationkit._normalize.rows import BSON_OPTIONS, document_to_row, prepare_batch
from migrationkit.workshop.lessons.simulation import user_documents

DOCUMENTS = [{**d, "_id": ObjectId()} for d in user_documents(50_000)]
RAW = [bson.encode(d) for d in DOCUMENTS]


def per_document(label: str, work: Callable[[], Any], *, trials: int = 3) -> None:
    best = float("inf")
    for _ in range(trials):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    print(f"{label:<36} {best * 1e6 / len(DOCUMENTS):5.2f} µs a document")


if __name__ == "__main__":
    per_document("bson.decode, one by one", lambda: [bson.decode(r, BSON_OPTIONS) for r in RAW])
    per_document("bson.decode_all, joined", lambda: bson.decode_all(b"".join(RAW), BSON_OPTIONS))
    per_document("document_to_row (validation)", lambda: [document_to_row(d) for d in DOCUMENTS])
    per_document("prepare_batch, raw BSON", lambda: prepare_batch(RAW, document_to_row))
    per_document("prepare_batch, decoded", lambda: prepare_batch(DOCUMENTS, document_to_row))
