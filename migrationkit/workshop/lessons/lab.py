"""A notebook's playground: its own collection and table, seeded once, migrated many times.

Every notebook opens a :class:`Lab` with a name of its own, so notebooks (and the
tests) never read or truncate each other's data. How many users a notebook moves
comes from one place, :func:`notebook_rows`, which CI turns down with an
environment variable.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from migrationkit._executors.dispatch import DISPATCHERS as BUILT_IN_DISPATCHERS
from migrationkit._normalize.rows import Transform, document_to_row
from migrationkit._normalize.transforms import pseudonymise_email
from migrationkit._observe.observe import Observer
from migrationkit._observe.progress import NullProgress, Progress
from migrationkit._run.migration import migrate
from migrationkit._run.report import MigrationReport
from migrationkit._servers.endpoints import Endpoints
from migrationkit._servers.resolve import resolve_endpoints
from migrationkit._settings.settings import Backend, Settings, Writer
from migrationkit._source.connection import MongoConnectionHandler
from migrationkit._source.repository import UserMongoRepository
from migrationkit.workshop.lessons.results import Measurement
from migrationkit.workshop.seeding import seed_users

#: The environment variable that sets how many users the notebooks move.
ROWS_ENV = "MIGRATIONKIT_NOTEBOOK_ROWS"
#: Big enough for the stored outputs to mean something; CI sets a smaller number.
DEFAULT_ROWS = 50_000

#: HMAC rounds of the "heavy" transform: enough per-row CPU that the work, not the
#: reading, decides the speed (~0.5 ms a row on one core of the 2-core dev machine).
HEAVY_ROUNDS = 400

#: The per-row transforms a lesson can pick, by the name the control panels show.
LESSON_TRANSFORMS: dict[str, Transform] = {
    "validate": document_to_row,
    "pseudonymise": pseudonymise_email,
    "pseudonymise-heavy": functools.partial(pseudonymise_email, rounds=HEAVY_ROUNDS),
}

#: The built-in dispatchers, by the names the control panels show.
DISPATCHERS = tuple(BUILT_IN_DISPATCHERS.names())


def notebook_rows(default: int = DEFAULT_ROWS) -> int:
    """``$MIGRATIONKIT_NOTEBOOK_ROWS`` (underscores allowed: ``5_000``), else ``default``."""
    raw = os.environ.get(ROWS_ENV, "").replace("_", "").strip()
    rows = int(raw) if raw else default
    if rows < 1:
        raise ValueError(f"{ROWS_ENV} must be at least 1, got {rows}")
    return rows


def default_choice(rows: int | None = None) -> Choice:
    """Where the notebooks start: 2 asyncio workers, COPY, ``rows`` users in about 20 batches.

    ``rows`` defaults to :func:`notebook_rows`; 20 batches give every worker several.
    """
    rows = rows or notebook_rows()
    return Choice(rows=rows, batch_size=max(50, rows // 20))


@dataclass(frozen=True)
class Choice:
    """What a learner picked in a control panel (or a notebook passed in code)."""

    backend: Backend = "asyncio"
    workers: int = 2
    batch_size: int = 5_000
    writer: Writer = "copy"
    transform: str = "validate"
    rows: int = 10_000
    dispatch: str = "round-robin"
    scenario: str = "uniform"

    def but(self, **changes: Any) -> Choice:
        """A copy with some fields changed: ``choice.but(backend="threading")``."""
        return replace(self, **changes)


class Lab:
    """One collection and one table on the servers, and the runs a notebook makes on them."""

    def __init__(self, settings: Settings, endpoints: Endpoints, *, user_seed: int = 0) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.user_seed = user_seed  # same seed, same users
        self.seeded: int | None = None  # users in the collection, as this lab seeded it

    def __repr__(self) -> str:
        return (
            f"Lab(collection={self.settings.mongo_collection!r}, "
            f"table={self.settings.pg_table!r}, seeded={self.seeded}, {self.endpoints!r})"
        )

    @asynccontextmanager
    async def collection(self) -> AsyncIterator[UserMongoRepository]:
        """The lab's users collection, on a client open for the block."""
        async with MongoConnectionHandler(
            self.endpoints.mongo_uri, driver=self.settings.mongo_driver
        ) as client:
            database = client[self.settings.mongo_database]
            yield UserMongoRepository(database[self.settings.mongo_collection])

    async def seed(
        self, rows: int, *, batch_size: int = 10_000, progress: Progress | None = None
    ) -> Measurement:
        """Replace the collection with ``rows`` reproducible users; the time it took."""
        async with self.collection() as users:
            started = time.perf_counter()
            inserted = await seed_users(
                users, rows, seed=self.user_seed, batch_size=batch_size, progress=progress
            )
            seconds = time.perf_counter() - started
        self.seeded = inserted
        return Measurement(f"batch {batch_size:,}", inserted, seconds, {"batch_size": batch_size})

    async def ensure_seeded(self, rows: int, progress: Progress | None = None) -> None:
        """Seed ``rows`` users unless this lab already did."""
        if self.seeded != rows:
            await self.seed(rows, progress=progress)

    def settings_for(self, choice: Choice) -> Settings:
        """The lab's settings with the backend, workers, batch size and writer of ``choice``."""
        return self.settings.model_copy(
            update={
                "backend": choice.backend,
                "workers": choice.workers,
                "batch_size": choice.batch_size,
                "writer": choice.writer,
                "dispatch": choice.dispatch,
            }
        )

    async def migrate(
        self,
        choice: Choice,
        *,
        progress: Progress | None = None,
        observer: Observer | None = None,
    ) -> MigrationReport:
        """Migrate the lab's collection (seeding ``choice.rows`` users first if needed)."""
        await self.ensure_seeded(choice.rows, progress)
        return await migrate(
            self.settings_for(choice),
            endpoints=self.endpoints,
            progress=progress or NullProgress(),
            transform=LESSON_TRANSFORMS[choice.transform],
            observer=observer,
        )

    async def run(self, choice: Choice, progress: Progress | None = None) -> Measurement:
        """What a control panel's Run button does by default: one migration, measured."""
        report = await self.migrate(choice, progress=progress)
        label = f"{choice.backend}/{choice.writer} x{choice.workers}"
        if choice.transform != "validate":
            label += f" {choice.transform}"
        measurement = Measurement.from_report(report, label)
        return replace(measurement, params={**measurement.params, "transform": choice.transform})

    async def run_seeding(self, choice: Choice, progress: Progress | None = None) -> Measurement:
        """The seeding notebook's Run button: seed ``choice.rows`` users in ``batch_size``."""
        return await self.seed(choice.rows, batch_size=choice.batch_size, progress=progress)


async def open_lab(name: str, *, rows: int | None = None, **settings: Any) -> Lab:
    """A lab with collection and table ``<name>_users`` (seeded with ``rows`` users if given).

    Starts or reuses the embedded servers unless ``MIGRATIONKIT_MONGO_URI`` and
    ``MIGRATIONKIT_PG_DSN`` point elsewhere; ``settings`` override anything else. The
    ``_users`` suffix lets ``reset_workshop()`` tidy the notebooks' data too.
    """
    options: dict[str, Any] = {
        "mongo_collection": f"{name}_users",
        "pg_table": f"{name}_users",
        "mapping": "users",  # the lessons' collections are copies of the workshop's users
    }
    lab_settings = Settings(**(options | settings))
    endpoints = await asyncio.to_thread(resolve_endpoints, lab_settings)
    lab = Lab(lab_settings, endpoints)
    if rows is not None:
        await lab.seed(rows)
    return lab
