"""What a sample of documents held, path by path, in one pass and bounded memory.

:class:`FieldStats` walks decoded documents once and keeps, per path, how often it is
present and which BSON types it holds (a capped number of keys per object and of
paths overall); :func:`why_a_map` says from those numbers when an object is a map
whose keys are data rather than a record.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrationkit._mapping.spec import join_path
from migrationkit._mapping.types import bson_type

#: Path part for "each element of this array" (BSON keys cannot contain NUL).
ITEMS = "\x00[]"
#: Path part for "the value under any key of this map" (keys that look like values).
MAP_VALUES = "\x00*"

Path = tuple[str, ...]

# Keys that are data, not field names: ids, numbers, dates, hashes.
_VALUE_LIKE_KEYS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ObjectId hex", re.compile(r"[0-9a-fA-F]{24}")),
    ("UUID", re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")),
    ("number", re.compile(r"[+-]?\d+(?:\.\d+)?")),
    (
        "ISO date",
        re.compile(
            r"\d{4}-\d{2}(?:-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?)?"
        ),
    ),
    ("hash", re.compile(r"(?=[a-fA-F]*\d)[0-9a-fA-F]{16,}")),
)


def value_like_kind(key: str) -> str | None:
    """What ``key`` looks like if it is a value (``"ObjectId hex"``, ``"ISO date"``…), else None."""
    for kind, pattern in _VALUE_LIKE_KEYS:
        if pattern.fullmatch(key):
            return kind
    return None


def display_path(path: Path) -> str:
    """``("a", ITEMS, "b")`` as ``a[].b``, map values as ``a.*``; dots in keys escaped."""
    text = ""
    for part in path:
        if part == ITEMS:
            text += "[]"
        else:
            key = "*" if part == MAP_VALUES else join_path((part,))
            text += f".{key}" if text else key
    return text


@dataclass
class PathStats:
    """What one path held across the documents walked (mutable while collecting)."""

    documents: int = 0
    """Documents in which the path occurs at least once."""
    occurrences: int = 0
    """Values seen (more than ``documents`` under arrays)."""
    types: Counter[str] = field(default_factory=Counter)
    """BSON type alias → values of that type (``null`` is a type; missing is absence)."""
    min_length: int | None = None
    max_length: int = 0
    total_length: int = 0
    """Array lengths (``types["array"]`` arrays)."""
    total_keys: int = 0
    """Keys over all objects at this path (``types["object"]`` objects)."""
    keys_overflowed: bool = False
    """More distinct keys than the per-object cap; the rest were counted, not followed."""
    value_like_keys: dict[str, str] = field(default_factory=dict)
    """Distinct keys that look like values (up to the cap) → their kind (``"UUID"``…)."""
    value_like_occurrences: int = 0
    """Keys, over all objects here, that look like values."""
    children: dict[str, PathStats] = field(default_factory=dict)
    """Sub-keys in first-seen order; ``ITEMS`` for array elements, ``MAP_VALUES``."""
    last_document: int = field(default=-1, repr=False)

    @property
    def objects(self) -> int:
        return self.types["object"]

    @property
    def non_null(self) -> Counter[str]:
        """The types seen, without ``null``."""
        return Counter({name: count for name, count in self.types.items() if name != "null"})

    @property
    def distinct_keys(self) -> int:
        """Distinct sub-keys seen (a lower bound when ``keys_overflowed``)."""
        named = len(self.children) - (MAP_VALUES in self.children) - (ITEMS in self.children)
        return named + len(self.value_like_keys)

    @property
    def mean_keys(self) -> float:
        return self.total_keys / self.objects if self.objects else 0.0

    @property
    def elements(self) -> PathStats | None:
        """Statistics of this array's elements (None if every array was empty)."""
        return self.children.get(ITEMS)

    @property
    def mean_length(self) -> float:
        arrays = self.types["array"]
        return self.total_length / arrays if arrays else 0.0


