"""The package's import direction: no cycle, no upward import against the layer table.

The layer table is read from README.md (the block between ``<!-- layers -->`` and
``<!-- /layers -->``), so the picture the reader sees is the one this test enforces. Every
``import`` and ``from ... import`` of every module of ``mmbook`` is parsed with ``ast``
(module level and inside functions alike: a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mmbook"

def read_layers(readme: Path = ROOT / "README.md") -> dict[str, int]:
    """``{top-level module: layer}`` from README's table, lines ``N  a · b · c``."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(r"<!-- layers -->(.*?)<!-- /layers -->", text, re.S)
    assert match, "README.md must hold the layer table between <!-- layers --> markers"
    layers = {}
    for line in match.group(1).splitlines():
        row = re.match(r"\s*(\d+)\s+(.+?)\s*$", line)
        if row:
            for name in re.split(r"\s*·\s*", row.group(2)):
                assert name not in layers, f"{name} appears twice in the layer table"
                layers[name] = int(row.group(1))
    return layers


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _known_modules() -> set[str]:
    return {_module_name(p) for p in PACKAGE.rglob("*.py")}


def _resolve(node, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The mmbook modules an import statement loads (a submodule when it names one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "mmbook"]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + (node.module.split(".") if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "mmbook":
        return []
    found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
    return found or [target]


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every file of the package."""
    known, graph = _known_modules(), {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets.update(_resolve(node, module, path.name == "__init__.py", known))
        graph[module] = {t for t in targets if t != module}
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mmbook"


def test_the_layer_table_lists_every_module_once_as_the_package_does():
    import mmbook

    layers = read_layers()
    tops = {_top(m) for m in _known_modules()} - {"mmbook"}
    assert set(layers) == tops, (sorted(tops - set(layers)), sorted(set(layers) - tops))
    assert set(layers) == set(mmbook._SUBMODULES)
    assert layers["utils"] == 0 and min(layers.values()) == 0


def test_no_module_imports_upward():
    layers, upward = read_layers(), []
    for module, targets in import_graph().items():
        if module == "mmbook":  # the package index loads its submodules lazily
            continue
        for target in targets:
            a, b = _top(module), _top(target)
            if b == "mmbook":
                continue
            if layers[b] > layers[a]:
                upward.append(f"{module} (layer {layers[a]}) imports {target} "
                              f"(layer {layers[b]})")
    assert not upward, "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    graph = {m: ts for m, ts in import_graph().items() if m != "mmbook"}
    # a package's __init__ importing its own submodules is not a cycle between modules
    merged = {}
    for module, targets in graph.items():
        merged.setdefault(_top(module), set()).update(_top(t) for t in targets)
    top_graph = {m: ts - {m, "mmbook"} for m, ts in merged.items()}
    assert not _cycles(top_graph), _cycles(top_graph)
    assert not _cycles(graph), _cycles(graph)


@pytest.mark.parametrize("graph, want", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph, want):
    assert _cycles(graph) == want


def test_the_checks_see_an_upward_import(tmp_path):
    """The parser resolves relative imports (so an upward one cannot hide)."""
    known = {"mmbook.utils", "mmbook.fusion", "mmbook.fusion.base", "mmbook.attention"}
    node = ast.parse("from ..attention import masked_softmax").body[0]
    assert _resolve(node, "mmbook.fusion.base", False, known) == ["mmbook.attention"]
    node = ast.parse("from .fusion import base").body[0]
    assert _resolve(node, "mmbook.attention", False, known) == ["mmbook.fusion.base"]
    node = ast.parse("from . import utils").body[0]
    assert _resolve(node, "mmbook", True, known) == ["mmbook.utils"]
    readme = tmp_path / "README.md"
    readme.write_text("<!-- layers -->\n1  fusion\n0  utils · attention\n<!-- /layers -->\n")
    assert read_layers(readme) == {"fusion": 1, "utils": 0, "attention": 0}
