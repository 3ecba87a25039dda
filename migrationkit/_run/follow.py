"""Following the change stream after the full load, until stopped: ``migrate --follow``.

The stream's position is taken before the load begins (:func:`start_position`), so
every change made while the load runs, or after, comes through the stream. The
follower reads the stream in batches, folds each document's events
(:func:`~migrationkit._source.changes.fold_changes`), and commits the new versions,
the deletes and the stream position in one transaction
(:func:`~migrationkit._target.change_writer.apply_changes`) through the same mapping
as the load: columns, catch-all, child tables, dead letters.

**The rule that makes racing changes end as in the source.** The load read each
document at some moment after the position was taken; the target may therefore
already hold a document *newer* than a change the stream reports for it, and applying
that change's contents would put an older version over a newer one. So:

- a change at or before the *re-read floor* — the server's time just after the load
  ended (saved with the position), or, per document, just after the follower last read
  that document again — is not applied from its contents: the document is read again
  from the source (it is then at least as new as anything the target holds) and
  written, or deleted if it is gone;
- a later change is applied exactly: an insert or replace writes its full document, a
  delete deletes, and an update's description is applied to the document the target
  holds (restored from its rows, exact for every value the mapping keeps).

Every version the target holds is then one the source held, never older than the
previous one, and once the follower has applied a change it holds that change's
effect. On ``--resume`` the floor is raised to the server's time at the restart (the
per-document times were in memory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bson.timestamp import Timestamp

from migrationkit._errors import ChangeHistoryLostError, ConfigurationError
from migrationkit._executors.stats import RejectionGroup, reason_kind
from migrationkit._mapping.spec import TableMapping
from migrationkit._normalize.rows import (
    PreparedBatch,
    Rejection,
    Transform,
    as_bson,
    prepare_batch,
    raw_path,
)
from migrationkit._observe.observe import NullObserver, Observer
from migrationkit._run.garbage_collection import rarer_collections
from migrationkit._run.written_documents import DEFAULT_BUDGET_BYTES, WrittenDocuments
from migrationkit._source.changes import (
    ChangeEvent,
    NetChange,
    apply_update_in_place,
    check_history_kept,
    fold_changes,
    oldest_kept_time,
)
from migrationkit._source.stream import NEVER as _NEVER
from migrationkit._source.stream import SourceCollection, StreamBatch
from migrationkit._target.change_writer import apply_changes, stored_documents
from migrationkit._target.connection import ReconnectingConnection
from migrationkit._target.stream_positions import StreamPosition, StreamPositionRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowOptions:
    """How the follower reads, and when it stops.

    ``stop`` ends it between batches (Ctrl-C, SIGTERM); ``until`` ends it once every
    change made up to that cluster time is applied (tests, the benchmark).
    """

    max_events: int = 1_000
    max_wait_s: float = 0.5
    idle_save_s: float = 1.0
    stop: asyncio.Event | None = None
    until: Timestamp | None = None
    #: A follower this far behind (or more) on SecantusDB checks, at most every
    #: ``history_check_s``, that no change was pruned unseen (see :class:`_HistoryCheck`).
    safe_lag_s: float = 10.0
    history_check_s: float = 30.0
    #: The documents it last wrote, kept to apply updates to (:mod:`.written_documents`).
    cache_bytes: int = DEFAULT_BUDGET_BYTES


@dataclass
class FollowStatus:
    """What the follower has done so far; handed to ``on_batch`` after every batch."""

    events_applied: int = 0
    documents_written: int = 0
    documents_deleted: int = 0
    documents_rejected: int = 0
    documents_reread: int = 0
    batches: int = 0
    lag_s: float = 0.0
    waiting: int = 0
    caught_up_to: Timestamp = _NEVER
    #: Reason → the documents set aside for it (how many, the first ``_id``s).
    rejections: dict[str, RejectionGroup] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    #: When the follower stopped (``None`` while it runs).
    stopped: float | None = None

    @property
    def elapsed_s(self) -> float:
        """Seconds followed: until it stopped, or until now while it runs."""
        return (self.stopped or time.perf_counter()) - self.started

    @property
    def events_per_s(self) -> float:
        return self.events_applied / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_applied": self.events_applied,
            "documents_written": self.documents_written,
            "documents_deleted": self.documents_deleted,
            "documents_rejected": self.documents_rejected,
            "documents_reread": self.documents_reread,
            "batches": self.batches,
            "elapsed_s": round(self.elapsed_s, 3),
            "lag_s": round(self.lag_s, 3),
            "caught_up_to": self.caught_up_to.as_datetime().isoformat(),
            "rejections": {reason: group.count for reason, group in self.rejections.items()},
        }

    def summary(self) -> str:
        return (
            f"followed {self.events_applied:,} changes in {self.batches:,} batches "
            f"({self.documents_written:,} documents written, {self.documents_deleted:,} "
            f"deleted, {self.documents_rejected:,} set aside, {self.documents_reread:,} "
            f"read again) in {self.elapsed_s:.1f} s; lag {self.lag_s:.2f} s"
        )


async def start_position(
    source: SourceCollection, *, table: str, source_name: str
) -> StreamPosition:
    """The stream's position now, to follow from once the load is done."""
    before = await source.cluster_time()
    uuid = await source.uuid()
    async with source.stream() as stream:
        token = stream.start_token
    if token is None:
        raise ConfigurationError(f"the server gave no resume token for {source.namespace}")
    return StreamPosition(
        target_table=table,
        source=source_name,
        collection_uuid=uuid,
        token=token,
        caught_up_to=before,
        reread_floor=before,
    )


