"""Transforms for integration tests; module-level so process workers can import them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from migrationkit._normalize.rows import Row, document_to_row

POISON_AGE = 80


def overflowing_age_for_the_old(document: Mapping[str, Any]) -> Row:
    """Skip validation for users over 80 and hand PostgreSQL an age INTEGER cannot hold."""
    mongo_id, username, email, age, registered_at = document_to_row(document)
    return (mongo_id, username, email, 2**40 if age > POISON_AGE else age, registered_at)


def broken_transform(document: Mapping[str, Any]) -> Row:
    """A bug, not bad data: it must fail the run, not reject documents."""
    raise RuntimeError("the transform has a bug")


def slow_transform(document: Mapping[str, Any]) -> Row:
    """About 0.2 ms a row: slow enough for a fault to land mid-run."""
    time.sleep(0.0002)
    return document_to_row(document)
