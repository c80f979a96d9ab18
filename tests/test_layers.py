"""The package's architecture: packages form layers, with no import cycle between files or packages.

The import graph is built from the source with ``ast`` (every ``import`` statement, also those inside
functions), the way a reader follows it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "transferlab"
#: Layers, lowest first: a package may import its own layer's packages (acyclically) and the layers below.
LAYERS: list[set[str]] = [
    {"errors", "_startup"},  # _startup: the process start-up hook transferlab/__init__ installs
    {"config", "rundir"},
    {"backbones"},
    {"adapters"},
    {"strategies", "data", "ranking"},
    {"regularizers"},
    {"model"},
    {"deploy"},
    {"run"},
    {"report"},
    {"cli"},
]
_RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = ["transferlab", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: {t for t in _imports(m, p) if t in modules and t != m} for m, p in modules.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "transferlab"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_files():
    assert _cycles(_graph()) == [], "files of src/transferlab import each other in a circle"


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        packages.setdefault(_package(module), set()).update(
            _package(t) for t in targets if _package(t) != _package(module)
        )
    assert _cycles(packages) == [], "packages of src/transferlab import each other in a circle"


def test_every_package_has_a_layer_and_imports_only_its_own_or_lower_layers():
    graph = _graph()
    packages = {_package(m) for m in graph} - {"transferlab"}
    assert packages <= set(_RANK), f"packages without a layer in this test: {sorted(packages - set(_RANK))}"
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if _package(module) in _RANK and _package(target) in _RANK and _RANK[_package(target)] > _RANK[_package(module)]
    )
    assert not wrong, "a lower layer imports a higher one:\n" + "\n".join(wrong)


def test_the_building_blocks_never_import_the_run_layer():
    blocks = {"backbones", "data", "strategies", "adapters", "regularizers", "config", "rundir"}
    above = {"model", "run", "report", "cli"}
    wrong = sorted(
        f"{m} -> {t}"
        for m, targets in _graph().items()
        for t in targets
        if _package(m) in blocks and _package(t) in above
    )
    assert not wrong, wrong


def test_no_module_passes_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over ~400 lines (one concept each): {long}"
