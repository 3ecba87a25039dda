"""``Endpoints``: where the two databases are, as a MongoDB URI and a PostgreSQL DSN."""

from __future__ import annotations

from dataclasses import dataclass

from migrationkit._redact import redact_uri


@dataclass(frozen=True)
class Endpoints:
    """A MongoDB URI and a PostgreSQL DSN. The DSN may hold a password: never log it raw."""

    mongo_uri: str
    pg_dsn: str

    def __repr__(self) -> str:
        mongo, pg = redact_uri(self.mongo_uri), redact_uri(self.pg_dsn)
        return f"Endpoints(mongo_uri={mongo!r}, pg_dsn={pg!r})"

    def describe(self) -> str:
        """Two readable lines, passwords hidden: what the CLI and the notebooks print."""
        return f"MongoDB:    {redact_uri(self.mongo_uri)}\nPostgreSQL: {redact_uri(self.pg_dsn)}"
