"""``MongoConnectionHandler``: an async context manager around a pinged MongoDB client.

"Cannot connect" driver errors become :class:`ServerUnavailableError` with the
address redacted, so a wrong password never reaches a log.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from pymongo import MongoClient
from pymongo.errors import ConfigurationError as PyMongoConfigurationError
from pymongo.errors import PyMongoError

from migrationkit._errors import ServerUnavailableError
from migrationkit._redact import redact_uri
from migrationkit._settings.settings import MongoDriver

CONNECT_TIMEOUT_S = 10.0


def _client_options(uri: str) -> dict[str, Any]:
    # Decode as the rest of the kit does (migrationkit._normalize.rows.BSON_OPTIONS): a
    # date outside Python's range must not fail a whole batch. (Drivers refuse the
    # "surrogateescape" handler there; raw BSON, decoded by the workers, has it.)
    options: dict[str, Any] = {
        "tz_aware": True,
        "datetime_conversion": "DATETIME_AUTO",
        "uuidRepresentation": "standard",
    }
    if "serverselectiontimeoutms" not in uri.lower():  # keyword options beat the URI's
        options["serverSelectionTimeoutMS"] = int(CONNECT_TIMEOUT_S * 1000)
    return options


def _mongo_client(uri: str, driver: MongoDriver) -> Any:
    if driver == "motor":
        from motor.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(uri, **_client_options(uri))
    from pymongo import AsyncMongoClient

    return AsyncMongoClient(uri, **_client_options(uri))


def blocking_mongo_client(uri: str) -> MongoClient[dict[str, Any]]:
    """A synchronous client with the kit's options, for a thread of its own.

    The change stream is read on one (:mod:`migrationkit._source.stream`) so that the
    next batch is asked for while the event loop's thread applies the last.
    """
    return MongoClient(uri, **_client_options(uri))


class MongoConnectionHandler:
    """``async with MongoConnectionHandler(uri) as client:`` — a pinged, ready client.

    ``driver`` picks Motor or PyMongo's native ``AsyncMongoClient``; both offer
    the same collection API, so nothing above this class knows which it got.
    """

    def __init__(self, uri: str, *, driver: MongoDriver = "motor") -> None:
        self._uri = uri
        self._driver = driver
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("MongoConnectionHandler is not open; use `async with`")
        return self._client

    async def __aenter__(self) -> Any:
        try:
            self._client = _mongo_client(self._uri, self._driver)
            await self._client.admin.command("ping")
        except (PyMongoError, PyMongoConfigurationError) as exc:
            await self._close()
            raise ServerUnavailableError(
                f"cannot reach MongoDB at {redact_uri(self._uri)}: {type(exc).__name__}"
            ) from exc
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        closed = client.close()
        if closed is not None:  # AsyncMongoClient.close() is a coroutine, Motor's is not
            await closed
