"""The layout is the architecture: imports point one way, and no two files import each other.

Reads every module's imports (top level and inside functions) with ``ast``; no import runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["core", "service", "ingest", "evaluation", "training", "rrs"]
# What each package may import, besides itself. core is the base; rrs holds the commands.
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "service": {"core"},
    "evaluation": {"core", "service", "ingest"},
    "training": {"core", "service", "evaluation"},
    "rrs": {"core", "service", "ingest", "evaluation", "training"},
}
WEB_LAYER = "service.http"
WEB_LAYER_IMPORTERS = {"service.cli"}  # the `rrs serve` entry point (gunicorn loads service.http.app)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` imports (``from a import b`` counts ``a.b`` when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def test_packages_import_only_downwards(graph):
    wrong = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if (s := source.split(".")[0]) != (t := target.split(".")[0]) and t not in ALLOWED[s]
    ]
    assert not wrong, wrong


def test_the_web_layer_is_imported_only_by_the_serving_entry_point(graph):
    wrong = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if target.startswith(WEB_LAYER) and not source.startswith(WEB_LAYER) and source not in WEB_LAYER_IMPORTERS
    ]
    assert not wrong, wrong


def test_no_import_cycle_between_files(graph):
    """Tarjan's strongly connected components: every component must be one file.

    A package's ``__init__`` is skipped as a target: ``from core import x`` names the module."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, cycles


def test_the_checker_sees_a_cycle_and_a_wrong_direction(tmp_path):
    """The two checks above can fail: a made-up pair of files that import each other."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import b\n")
    b.write_text("def f():\n    from a import g\n")
    modules = {"a": a, "b": b}
    assert imports_of(a, modules) == {"b"} and imports_of(b, modules) == {"a"}
