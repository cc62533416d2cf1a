"""The import direction of DESIGN.md §4, checked on the source: no upward import, no circle, no task branches.

Imports inside functions count (they run); imports under ``if TYPE_CHECKING:`` do not. A circle through a
package's ``__init__`` inside one package (a registry importing its built-in members) is allowed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "osteon"
RANK = {
    "errors": 0,
    "registry": 0,
    "io": 1,
    "metrics": 1,
    "data": 2,
    "models": 2,
    "tasks": 3,
    "engine": 4,
    "explain": 5,
    "pipelines": 6,
    "report": 6,
    "serve": 7,
    "cli": 8,
}
TASK_BRANCH = re.compile(
    r"""(==|!=|\bin\s*[\(\[\{])\s*["'](classify|grade|regress|detect|segment|keypoints)["']"""
    r"""|["'](classify|grade|regress|detect|segment|keypoints)["']\s*(==|!=)"""
)


def _module(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _imports(path: Path) -> Iterator[str]:
    module, is_package = _module(path)
    tree = ast.parse(path.read_text())
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                name = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield name
            yield from (f"{name}.{alias.name}" for alias in node.names)


def _graph() -> tuple[dict[str, set[str]], dict[str, Path]]:
    files = {_module(p)[0]: p for p in sorted(SRC.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = set()
        for name in _imports(path):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name not in (module, "osteon"):
                targets.add(name)
        graph[module] = targets
    return graph, files


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _circles(graph: dict[str, set[str]], files: dict[str, Path]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), minus allowed package registries."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
            through_init = any(files[c].name == "__init__.py" for c in component)
            if len(component) > 1 and (len({_layer(c) for c in component}) > 1 or not through_init):
                found.append(sorted(component))

    for vertex in graph:
        if vertex not in index:
            visit(vertex)
    return found


def test_every_package_has_a_layer() -> None:
    graph, _ = _graph()
    unknown = sorted({_layer(m) for m in graph if _layer(m) and _layer(m) not in RANK})
    assert not unknown, f"packages without a layer in DESIGN.md §4: {unknown}"


def test_no_import_points_upwards() -> None:
    graph, _ = _graph()
    upward = [
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if RANK.get(_layer(b), -1) > RANK.get(_layer(a), 99)
    ]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(upward))


def test_no_import_circle() -> None:
    graph, files = _graph()
    circles = _circles(graph, files)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("package", ["engine", "report"])
def test_no_task_name_branch(package: str) -> None:
    branches = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted((SRC / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if TASK_BRANCH.search(line)
    ]
    assert not branches, (
        f"task names compared in {package}/ (use a Task capability or a registered adapter):\n" + "\n".join(branches)
    )


def test_the_checker_sees_a_circle_and_an_upward_import() -> None:
    """The checks can fail: a made-up graph with both defects is caught."""
    graph = {"osteon.tasks.a": {"osteon.engine.b"}, "osteon.engine.b": {"osteon.tasks.a"}}
    files = {name: Path(f"{name}.py") for name in graph}
    assert _circles(graph, files) == [["osteon.engine.b", "osteon.tasks.a"]]
    assert RANK[_layer("osteon.engine.b")] > RANK[_layer("osteon.tasks.a")]
