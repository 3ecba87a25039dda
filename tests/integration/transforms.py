"""Transforms for integration tests; module-level so process workers can import them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrationkit.models import Row, document_to_row


def overflowing_age(document: Mapping[str, Any]) -> Row:
    """Skip validation and hand PostgreSQL an age no INTEGER column can hold."""
    mongo_id, username, email, _, registered_at = document_to_row(document)
    return (mongo_id, username, email, 2**40, registered_at)
