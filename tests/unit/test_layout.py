"""The layout is the architecture: imports point one way, and no two files import each other.

Reads every module's imports (top level and inside functions) with ``ast``; no import runs.
Each folder is one subpackage of ``rrsearch``, linked as ``rrsearch/<folder>``: ``core/settings.py``
is ``rrsearch.core.settings`` at ``rrsearch/core/settings.py``, for a static reader as for Python.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = "rrsearch"
PACKAGES = ["core", "service", "ingest", "evaluation", "training", "rrs"]
# What each package may import, besides itself: core is the base, rrs holds the commands,
# and the top package (python -m rrsearch) only starts them.
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "service": {"core"},
    "evaluation": {"core", "service", "ingest"},
    # training/adapt.py (`rrs adapt`, the learning loop) reindexes with the new bi-encoder by ingest's own run_ingest
    "training": {"core", "service", "ingest", "evaluation"},
    "rrs": {"core", "service", "ingest", "evaluation", "training"},
    "": {"rrs"},
}
WEB_LAYER = f"{TOP}.service.http"
WEB_LAYER_IMPORTERS = {f"{TOP}.service.cli"}  # the `rrs serve` entry point (gunicorn loads service.http.app)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] != TOP:  # a mapped folder: core/settings.py is rrsearch.core.settings
        parts.insert(0, TOP)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT, packages=(*PACKAGES, TOP)) -> dict[str, Path]:
    return {module_name(path, root): path for package in packages for path in (root / package).rglob("*.py")}


def imported_names(path: Path) -> set[str]:
    """Every absolute dotted name ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"}
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` imports (``from a import b`` counts ``a.b`` when it is a module)."""
    found = set()
    for name in imported_names(path):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def package_of(module: str) -> str:
    """``rrsearch.service.fusion`` -> ``service``; the top package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else ""


def upward_imports(graph: dict[str, set[str]], allowed: dict[str, set[str]] = ALLOWED) -> list[str]:
    return [
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if (s := package_of(source)) != (t := package_of(target)) and t not in allowed[s]
    ]


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one file."""
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
    return cycles


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(project_modules())


def test_every_package_is_read(graph):
    """The checks below see the real code: every folder contributes modules under rrsearch."""
    assert {package_of(name) for name in graph} == set(ALLOWED)
    assert "rrsearch.core.settings" in graph["rrsearch.service.pipeline"]


def test_packages_import_only_downwards(graph):
    assert not upward_imports(graph)


def test_the_web_layer_is_imported_only_by_the_serving_entry_point(graph):
    wrong = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if target.startswith(WEB_LAYER) and not source.startswith(WEB_LAYER) and source not in WEB_LAYER_IMPORTERS
    ]
    assert not wrong, wrong


def test_no_import_cycle_between_files(graph):
    """A package's ``__init__`` is skipped as a target: ``from rrsearch.core import x`` names the module."""
    assert not import_cycles(graph)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path):
    """The checks above can fail: made-up files that import each other, and a base module
    that imports the web layer, both caught by the same functions that check the real code."""
    for package in ("core", "service"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "service" / "a.py").write_text("import rrsearch.service.b\n")
    (tmp_path / "service" / "b.py").write_text("def f():\n    from rrsearch.service.a import g\n")
    (tmp_path / "core" / "base.py").write_text("from rrsearch.service.a import g\n")
    graph = import_graph(project_modules(tmp_path, packages=("core", "service")))
    assert import_cycles(graph) == [["rrsearch.service.a", "rrsearch.service.b"]]
    assert upward_imports(graph) == ["rrsearch.core.base imports rrsearch.service.a"]


def unresolved(name: str, root: Path = ROOT) -> bool:
    """Whether ``name`` names no file or folder under ``root/rrsearch``; a trailing part that
    is no module is a name inside its parent (``rrsearch.service.fusion.rrf``), which must resolve."""
    path = root.joinpath(*name.split("."))
    if path.is_dir() or path.with_suffix(".py").is_file():
        return False
    parent = path.parent
    return not (parent.is_dir() or parent.with_suffix(".py").is_file())


def python_files(root: Path = ROOT) -> list[Path]:
    """The tree's own Python files (not the links under rrsearch/, which are the same files)."""
    return [
        *(root / TOP).glob("*.py"),
        *(path for folder in [*PACKAGES, "tests", "bench"] for path in (root / folder).rglob("*.py")),
    ]


def test_the_subpackages_are_links_to_the_design_folders():
    """``rrsearch/core`` is ``core/``: one set of files, two names, and nothing else under rrsearch."""
    for folder in [*PACKAGES, "es_mappings", "es_plugin"]:
        link = ROOT / TOP / folder
        assert link.is_symlink() and link.resolve() == (ROOT / folder).resolve(), folder
        assert not Path(link.readlink()).is_absolute(), f"{folder}: a relative link survives a move of the clone"


def test_every_rrsearch_import_in_the_tree_resolves_to_a_path_under_rrsearch():
    """What an editor or a type checker does from the checkout alone: follow ``rrsearch.x.y`` to a file."""
    names = {name for path in python_files() for name in imported_names(path) if name.split(".")[0] == TOP}
    assert "rrsearch.service.fusion" in names  # the check reads the real imports
    assert not sorted(name for name in names if unresolved(name))


def test_the_resolver_sees_a_dangling_import(tmp_path):
    (tmp_path / TOP / "core").mkdir(parents=True)
    (tmp_path / TOP / "core" / "settings.py").write_text("")
    assert not unresolved("rrsearch.core.settings", tmp_path)
    assert not unresolved("rrsearch.core.settings.Settings", tmp_path)
    assert unresolved("rrsearch.core.missing.thing", tmp_path)
    assert unresolved("rrsearch.service.fusion", tmp_path)
