"""The import arrows between the project's own modules: no circles, not even through function-level imports.

import-linter (``lint-imports``, configured in pyproject.toml) checks the layers and the forbidden arrows; it does
not look for circles between single modules, and a function-level import hides a circle from Python itself until
the day the import order changes. This test reads every module with ``ast`` (so nothing is imported), collects
every ``import`` and ``from ... import`` anywhere in the module (inside functions too), leaves out the ones under
``if TYPE_CHECKING:`` (they never run), and fails naming each circle it finds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The installed packages of the project (pyproject.toml [tool.setuptools.packages.find]) and the benchmarks.
PACKAGES = ("bot", "cli", "commands", "config", "domain", "integrations", "services", "storage", "web", "devtools",
            "bench")


# Circles allowed to exist (none since the refactor of issue 11). The list only shrinks: a new circle fails, and so
# does one listed here that no longer exists.
KNOWN_CIRCLES: list[frozenset[str]] = []


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # alembic loads the migration scripts by path; nothing imports them
            found[module_name(path)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in the tree, skipping the body (not the else) of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that ``name`` imports: ``from a import b`` counts as ``a.b`` when that is a module."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            # ``from a import b``: the module ``a.b`` when there is one, else ``a`` (b is a name defined in a)
            candidates = [f"{prefix}.{alias.name}" for alias in node.names]
        for candidate in candidates:
            # the nearest enclosing project module: ``import a.b.c`` where only ``a.b`` is ours, or ``from a import
            # name`` where ``name`` is a function. Parent packages that Python runs on the way are not counted (as
            # import-linter does not): every submodule would otherwise close a circle with its package's __init__.
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest circle per strongly connected component of the graph (Tarjan), as module names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    def strongconnect(start: str) -> None:
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return [_shortest_cycle(graph, set(component), component[0]) for component in components]


def _shortest_cycle(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    """The shortest path from ``start`` back to itself inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def test_the_cycle_finder_sees_a_function_level_circle_and_not_a_type_checking_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from commands.check import X\n"
        "def f():\n    from bot import runtime\n"
        "from . import sibling\n"
    )
    tree = ast.parse(source)
    names = sorted(
        (n.module or "" if isinstance(n, ast.ImportFrom) else "") + ":" + ",".join(a.name for a in n.names)
        for n in _import_nodes(tree)
    )
    assert names == [":sibling", "bot:runtime", "typing:TYPE_CHECKING"]


def test_no_import_circles_between_project_modules() -> None:
    graph = import_graph()
    assert "services.aanvraag" in graph and "commands" in graph, "the module scan found the project"
    cycles = find_cycles(graph)
    new = [c for c in cycles if not any(set(c) <= known for known in KNOWN_CIRCLES)]
    described = ["  " + " -> ".join(cycle) for cycle in new]
    assert not new, "import circles (function-level imports included):\n" + "\n".join(described)
    gone = [sorted(known) for known in KNOWN_CIRCLES if not any(set(c) <= known for c in cycles)]
    assert not gone, f"these circles are gone: remove them from KNOWN_CIRCLES so they cannot come back: {gone}"


def test_every_installed_package_logs_below_warning() -> None:
    """The log filter lets INFO through only for the project's own loggers: a package missing there goes silent."""
    import tomllib

    from bot.logs import OWN_PACKAGES

    found = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    installed = {pattern.rstrip("*") for pattern in found}
    assert installed <= set(OWN_PACKAGES), f"not in bot.logs.OWN_PACKAGES: {sorted(installed - set(OWN_PACKAGES))}"