class FieldStats:
    """Per-path statistics over a stream of documents, in one pass and bounded memory.

    ``max_keys`` caps the distinct keys followed per nested object (a map keyed by
    ids would otherwise grow a path per id); ``max_paths`` caps paths overall.
    Keys that look like values are never followed one by one: their values are
    pooled under one ``MAP_VALUES`` path.
    """

    def __init__(self, *, max_keys: int = 256, max_paths: int = 20_000) -> None:
        self.root = PathStats()
        self.max_keys = max_keys
        self.max_paths = max_paths
        self.paths = 0
        self.untracked_values = 0
        """Values not examined because their path was new after ``max_paths`` paths."""

    @property
    def documents(self) -> int:
        return self.root.documents

    @classmethod
    def collect(cls, documents: Iterable[Mapping[str, Any]], **limits: int) -> FieldStats:
        stats = cls(**limits)
        for document in documents:
            stats.add(document)
        return stats

    def add(self, document: Mapping[str, Any]) -> None:
        number = self.root.documents
        self._record(self.root, document, number)

    def get(self, path: Path) -> PathStats | None:
        node: PathStats | None = self.root
        for part in path:
            if node is None:
                return None
            node = node.children.get(part)
        return node

    def _record(self, node: PathStats, value: Any, number: int) -> None:
        if node.last_document != number:
            node.last_document = number
            node.documents += 1
        node.occurrences += 1
        kind = bson_type(value)
        node.types[kind] += 1
        if kind == "object":
            self._record_object(
                node, value if isinstance(value, Mapping) else value.as_doc(), number
            )
        elif kind == "array":
            self._record_array(node, value, number)

    def _record_object(self, node: PathStats, value: Mapping[str, Any], number: int) -> None:
        node.total_keys += len(value)
        is_root = node is self.root
        for key, item in value.items():
            child = node.children.get(key)
            if child is None:
                child = self._new_child(node, key, is_root=is_root)
                if child is None:
                    continue
            self._record(child, item, number)

    def _record_array(self, node: PathStats, value: list[Any], number: int) -> None:
        length = len(value)
        node.total_length += length
        node.max_length = max(node.max_length, length)
        node.min_length = length if node.min_length is None else min(node.min_length, length)
        if not value:
            return
        elements = node.children.get(ITEMS) or self._adopt(node, ITEMS)
        if elements is None:
            return
        for item in value:
            self._record(elements, item, number)

    def _new_child(self, node: PathStats, key: str, *, is_root: bool) -> PathStats | None:
        # A key seen for the first time: follow it, pool it with the map's values,
        # or (past a cap) only count it.
        kind = node.value_like_keys.get(key) or value_like_kind(key)
        if kind is not None:
            node.value_like_occurrences += 1
            if len(node.value_like_keys) < self.max_keys:
                node.value_like_keys[key] = kind
            else:
                node.keys_overflowed = True
            return node.children.get(MAP_VALUES) or self._adopt(node, MAP_VALUES)
        if not is_root and len(node.children) >= self.max_keys:
            node.keys_overflowed = True
            return None
        return self._adopt(node, key)

    def _adopt(self, node: PathStats, key: str) -> PathStats | None:
        if self.paths >= self.max_paths:
            self.untracked_values += 1
            return None
        self.paths += 1
        child = node.children[key] = PathStats()
        return child


#: An object whose distinct keys number more than this, and ``MAP_KEY_SPREAD`` times the
#: keys of one object on average, has a key set that varies: a map, not a record.
MAP_MIN_DISTINCT_KEYS = 20
MAP_KEY_SPREAD = 3


def value_like_summary(node: PathStats) -> str:
    """How many of ``node``'s keys look like values, of which kinds, with two examples."""
    kinds = Counter(node.value_like_keys.values())
    more = "+" if node.keys_overflowed else ""
    described = ", ".join(f"{count:,}{more} {kind}" for kind, count in kinds.most_common())
    examples = ", ".join(repr(key) for key in list(node.value_like_keys)[:2])
    return f"keys look like values ({described} keys, e.g. {examples})"


def why_a_map(node: PathStats, *, max_keys: int) -> str | None:
    """Why the object at ``node`` is a map whose keys are data, or None if it is a record."""
    if node.value_like_occurrences * 2 > node.total_keys:
        return value_like_summary(node)
    distinct = node.distinct_keys
    if node.keys_overflowed:
        return f"more than {max_keys:,} distinct keys (only the first were followed)"
    if distinct > MAP_MIN_DISTINCT_KEYS and distinct >= MAP_KEY_SPREAD * node.mean_keys:
        return (
            f"the key set varies across documents: {distinct:,} distinct keys, "
            f"{node.mean_keys:.1f} per object on average"
        )
    return None
