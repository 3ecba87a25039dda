"""Per-row transforms a migration can apply instead of the plain :func:`document_to_row`.

``pseudonymise_email`` is the CPU-heavy one the notebooks and benchmark use to
show when processes beat threads: it validates the user, then replaces the
e-mail's local part with a keyed hash, stretched over ``rounds`` HMAC rounds
(Python-level work that holds the GIL, as real per-row business logic does).
Pass it with :func:`functools.partial` to change the rounds: partials of
module-level functions pickle, so process workers can run them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from migrationkit._normalize.rows import Row, Transform, document_to_row

#: A demo key. A real deployment passes its own secret through ``functools.partial``.
DEMO_KEY = b"migrationkit-demo-key"
DEFAULT_ROUNDS = 50


def pseudonym(value: str, *, key: bytes = DEMO_KEY, rounds: int = DEFAULT_ROUNDS) -> str:
    """A stable, keyed, hard-to-reverse 16-hex-digit stand-in for ``value``."""
    digest = value.encode()
    for _ in range(rounds):
        digest = hmac.new(key, digest, hashlib.sha256).digest()
    return digest.hex()[:16]


def pseudonymise_email(
    document: Mapping[str, Any], *, key: bytes = DEMO_KEY, rounds: int = DEFAULT_ROUNDS
) -> Row:
    """Validate like :func:`document_to_row`, then hide who the e-mail belongs to."""
    mongo_id, username, email, age, registered_at = document_to_row(document)
    local, _, domain = email.partition("@")
    return (
        mongo_id,
        username,
        f"{pseudonym(local, key=key, rounds=rounds)}@{domain}",
        age,
        registered_at,
    )


#: Transforms by the name the CLI and notebooks use.
TRANSFORMS: dict[str, Transform] = {
    "validate": document_to_row,
    "pseudonymise": pseudonymise_email,
}
