"""Named implementations that users can add to: dispatchers and row writers.

A name is either registered (``register("mine", MyDispatcher)``) or an import path,
``"module:attribute"``, so code in a learner's file (or any package) plugs into
``migrate()`` and the CLI (``--dispatch round_robin:MyRoundRobin``) without
being registered first.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from migrationkit._errors import ConfigurationError

T = TypeVar("T")


class Registry(Generic[T]):
    """A ``kind`` of plug-in by name: ``registry.get("copy")`` or ``get("pkg.mod:func")``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Make ``item`` available as ``name`` (replacing an earlier one of that name)."""
        if not name or ":" in name:
            raise ValueError(f"a {self.kind} name must be non-empty and without ':': {name!r}")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a test's temporary plug-in, say); unknown names are ignored."""
        self._items.pop(name, None)

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> T:
        """The item registered as ``name``, or imported from ``"module:attribute"``."""
        if name in self._items:
            return self._items[name]
        if ":" not in name:
            raise ConfigurationError(
                f"unknown {self.kind} {name!r}; choose one of {', '.join(self._items)} "
                "or give an import path, module:attribute"
            )
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(
                f"{self.kind} {name!r}: cannot import {module_name}: {exc}"
            ) from exc
        try:
            item: T = getattr(module, attribute)
        except AttributeError:
            raise ConfigurationError(
                f"{self.kind} {name!r}: {module_name} has no attribute {attribute!r}"
            ) from None
        return item
