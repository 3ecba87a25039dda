"""The follower's side of PostgreSQL: what the target holds now, and one batch of changes.

A batch of changes and the stream position after it commit in one transaction
(:func:`apply_changes`): after a crash, the saved position is exactly the last change
in the tables, so resuming neither loses a change nor applies one twice in effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from migrationkit._mapping.restore import restore_document
from migrationkit._mapping.spec import TableMapping
from migrationkit._normalize.rows import PreparedBatch, Rejection
from migrationkit._target.dead_letters import DeadLetterRepository
from migrationkit._target.loader import BatchLoader
from migrationkit._target.mapping_sql import select_statements
from migrationkit._target.stream_positions import StreamPosition, StreamPositionRepository


async def stored_documents(
    db: Any, mapping: TableMapping, ids: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The documents the target holds under these keys (``key → _id``), as BSON values.

    Rows are turned back into their document (:func:`restore_document`, exact for every
    value the mapping keeps); a document set aside comes from the dead-letter table.
    Keys the target does not hold are missing from the result.
    """
    keys = list(ids)
    statements = select_statements(mapping)
    parents = await db.fetch(statements[mapping.table], keys)
    children: dict[str, dict[str, list[Any]]] = {}
    for child in mapping.children:
        for record in await db.fetch(statements[child.table], keys):
            children.setdefault(record[0], {}).setdefault(child.table, []).append(record)
    found: dict[str, dict[str, Any]] = {}
    for record in parents:
        key = record[0]
        found[key] = {"_id": ids[key], **restore_document(mapping, record, children.get(key))}
    missing = [key for key in keys if key not in found]
    if missing:
        set_aside = await DeadLetterRepository(db, table=mapping.table).documents_for(missing)
        found.update({key: dict(document) for key, document in set_aside.items()})
    return found


async def apply_changes(
    db: Any,
    *,
    mapping: TableMapping,
    batch: PreparedBatch,
    deleted: Sequence[str],
    position: StreamPosition,
) -> list[Rejection]:
    """Write new versions, delete what was deleted, save ``position``: all or nothing."""
    async with db.transaction():
        rejections = await BatchLoader(db, mapping=mapping).replace_documents(
            batch, deleted=deleted
        )
        await StreamPositionRepository(db).save(position)
    return rejections
