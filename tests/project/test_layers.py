"""The project's modules import one way, read from their source with ``ast``.

(a) No import cycle between the project's modules; (b) no import of a project
module inside a function or method (a lazy import hides a cycle); (c) no
module imports a package of a layer above its own, nor a package beside it in
the same layer. ``tests`` is exempt from (b) and (c).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure  # source reading: no process, one run

ROOT = Path(__file__).resolve().parents[2]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("actors",),
    ("supervision",),
    ("writers",),  # the S3 writer keeps its abort retrier under a supervisor
    ("uploads",),
    ("server",),
    ("client",),  # the client speaks the server's codec (server.protocol), nothing else of it
    ("benchmarks",),
    ("cli",),
)
"""Top-level packages from the bottom up: each may import only its own package
and those of lower layers."""

EXEMPT = ("tests",)

KNOWN_OFFENDERS: frozenset[str] = frozenset()
"""Modules whose own imports are not checked (none: keep it that way)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_files() -> dict[str, Path]:
    """Every module of the project's packages (and top-level modules), by dotted name."""
    found: dict[str, Path] = {}
    for top in sorted(ROOT.iterdir()):
        if top.is_dir() and (top / "__init__.py").exists():
            for path in sorted(top.rglob("*.py")):
                folders = path.relative_to(top).parents
                if all((top / folder / "__init__.py").exists() for folder in folders):
                    found[_module_name(path)] = path
        elif top.suffix == ".py" and top.name != "setup.py":
            found[top.stem] = top
    return found


MODULES = _project_files()
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to: itself, or its longest project prefix."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> Iterator[tuple[str, bool, int]]:
    """(imported project module, inside a function?, line) for each import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    package = module if module in PACKAGES else module.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool) -> Iterator[tuple[str, bool, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    target = _resolve(alias.name)
                    if target is not None:
                        yield target, in_function, child.lineno
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    source = ".".join([*base, child.module] if child.module else base)
                else:
                    source = child.module or ""
                for alias in child.names:
                    submodule = f"{source}.{alias.name}"
                    target = submodule if submodule in MODULES else _resolve(source)
                    if target is not None:
                        yield target, in_function, child.lineno
            else:
                nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                yield from visit(child, nested)

    yield from visit(tree, False)


GRAPH = {module: list(_imports(module)) for module in MODULES}


def _checked(module: str) -> bool:
    return module not in KNOWN_OFFENDERS


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    for rank, packages in enumerate(LAYERS):
        if top in packages:
            return rank
    return None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_every_package_has_a_layer():
    unplaced = sorted({m.split(".")[0] for m in MODULES} - {p for layer in LAYERS for p in layer} - set(EXEMPT))
    assert unplaced == [], f"put these in LAYERS: {unplaced}"


def test_no_import_cycle():
    edges = {m: {t for t, _, _ in GRAPH[m] if t != m} for m in MODULES if _checked(m)}
    cycles = [" -> ".join(cycle) for cycle in _cycles(edges)]
    assert not cycles, "modules that import each other, directly or around a circle:\n" + "\n".join(cycles)


def test_no_project_import_inside_a_function():
    lazy = sorted(
        {
            f"{m}:{line} imports {t}"
            for m in MODULES
            if _checked(m) and m.split(".")[0] not in EXEMPT
            for t, in_function, line in GRAPH[m]
            if in_function
        }
    )
    assert not lazy, "imports inside functions (move them to the top, break the cycle they hide):\n" + "\n".join(lazy)


def test_no_module_imports_a_layer_above_or_beside_its_own():
    upward: set[str] = set()
    for m in MODULES:
        rank = _layer(m)
        if rank is None or not _checked(m):
            continue
        for target, _, line in GRAPH[m]:
            other = _layer(target)
            same_package = target.split(".")[0] == m.split(".")[0]
            if other is not None and not same_package and other >= rank:
                upward.add(f"{m}:{line} imports {target}")
    assert not upward, f"imports of a layer above or beside (layers, bottom up: {LAYERS}):\n" + "\n".join(sorted(upward))
