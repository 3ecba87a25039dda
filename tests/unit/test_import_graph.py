"""The package's import graph: no cycles (function-level imports included), layers kept.

Every ``import``/``from … import`` anywhere in a module counts, inside functions and
``TYPE_CHECKING`` blocks too: a cycle hidden in a function is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "migrationkit"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(module: str) -> set[str]:
    """The migrationkit modules ``module`` imports (a package's names resolved to submodules)."""
    found: set[str] = set()
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in GRAPH[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def is_package_init(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def test_no_module_imports_itself_back_through_others() -> None:
    # A package's __init__ importing its own submodules is how re-exports work, not a
    # cycle of code; leave those edges out.
    for module, imported in GRAPH.items():
        if is_package_init(module):
            GRAPH[module] = {name for name in imported if not name.startswith(module + ".")}
    assert cycles() == []


def test_the_engine_never_imports_the_workshop_or_the_command_line() -> None:
    engine = [
        name for name in GRAPH if name.startswith("migrationkit._") and "__main__" not in name
    ]
    offenders = {
        module: sorted(
            name
            for name in GRAPH[module]
            if name.startswith(("migrationkit.workshop", "migrationkit._cli"))
        )
        for module in engine
        if not module.startswith("migrationkit._cli")
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_the_executors_know_no_database() -> None:
    databases = ("migrationkit._target", "migrationkit._source", "migrationkit._servers")
    offenders = {
        module: sorted(name for name in GRAPH[module] if name.startswith(databases))
        for module in GRAPH
        if module.startswith("migrationkit._executors")
    }
    assert {module: names for module, names in offenders.items() if names} == {}
    for module in GRAPH:
        if module.startswith("migrationkit._executors"):
            source = MODULES[module].read_text(encoding="utf-8")
            assert "asyncpg" not in source, module
            assert "pymongo" not in source, module


def test_argument_parsing_lives_only_in_the_command_line() -> None:
    # The workshop's two instructor tools (``python -m migrationkit.workshop.exercises``
    # and ``….exercises.stubs``) are programs of their own; every ``migrationkit``
    # subcommand and all of the engine parse nothing.
    parsing = sorted(
        module
        for module, path in MODULES.items()
        if "import argparse" in path.read_text(encoding="utf-8")
    )
    assert [module for module in parsing if not module.startswith("migrationkit._cli")] == [
        "migrationkit.workshop.exercises.__main__",
        "migrationkit.workshop.exercises.stubs",
    ]
