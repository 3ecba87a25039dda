"""Column and table names for inferred fields: folded, unique, within 63 bytes, stable.

A name that clashes (with the kit's own columns or another field) or is too long gets
a hash suffix that depends only on the field's path, so re-inferring names it alike.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from migrationkit._mapping.field_stats import Path
from migrationkit._mapping.spec import MAX_IDENTIFIER_BYTES


def fold_name(text: str) -> str:
    """A lower-case identifier from a field name: runs of anything but letters, digits
    and ``_`` become one ``_``; a leading digit gets a ``_`` in front."""
    folded = re.sub(r"\W+", "_", text.casefold())
    # Trim only the underscores this made; a field's own leading "_" is part of its name.
    folded = folded.rstrip("_") if not text.endswith("_") else folded
    if not text.startswith("_"):
        folded = folded.lstrip("_")
    if not folded:
        return "field"
    return f"_{folded}" if folded[0].isdigit() else folded


def stable_suffix(seed: str) -> str:
    """Six hex digits that depend only on ``seed``: the same path always gets the same name."""
    return hashlib.blake2b(seed.encode("utf-8", "surrogatepass"), digest_size=3).hexdigest()


def with_suffix(name: str, seed: str) -> str:
    """``name_<hash>``, its stem cut (at a character boundary) to fit 63 bytes."""
    suffix = f"_{stable_suffix(seed)}"
    room = MAX_IDENTIFIER_BYTES - len(suffix)
    stem = name.encode("utf-8")[:room].decode("utf-8", "ignore")
    return stem + suffix


def assign_names(
    wanted: Iterable[tuple[Path, str, str]], *, reserved: Iterable[str]
) -> dict[Path, tuple[str, str | None]]:
    """Unique, safe column names: ``(path, raw name, folded name)`` → ``(name, warning)``.

    A name that folds to one already taken — by the kit's own columns, or by another
    field — gets a stable hash suffix, and so does one longer than 63 bytes. When several
    fields fold to one name, the field spelt exactly so keeps it (``name`` over ``Name``).
    """
    items = list(wanted)
    taken = set(reserved)
    claims: dict[str, list[tuple[Path, str]]] = {}
    for path, raw, folded in items:
        claims.setdefault(folded, []).append((path, raw))
    keeper: dict[str, Path] = {}
    for folded, claimants in claims.items():
        if folded in taken or len(folded.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            continue
        exact = [path for path, raw in claimants if raw == folded]
        keeper[folded] = exact[0] if exact else claimants[0][0]
    names: dict[Path, tuple[str, str | None]] = {}
    for path, raw, folded in items:
        seed = "\x00".join(path)
        if keeper.get(folded) == path:
            names[path] = (folded, None)
            taken.add(folded)
            continue
        name = with_suffix(folded, seed)
        while name in taken:  # a hash collision: vanishingly rare, still never a duplicate
            seed += "\x00"
            name = with_suffix(folded, seed)
        taken.add(name)
        names[path] = (
            name,
            _rename_reason(raw, folded, name, reserved=set(reserved), claims=claims),
        )
    return names


def _rename_reason(
    raw: str, folded: str, name: str, *, reserved: set[str], claims: Mapping[str, list[Any]]
) -> str:
    if folded in reserved:
        return f"{raw!r} would be {folded!r}, one of the kit's own columns: renamed {name!r}"
    if len(folded.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        size = len(folded.encode("utf-8"))
        return f"{raw!r} is {size} bytes, over PostgreSQL's 63: truncated to {name!r}"
    others = " and ".join(repr(other) for _, other in claims[folded] if other != raw)
    return f"{raw!r} folds to {folded!r}, as {others} does: renamed {name!r}"


def fold_path(keys: Path) -> str:
    return "__".join(fold_name(key) for key in keys) or "value"
