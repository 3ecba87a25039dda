"""Where the databases are: the configured URI/DSN, else the embedded servers."""

from __future__ import annotations

from dataclasses import dataclass

from migrationkit.settings import Settings, redact_uri


@dataclass(frozen=True)
class Endpoints:
    """A MongoDB URI and a PostgreSQL DSN. The DSN may hold a password: never log it raw."""

    mongo_uri: str
    pg_dsn: str

    def __repr__(self) -> str:
        mongo, pg = redact_uri(self.mongo_uri), redact_uri(self.pg_dsn)
        return f"Endpoints(mongo_uri={mongo!r}, pg_dsn={pg!r})"


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Use the configured URIs; start (or reuse) the embedded servers for any that is unset."""
    mongo = settings.mongo_uri.get_secret_value() if settings.mongo_uri else None
    pg = settings.pg_dsn.get_secret_value() if settings.pg_dsn else None
    if mongo is None or pg is None:
        from migrationkit.embedded import EmbeddedServers

        embedded = EmbeddedServers().start()
        mongo = mongo or embedded.mongo_uri
        pg = pg or embedded.pg_dsn
    return Endpoints(mongo_uri=mongo, pg_dsn=pg)