async def check_same_collection(source: SourceCollection, position: StreamPosition) -> None:
    """Refuse a position saved for another collection, server, or an earlier incarnation.

    A token of another server is accepted by SecantusDB without error (probed), so
    the collection's UUID is kept with the token and compared here.
    """
    if position.source != source.namespace:
        raise ConfigurationError(
            f"the stream position for table {position.target_table} follows "
            f"{position.source}, not {source.namespace}; run without --resume to start over"
        )
    uuid = await source.uuid()
    if position.collection_uuid is not None and uuid != position.collection_uuid:
        raise ChangeHistoryLostError(
            "invalid_token",
            namespace=source.namespace,
            detail=(
                f"the collection's UUID is {uuid}, not {position.collection_uuid} as when the "
                "position was saved: another server, or the collection was re-created"
            ),
        )


class Follower:
    """Applies the change stream to the target, batch by batch, from ``position``."""

    def __init__(
        self,
        *,
        source: SourceCollection,
        postgres: ReconnectingConnection,
        mapping: TableMapping,
        transform: Transform,
        position: StreamPosition,
        observer: Observer | None = None,
        on_batch: Callable[[FollowStatus], None] | None = None,
    ) -> None:
        self.source = source
        self.postgres = postgres
        self.mapping = mapping
        self.transform = transform
        self.position = position
        self.observer = observer or NullObserver()
        self.on_batch = on_batch
        self.status = FollowStatus(caught_up_to=position.caught_up_to)
        self._reread_at: dict[str, Timestamp] = {}
        self._last_save = time.monotonic()
        self._history = _HistoryCheck(source, position.caught_up_to)
        self._written = WrittenDocuments()
        #: Reads rows back while ``postgres`` commits the batch before (see :meth:`_patch`).
        self._reader: ReconnectingConnection | None = None
        self._committing: _Commit | None = None
        #: Keys PostgreSQL refused in commits settled while a batch was being prepared.
        self._refused_lately: set[str] = set()

    async def run(self, options: FollowOptions | None = None) -> FollowStatus:
        """Follow until ``options.stop`` is set or ``options.until`` is reached.

        The stream's thread reads ahead (:class:`~migrationkit._source.stream.ChangeStream`),
        and batch *k* + 1 is prepared while batch *k* commits; it commits only after
        batch *k* has. The stream's position advances only as batches commit, so a batch
        read or prepared and never committed is read again by the next follower.
        """
        options = options or FollowOptions()
        self._written = WrittenDocuments(options.cache_bytes)
        try:
            with rarer_collections():
                await self._follow(options)
        finally:
            self.status.stopped = time.perf_counter()
            await self._history.close()
        return self.status

    async def _follow(self, options: FollowOptions) -> None:
        """The batches, on the stream and a reading connection of their own."""
        async with (
            self.postgres.sibling() as self._reader,
            self.source.stream(
                resume_after=self.position.token,
                max_events=options.max_events,
                max_wait_s=options.max_wait_s,
            ) as stream,
        ):
            try:
                while not self._should_stop(options):
                    await self._one_batch(await stream.next(), options)
                    self._history.after_batch(options, self.position, lag_s=self.status.lag_s)
                await self._settle()
            finally:
                await self._abandon()

    def _should_stop(self, options: FollowOptions) -> bool:
        if options.stop is not None and options.stop.is_set():
            return True
        return options.until is not None and self._latest.caught_up_to >= options.until

    @property
    def _latest(self) -> StreamPosition:
        """The position after the last batch handed to PostgreSQL (committed or not yet)."""
        return self._committing.work.position if self._committing else self.position

    async def _one_batch(self, batch: StreamBatch, options: FollowOptions) -> None:
        if not batch.events:
            await self._settle()
            await self._idle(batch, options)
            return
        self.status.waiting = len(batch.events)
        self.observer.following(applied=0, lag_s=self.status.lag_s, waiting=len(batch.events))
        self._refused_lately = set()
        work = await self._prepare(batch)
        await self._settle()
        if self._refused_lately & work.from_memory:
            # PostgreSQL refused a version this batch was built on: build it again from
            # what the target holds now.
            work = await self._prepare(batch)
        self._start_commit(work)

    async def _idle(self, batch: StreamBatch, options: FollowOptions) -> None:
        """Nothing new: move the saved position on now and then (cut-over waits on it)."""
        caught = max(batch.caught_up_to, self.position.caught_up_to)
        if caught > self.position.caught_up_to and (
            time.monotonic() - self._last_save >= options.idle_save_s
            or (options.until is not None and caught >= options.until)
        ):
            position = self.position.advanced(token=batch.token, caught_up_to=caught, applied=0)
            await self.postgres.run(
                lambda db: StreamPositionRepository(db).save(position),
                what="saving the position",
            )
            self._saved(position)
        self._reported(applied=0, lag_s=0.0)

    async def _prepare(self, batch: StreamBatch) -> _Work:
        """Fold the batch and build every new version, through the mapping, into rows."""
        base = self._latest
        first_seen: dict[str, Timestamp] = {}
        for event in batch.events:
            if event.key is not None and event.cluster_time is not None:
                first_seen.setdefault(event.key, event.cluster_time)
        documents: dict[str, Mapping[str, Any]] = {}
        deleted: list[str] = []
        reread: list[NetChange] = []
        patches: list[NetChange] = []
        floor, reread_at = base.reread_floor, self._reread_at
        for change in fold_changes(batch.events):
            seen = first_seen.get(change.key, _NEVER)
            # (one Timestamp comparison where possible: each is a Python call)
            if seen <= floor or (change.key in reread_at and seen <= reread_at[change.key]):
                reread.append(change)
            elif change.kind == "upsert":
                assert change.document is not None
                documents[change.key] = change.document
            elif change.kind == "delete":
                deleted.append(change.key)
            else:
                patches.append(change)
        restored: set[str] = set()
        from_memory: set[str] = set()
        if patches:
            reread += await self._patch(patches, documents, restored, from_memory)
        if reread:
            await self._read_again(reread, documents, deleted)
        prepared = prepare_batch(self._batch_of(documents), self.transform)
        # A set-aside document is kept byte for byte: one rebuilt from the target's rows
        # is exact in value but not in key order, so it is read from the source instead.
        rebuilt = [r.mongo_id for r in prepared.rejections if r.mongo_id in restored]
        if rebuilt:
            again = [change for change in patches if change.key in set(rebuilt)]
            for change in again:
                documents.pop(change.key)
            await self._read_again(again, documents, deleted)
            reread += again
            prepared = prepare_batch(self._batch_of(documents), self.transform)
        caught = max(batch.caught_up_to, base.caught_up_to)
        position = base.advanced(token=batch.token, caught_up_to=caught, applied=len(batch.events))
        return _Work(batch, prepared, documents, deleted, len(reread), from_memory, position)

    def _batch_of(self, documents: Mapping[str, Mapping[str, Any]]) -> list[Any]:
        """The documents to write; as BSON where the transform has a C path (cheaper to
        encode and write in C than to normalize in Python)."""
        if raw_path(self.transform) is None:
            return list(documents.values())
        return [as_bson(document) for document in documents.values()]

    def _start_commit(self, work: _Work) -> None:
        """Hand the batch to PostgreSQL; its documents are remembered as written already,
        so that the next batch can be built on them (:meth:`_settle` takes back any that
        PostgreSQL refuses)."""
        self._remember(work.documents, work.deleted, work.prepared.rejections)
        applying = self.postgres.run(
            lambda db: apply_changes(
                db,
                mapping=self.mapping,
                batch=work.prepared,
                deleted=work.deleted,
                position=work.position,
            ),
            what="applying changes",
        )
        self._committing = _Commit(work, asyncio.ensure_future(applying))

    async def _settle(self) -> None:
        """Wait for the batch being committed, if any, and count what it did."""
        committing, self._committing = self._committing, None
        if committing is None:
            return
        work = committing.work
        try:
            rejections = await committing.task
        except BaseException:
            self._written.clear()  # what the target holds is no longer known here
            raise
        refused = {r.mongo_id for r in rejections} - {r.mongo_id for r in work.prepared.rejections}
        for key in refused:
            self._written.forget(key)  # in the dead-letter table, as the source has it
        self._refused_lately |= refused
        self._saved(work.position)
        self._reread_at = {
            k: t for k, t in self._reread_at.items() if t > work.position.caught_up_to
        }
        events = work.batch.events
        self._count(
            work.prepared,
            rejections,
            deleted=len(work.deleted),
            reread=work.reread,
            events=len(events),
        )
        self._reported(applied=len(events), lag_s=_waited_s(events[0]))

    def _reported(self, *, applied: int, lag_s: float) -> None:
        """A batch is done: the status, the observer and ``on_batch`` hear of it."""
        self.status.lag_s = lag_s
        self.status.waiting = 0
        self.observer.following(applied=applied, lag_s=lag_s, waiting=0)
        if self.on_batch is not None:
            self.on_batch(self.status)

    async def _abandon(self) -> None:
        """Stopping on an error: a batch still committing is cancelled (it is read again
        on resume, its position unsaved)."""
        committing, self._committing = self._committing, None
        if committing is not None:
            committing.task.cancel()
            await asyncio.gather(committing.task, return_exceptions=True)
            self._written.clear()

    def _count(
        self,
        prepared: PreparedBatch,
        rejections: list[Rejection],
        *,
        deleted: int,
        reread: int,
        events: int,
    ) -> None:
        status = self.status
        status.batches += 1
        status.events_applied += events
        status.documents_written += len(prepared.rows) - (
            len(rejections) - len(prepared.rejections)
        )
        status.documents_deleted += deleted
        status.documents_rejected += len(rejections)
        status.documents_reread += reread
        groups: dict[str, RejectionGroup] = {}
        for rejection in rejections:
            groups.setdefault(reason_kind(rejection.reason), RejectionGroup()).add(
                1, [rejection.mongo_id]
            )
        for reason, group in groups.items():
            status.rejections.setdefault(reason, RejectionGroup()).add(group.count, group.ids)
            log.warning(
                "set aside %d changed documents: %s (e.g. _id %s)",
                group.count,
                reason,
                ", ".join(group.ids),
            )

    def _remember(
        self,
        documents: Mapping[str, Mapping[str, Any]],
        deleted: list[str],
        rejections: list[Rejection],
    ) -> None:
        """The documents written are what the target holds under their keys (once committed)."""
        refused = {rejection.mongo_id for rejection in rejections}
        for key, document in documents.items():
            if key in refused:
                self._written.forget(key)  # in the dead-letter table, as the source has it
            else:
                self._written.remember(key, document)
        for key in deleted:
            self._written.forget(key)

    async def _patch(
        self,
        patches: list[NetChange],
        documents: dict[str, Mapping[str, Any]],
        restored: set[str],
        from_memory: set[str],
    ) -> list[NetChange]:
        """Apply update descriptions to the documents the target holds; the rest to re-read.

        Each document comes from what this follower last wrote (``from_memory``), or
        else from the target's rows, read on a connection of their own while the batch
        before commits: that batch wrote every key it touched into memory, so a key read
        back is one it does not change (and its committed rows are what the target will
        hold), unless it deleted the key or the memory let the key go; only then does the
        read wait for the commit.
        """
        stored: dict[str, Any] = {}
        missing: dict[str, Any] = {}
        for change in patches:
            written = self._written.take(change.key)
            if written is None:
                missing[change.key] = change.document_id
            else:
                stored[change.key] = written
                from_memory.add(change.key)
        if missing:
            if self._committing is not None and not self._committing.work.touched.isdisjoint(
                missing
            ):
                await self._settle()
            assert self._reader is not None  # opened by run()
            stored |= await self._reader.run(
                lambda db: stored_documents(db, self.mapping, missing), what="reading documents"
            )
        unknown = []
        for change in patches:
            document = stored.get(change.key)
            if document is None:
                unknown.append(change)  # not in the target: read it from the source
                continue
            try:
                for description in change.patches:  # the document and events are ours
                    document = apply_update_in_place(document, description)
            except ValueError:
                unknown.append(change)
                continue
            documents[change.key] = document
            restored.add(change.key)
        return unknown

    async def _read_again(
        self,
        changes: list[NetChange],
        documents: dict[str, Mapping[str, Any]],
        deleted: list[str],
    ) -> None:
        current = await self.source.current([change.document_id for change in changes])
        after = await self.source.cluster_time()
        for change in changes:
            self._reread_at[change.key] = after
            if change.key in current:
                documents[change.key] = current[change.key]
            else:
                deleted.append(change.key)

    def _saved(self, position: StreamPosition) -> None:
        self.position = position
        self.status.caught_up_to = position.caught_up_to
        self._last_save = time.monotonic()


