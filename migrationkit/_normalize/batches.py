"""Turn a batch of MongoDB documents into rows to write and rejections to set aside."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.codec_options import CodecOptions
from pydantic import ValidationError

from migrationkit._normalize.models import Row, describe_errors, document_json, mongo_key

#: A document as the reader hands it over: decoded, or raw BSON bytes (process workers).
Document = Mapping[str, Any] | bytes
Batch = Sequence[Document]
Transform = Callable[[Mapping[str, Any]], Row]

BSON_OPTIONS: CodecOptions[Any] = CodecOptions(tz_aware=True)


def decode(document: Document) -> Mapping[str, Any]:
    return bson.decode(document, BSON_OPTIONS) if isinstance(document, bytes) else document


def decode_batch(batch: Batch) -> list[Mapping[str, Any]]:
    """Every document of a batch as a mapping; raw BSON is decoded in one C call."""
    if batch and all(isinstance(item, bytes) for item in batch):
        return bson.decode_all(b"".join(batch), BSON_OPTIONS)  # type: ignore[arg-type]
    return [decode(item) for item in batch]


def last_id(batch: Batch) -> Any:
    """The ``_id`` of a batch's last document: where a resumed read starts after."""
    return decode(batch[-1])["_id"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A document that will not be written, why, and the document itself (Extended JSON)."""

    mongo_id: str
    reason: str
    document: str = field(repr=False)


@dataclass
class PreparedBatch:
    """Rows for the valid documents; rejections for the others; originals kept for later."""

    rows: list[Row]
    rejections: list[Rejection]
    documents: list[Mapping[str, Any]] = field(repr=False)

    def reject_rows(self, refused: Mapping[str, str]) -> list[Rejection]:
        """Rejections for rows PostgreSQL refused, ``refused`` mapping mongo_id → reason."""
        return [
            Rejection(key, refused[key], document_json(document))
            for document in self.documents
            if (key := mongo_key(document.get("_id"))) in refused
        ]


def prepare_batch(batch: Batch, transform: Transform) -> PreparedBatch:
    """Validate and transform every document; a ``ValueError`` rejects just that one."""
    documents = decode_batch(batch)
    rows: list[Row] = []
    rejections: list[Rejection] = []
    for document in documents:
        try:
            rows.append(transform(document))
        except ValueError as exc:
            reason = describe_errors(exc) if isinstance(exc, ValidationError) else str(exc)
            rejections.append(
                Rejection(mongo_key(document.get("_id")), reason, document_json(document))
            )
    return PreparedBatch(rows, rejections, documents)
