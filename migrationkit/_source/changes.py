"""Change-stream events as values, and a batch of them folded into one change per document.

The follower reads raw events (dicts from pymongo or Motor), parses each with
:func:`parse_event`, folds a batch with :func:`fold_changes` and applies one
:class:`NetChange` per document key. Shapes and rules come from the probe
``docs/probes/change_streams.py``; ``docs/change_streams.md`` gives its output.

Folding one key's events in source order (``doc`` = an event's full document)::

    net so far      insert / replace     update with doc   update without doc       delete
    (nothing)       upsert(doc)          upsert(doc)       patch([desc])            delete
    upsert(d)       upsert(doc)          upsert(doc)       upsert(apply(d, desc))   delete
    patch(ps)       upsert(doc)          upsert(doc)       patch(ps + [desc])       delete
    delete          upsert(doc)          delete            delete                   delete

An update after a delete cannot come from a complete stream: an update matches only an
existing document, and every way back (insert, upsert) emits an ``insert`` event
(probed). It is folded as MongoDB would run it, as an update that matches nothing.
An update's full document is a lookup made when the event was read, newer than the
event, and ``null`` when the document was gone by then (a delete event follows) or when
no post-image was kept; either way it is folded as a patch.

A ``patch`` means: the document changed by these update descriptions and the batch does
not hold it whole; apply them to the stored document, or read the document again.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bson.timestamp import Timestamp
from pymongo.errors import OperationFailure

from migrationkit._errors import ChangeHistoryLostError, ConfigurationError, MigrationKitError
from migrationkit._normalize.rows import mongo_key

#: Operations that change one document.
DOCUMENT_OPERATIONS = frozenset({"insert", "update", "replace", "delete"})
#: Operations after which a stream on the collection is over.
ENDING_OPERATIONS = frozenset({"drop", "rename", "dropDatabase", "invalidate"})
#: Operations (``showExpandedEvents`` only) that change no document.
SCHEMA_OPERATIONS = frozenset(
    {"create", "createIndexes", "dropIndexes", "modify", "shardCollection",
     "refineCollectionShardKey", "reshardCollection"}
)  # fmt: skip

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class UpdateDescription:
    """What an ``update`` event says changed: dotted paths set, removed, arrays cut short."""

    updated_fields: Mapping[str, Any] = field(default_factory=dict)
    removed_fields: tuple[str, ...] = ()
    truncated_arrays: tuple[tuple[str, int], ...] = ()
    #: Paths whose dots are ambiguous, as their real parts (``int`` = array index).
    disambiguated_paths: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> UpdateDescription:
        return cls(
            updated_fields=dict(raw.get("updatedFields") or {}),
            removed_fields=tuple(raw.get("removedFields") or ()),
            truncated_arrays=tuple(
                (item["field"], int(item["newSize"])) for item in raw.get("truncatedArrays") or ()
            ),
            disambiguated_paths={
                path: tuple(parts) for path, parts in (raw.get("disambiguatedPaths") or {}).items()
            },
        )

    def parts(self, path: str) -> Path:
        """The components of ``path``; numeric parts index arrays unless disambiguated."""
        return self.disambiguated_paths.get(path) or tuple(path.split("."))


@dataclass(frozen=True)
class ChangeEvent:
    """One change-stream event, parsed; ``key`` is ``mongo_key(_id)`` for document events."""

    operation: str
    resume_token: Mapping[str, Any]
    namespace: str
    cluster_time: Timestamp | None = None
    wall_time: datetime | None = None
    key: str | None = None
    document_id: Any = None
    full_document: Mapping[str, Any] | None = None
    update_description: UpdateDescription | None = None

    @property
    def ends_stream(self) -> bool:
        return self.operation in ENDING_OPERATIONS


def parse_event(raw: Mapping[str, Any]) -> ChangeEvent:
    """A raw event as pymongo or Motor returns it; raises ``ValueError`` on a malformed one."""
    try:
        operation, token = raw["operationType"], raw["_id"]
    except KeyError as exc:
        raise ValueError(f"not a change-stream event: no {exc.args[0]!r} field") from None
    ns = raw.get("ns") or {}
    namespace = ".".join(part for part in (ns.get("db"), ns.get("coll")) if part)
    times = {"cluster_time": raw.get("clusterTime"), "wall_time": raw.get("wallTime")}
    if operation not in DOCUMENT_OPERATIONS:
        return ChangeEvent(operation, token, namespace, **times)
    if "_id" not in (raw.get("documentKey") or {}):
        raise ValueError(f"{operation} event without documentKey._id")
    document_id = raw["documentKey"]["_id"]
    description = raw.get("updateDescription")
    return ChangeEvent(
        operation,
        token,
        namespace,
        **times,
        key=mongo_key(document_id),
        document_id=document_id,
        full_document=raw.get("fullDocument"),
        update_description=(
            UpdateDescription.from_raw(description) if description is not None else None
        ),
    )


@dataclass(frozen=True)
class NetChange:
    """The net effect of a batch on one document; see the module docstring for the rules."""

    kind: Literal["upsert", "delete", "patch"]
    key: str
    document_id: Any
    cluster_time: Timestamp | None
    document: Mapping[str, Any] | None = None
    patches: tuple[UpdateDescription, ...] = ()


def fold_changes(events: Iterable[ChangeEvent]) -> list[NetChange]:
    """One change per document key, ordered by each key's last event in the batch.

    Raises :class:`ChangeHistoryLostError` on a drop, rename or invalidate (the stream
    is over), and ``ValueError`` on an operation this module does not know, rather
    than skip a change silently. Schema events (``showExpandedEvents``) are skipped.
    """
    net: dict[str, NetChange] = {}
    #: Keys whose net document the fold built itself (a copy): patched in place after.
    copied: set[str] = set()
    for event in events:
        if event.ends_stream:
            raise invalidated_error(event)
        if event.operation in SCHEMA_OPERATIONS:
            continue
        if event.operation not in DOCUMENT_OPERATIONS or event.key is None:
            raise ValueError(f"unknown change-stream operation {event.operation!r}")
        folded = _fold_one(net.pop(event.key, None), event, copied)
        net[event.key] = folded  # re-inserted: the dict keeps last-event order
    return list(net.values())


def _fold_one(previous: NetChange | None, event: ChangeEvent, copied: set[str]) -> NetChange:
    """``previous`` and ``event`` folded; an event's own document is never changed (a
    batch may be folded again), so the first update to it copies it, into ``copied``."""
    key = event.key
    assert key is not None
    base = {"key": key, "document_id": event.document_id, "cluster_time": event.cluster_time}
    description = event.update_description or UpdateDescription()
    if event.operation == "delete":
        copied.discard(key)
        return NetChange("delete", **base)
    if event.operation == "update" and previous is not None and previous.kind == "delete":
        return NetChange("delete", **base)  # matches nothing, as MongoDB would run it
    if event.full_document is not None:
        copied.discard(key)
        return NetChange("upsert", **base, document=event.full_document)
    if event.operation != "update":
        raise ValueError(f"{event.operation} event for {key} without its fullDocument")
    if previous is not None and previous.kind == "upsert":
        assert previous.document is not None
        if key not in copied:
            copied.add(key)
            return NetChange(
                "upsert", **base, document=apply_update(previous.document, description)
            )
        document = apply_update_in_place(
            previous.document,  # type: ignore[arg-type]  # the fold's own copy
            copy.deepcopy(description),
        )
        return NetChange("upsert", **base, document=document)
    earlier = previous.patches if previous is not None else ()
    return NetChange("patch", **base, patches=(*earlier, description))


# --------------------------------------------------------------------------- applying updates


def apply_update(document: Mapping[str, Any], description: UpdateDescription) -> dict[str, Any]:
    """A copy of ``document`` with an update description applied, as MongoDB applied it."""
    return apply_update_in_place(copy.deepcopy(dict(document)), copy.deepcopy(description))


def apply_update_in_place(
    document: dict[str, Any], description: UpdateDescription
) -> dict[str, Any]:
    """:func:`apply_update` on a document (and description) the caller owns: no copies.

    Arrays are cut first, then paths are set (creating embedded documents and padding
    arrays with ``None``, as ``$set`` past an array's end does), then paths are removed.
    The values set become part of ``document``.
    """
    result = document
    for path, size in description.truncated_arrays:
        array = _walk(result, description.parts(path), create=False)
        if isinstance(array, list):
            del array[size:]
    for path, value in description.updated_fields.items():
        *parents, last = description.parts(path)
        _assign(_walk(result, parents, create=True), last, value, path)
    for path in description.removed_fields:
        *parents, last = description.parts(path)
        container = _walk(result, parents, create=False)
        if isinstance(container, dict):
            container.pop(str(last), None)
        elif isinstance(container, list) and _index(last) < len(container):
            container[_index(last)] = None  # $unset of an element leaves a null
    return result


def _index(part: str | int) -> int:
    return part if isinstance(part, int) else int(part)


def _walk(node: Any, parts: Sequence[str | int], *, create: bool) -> Any:
    """The value at ``parts`` below ``node``; ``None`` if absent (unless ``create``)."""
    for part in parts:
        if isinstance(node, list):
            index = _index(part)
            if index >= len(node):
                if not create:
                    return None
                node.extend([None] * (index + 1 - len(node)))
            if node[index] is None and create:
                node[index] = {}
            node = node[index]
        elif isinstance(node, dict):
            key = str(part)
            if key not in node:
                if not create:
                    return None
                node[key] = {}
            node = node[key]
        else:
            return None
    return node


def _assign(container: Any, part: str | int, value: Any, path: str) -> None:
    if isinstance(container, list):
        index = _index(part)
        container.extend([None] * (index + 1 - len(container)))
        container[index] = value
    elif isinstance(container, dict):
        container[str(part)] = value
    else:
        raise ValueError(f"cannot set {path!r}: its parent is a {type(container).__name__}")


# --------------------------------------------------------------------------- errors

#: Server codes that mean the saved position is gone or unusable, with our ``reason``.
_LOST_POSITION_CODES = {
    286: "history_lost",  # ChangeStreamHistoryLost
    40585: "history_lost",  # its code before MongoDB 4.2 ("resume ... was not possible")
    136: "history_lost",  # CappedPositionLost: a live cursor fell off the oplog (mongod)
    260: "invalid_token",  # InvalidResumeToken
    280: "invalid_token",  # ChangeStreamFatalError
}
_STANDALONE = 40573  # "The $changeStream stage is only supported on replica sets"


def translate_stream_error(exc: OperationFailure, *, namespace: str) -> MigrationKitError | None:
    """Our error for a driver error that means following cannot go on; ``None`` otherwise."""
    details = exc.details or {}
    message = str(details.get("errmsg") or exc)
    code_name = details.get("codeName") or f"code {exc.code}"
    detail = f"{message} ({code_name}, code {exc.code})"
    reason = _LOST_POSITION_CODES.get(exc.code or 0)
    if reason is None and "no longer be in the oplog" in message:
        reason = "history_lost"
    elif reason is None and "resume token" in message.lower():
        reason = "invalid_token"  # FailedToParse (9), a foreign namespace's token (13)
    if reason == "history_lost":
        detail = f"the server's oplog no longer holds the saved position: {detail}"
    elif reason == "invalid_token":
        detail = f"the server rejects the saved resume token: {detail}"
    if reason is not None:
        return ChangeHistoryLostError(reason, namespace=namespace, detail=detail)
    if exc.code == _STANDALONE:
        return ConfigurationError(
            f"cannot follow {namespace}: the MongoDB server is a standalone, and change "
            "streams need a replica set. Start mongod with --replSet rs0 and run "
            "rs.initiate() once (docker-compose.yml's mongodb service does both)"
        )
    return None


@contextlib.contextmanager
def translating_stream_errors(namespace: str) -> Iterator[None]:
    """Around ``watch()`` and reading a stream: lost positions become our errors.

    Usable around ``await`` too (``with translating_stream_errors(ns): await ...``).
    """
    try:
        yield
    except OperationFailure as exc:
        translated = translate_stream_error(exc, namespace=namespace)
        if translated is None:
            raise
        raise translated from exc


def invalidated_error(event: ChangeEvent) -> ChangeHistoryLostError:
    """The error for an event that ends the stream (drop, rename, dropDatabase, invalidate)."""
    what = {
        "drop": "the collection was dropped",
        "rename": "the collection was renamed",
        "dropDatabase": "the database was dropped",
        "invalidate": "the stream was invalidated (its collection was dropped or renamed)",
    }[event.operation]
    return ChangeHistoryLostError(
        "invalidated",
        namespace=event.namespace or "the watched collection",
        detail=f"{what} at cluster time {event.cluster_time}",
    )


def check_history_kept(
    oldest_kept: Timestamp | None, position: Timestamp, *, namespace: str
) -> None:
    """Fail if the server no longer keeps the history just after ``position``.

    A stream that falls behind SecantusDB's oplog, or starts at a time older than it,
    silently skips what was pruned (probed); compare the oldest oplog entry's time
    with the time of the last event applied. ``None`` (oplog not readable) passes.
    """
    if oldest_kept is not None and oldest_kept > position:
        raise ChangeHistoryLostError(
            "history_lost",
            namespace=namespace,
            detail=(
                f"the server's oldest oplog entry ({oldest_kept}) is newer than the last "
                f"change followed ({position}), so the changes in between were pruned"
            ),
        )


async def oldest_kept_time(client: Any) -> Timestamp | None:
    """The time of the oldest entry in the server's oplog (``local.oplog.rs``).

    ``None`` when the user may not read it; real MongoDB then still fails the stream
    itself with ``ChangeStreamHistoryLost``.
    """
    oplog = client["local"]["oplog.rs"]
    try:
        oldest = await oplog.find_one({}, sort=[("$natural", 1)], projection={"ts": 1})
    except OperationFailure as exc:
        if exc.code == 13:  # Unauthorized
            return None
        raise
    return None if oldest is None else oldest["ts"]