@dataclass(frozen=True)
class _Work:
    """One batch, prepared: its rows, deletes and position, and what it was built on."""

    batch: StreamBatch
    prepared: PreparedBatch
    documents: dict[str, Mapping[str, Any]]
    deleted: list[str]
    reread: int
    #: Keys whose new version was built on a document remembered, not read back.
    from_memory: set[str]
    position: StreamPosition

    @property
    def touched(self) -> set[str]:
        """Every key whose rows this batch writes or deletes."""
        return set(self.documents) | set(self.deleted)


@dataclass(frozen=True)
class _Commit:
    work: _Work
    task: asyncio.Future[list[Rejection]]


class _HistoryCheck:
    """Makes sure, on a server that would not say so, that no change was pruned unseen.

    SecantusDB lets a live stream that pruning overtakes skip what was pruned, without
    an error (probed; MongoDB fails the stream itself, so nothing is checked there), and
    reading its oldest oplog entry scans the whole oplog (4 s at 100,000 entries,
    stalling writes meanwhile). So:

    - while every change of a batch is applied within ``safe_lag_s`` of being made,
      none can have been pruned first: that would take the server's whole oplog
      (100,000 entries by default) written within those seconds, several times the
      write rate measured on it (docs/change_streams.md). The position moves on
      unchecked;
    - a follower further behind checks, beside its work, once every ``history_check_s``
      (from its start): pruning removes the oldest entries first, so if the oldest
      entry kept is not newer than the last position known safe, nothing after it was
      pruned before the follower read it. A failed check stops the follower at its next
      batch with :class:`ChangeHistoryLostError`.
    """

    def __init__(self, source: SourceCollection, position: Timestamp) -> None:
        self._source = source
        self._safe = position
        self._last_check = time.monotonic()  # the first check too waits an interval
        self._task: asyncio.Future[None] | None = None
        self._needed: bool | None = None

    def after_batch(
        self, options: FollowOptions, position: StreamPosition, *, lag_s: float
    ) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # raises what the check found
            self._task = None
        if lag_s < options.safe_lag_s:
            if self._task is None:
                self._safe = position.caught_up_to
            return
        if self._task is None and time.monotonic() - self._last_check >= options.history_check_s:
            self._task = asyncio.ensure_future(self._check(self._safe))
            self._last_check = time.monotonic()

    async def _check(self, position: Timestamp) -> None:
        if self._needed is None:
            self._needed = await self._source.prunes_silently()
        if self._needed:
            oldest = await oldest_kept_time(self._source.client)
            check_history_kept(oldest, position, namespace=self._source.namespace)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _waited_s(event: ChangeEvent) -> float:
    """How long ago the source made this change: for the oldest change of a batch just
    applied, how far the target was behind the source."""
    wall: datetime | None = event.wall_time
    if wall is None:
        return 0.0
    if wall.tzinfo is None:
        wall = wall.replace(tzinfo=UTC)
    return max((datetime.now(UTC) - wall).total_seconds(), 0.0)


def raised_floor(position: StreamPosition, now: Timestamp) -> StreamPosition:
    """The position to resume from after a restart: re-read everything changed until now."""
    return replace(position, reread_floor=max(position.reread_floor, now))
