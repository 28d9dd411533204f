"""The import graph of `binas` runs one way through the layers (docs/architecture.md) and has no cycles.

Every `import` in `src/binas` counts, those inside functions included (a lazy import is still a
dependency). A module may import from its own package and from packages of a lower layer only; within a
package the module graph must be acyclic. The implicit import of a parent package (`import a.b` runs
`a/__init__.py`) is not an edge: every submodule import has it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Layer of each top-level part of `binas`: an import may only point to a strictly lower layer (or stay
#: in its own package). Keep in step with the map in docs/architecture.md.
LAYERS: dict[str, int] = {
    "errors": 0,
    "version": 0,
    "run_files": 0,
    "seeds": 0,
    "registry": 1,
    "storage": 1,
    "quant": 2,
    "data": 2,
    "space": 3,
    "genotype": 4,
    "objectives": 4,
    "config": 5,
    "nets": 5,
    "metrics": 6,
    "optim": 6,
    "export": 6,
    "engine": 7,
    "strategies": 8,
    "plots": 8,
    "generation": 8,
    "workflows": 9,
    "cli": 10,
    "__main__": 11,
    "": 11,  # the package itself (`binas/__init__.py`: lazy public names)
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (SRC / "binas").rglob("*.py")}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The binas modules `name` imports (a `from a import b` names `a.b` when that is a module, else `a`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_part_of_the_package_has_a_layer(graph):
    assert {_part(m) for m in graph} <= set(LAYERS), "add the new package to LAYERS and docs/architecture.md"


def test_imports_point_down_the_layers(graph):
    upward = sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if _part(a) != _part(b) and LAYERS[_part(a)] <= LAYERS[_part(b)]
    )
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_import_cycles(graph):
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_a_violation(tmp_path):
    """The scan itself can fail: an upward import in a module is found."""
    modules = {"binas.quant.x": tmp_path / "x.py", "binas.engine.loop": tmp_path / "loop.py"}
    modules["binas.quant.x"].write_text("def f():\n    from binas.engine.loop import EpochLoop\n")
    found = _imports("binas.quant.x", modules["binas.quant.x"], modules)
    assert found == {"binas.engine.loop"} and LAYERS[_part("binas.quant.x")] < LAYERS[_part("binas.engine.loop")]
