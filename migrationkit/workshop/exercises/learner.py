"""Load a learner's exercise file afresh, so a re-run check sees the latest edit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from migrationkit.workshop.exercises.feedback import Hint


def load(name: str, directory: Path | str | None = None) -> ModuleType:
    """Import ``<directory>/<name>.py`` (default: the current folder) as module ``name``.

    It replaces any earlier import of the same name, so edits take effect without
    restarting the kernel; the module stays importable by name, which is what lets
    process workers unpickle functions defined in it.
    """
    path = Path(directory or Path.cwd()) / f"{name}.py"
    if not path.exists():
        raise Hint(
            f"there is no {path.name} in {path.parent}",
            "Open this notebook from the notebooks/exercises folder (the file sits beside it), "
            "or restore the file with "
            f"`python -m migrationkit.workshop.exercises.stubs --reset {name}`.",
        )
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise Hint(
            f"{path.name} does not parse: {exc.msg} (line {exc.lineno})",
            "Python stops at the line named: look for a missing bracket, colon or indent.",
        ) from None
    except Exception as exc:
        del sys.modules[name]
        raise Hint(
            f"importing {path.name} raised {type(exc).__name__}: {exc}",
            "Code at the top level of the file runs on import: keep it inside functions.",
        ) from None
    return module


def attribute(module: ModuleType, name: str, *, kind: str) -> object:
    """``module.name``, or a hint that it went missing (renamed, deleted)."""
    try:
        return getattr(module, name)
    except AttributeError:
        raise Hint(
            f"{Path(module.__file__ or module.__name__).name} has no {kind} {name}",
            f"The check looks for {kind} {name} by that name: keep its name as the stub had it.",
        ) from None
