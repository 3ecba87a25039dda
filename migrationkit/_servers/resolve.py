"""Which servers a run uses: the configured URI/DSN, else the embedded servers."""

from __future__ import annotations

from migrationkit._servers.embedded import EmbeddedServers
from migrationkit._servers.endpoints import Endpoints
from migrationkit._settings.settings import Settings


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Use the configured URIs; start (or reuse) the embedded servers for any that is unset."""
    mongo = settings.mongo_uri.get_secret_value() if settings.mongo_uri else None
    pg = settings.pg_dsn.get_secret_value() if settings.pg_dsn else None
    if mongo is None or pg is None:
        embedded = EmbeddedServers().start()
        mongo = mongo or embedded.mongo_uri
        pg = pg or embedded.pg_dsn
    return Endpoints(mongo_uri=mongo, pg_dsn=pg)
