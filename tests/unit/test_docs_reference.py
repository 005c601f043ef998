"""The documentation's generated pages match the code, and the site's nav lists every page.

``docs/generate.py`` writes docs/reference/{settings,cli,http}.md from the settings models, the
click group and the OpenAPI builder; these tests fail while a page is stale. (``mkdocs build
--strict`` itself runs in CI, not here.)
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FIX = "run `python docs/generate.py` and commit the pages it rewrites"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rrs_docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return _load_generator()


@pytest.fixture(scope="module")
def pages(generate) -> dict[str, str]:
    return generate.render()


def test_generated_pages_are_current(generate, pages):
    stale = generate.stale_pages(DOCS, pages)
    assert not stale, f"stale generated docs: {', '.join('docs/' + p for p in stale)}; {FIX}"


def test_generated_pages_name_no_machine(pages):
    """Byte-stable across machines: no checkout path, no home directory, no user's values."""
    for page, text in pages.items():
        assert str(ROOT) not in text, page
        assert str(Path.home()) not in text, page
        assert text.endswith("\n") and not text.endswith("\n\n"), page


def test_the_staleness_check_can_fail(generate, pages, tmp_path, capsys):
    for page, text in pages.items():
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text(text, encoding="utf-8")
    assert generate.stale_pages(tmp_path, pages) == []

    settings_page = tmp_path / "reference" / "settings.md"
    settings_page.write_text(settings_page.read_text().replace("`RRS_INDEX_ALIAS`", "`RRS_INDEX_NAME`"))
    (tmp_path / "reference" / "cli.md").unlink()
    assert generate.stale_pages(tmp_path, pages) == ["reference/cli.md", "reference/settings.md"]

    # the command CI runs: exit 1, naming each stale page and the fix
    assert generate.main(["--check", "--docs-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "docs/reference/settings.md" in err and "docs/reference/cli.md" in err
    assert "python docs/generate.py" in err

    # a made-up change in the code shows as a stale page too
    changed = dict(pages)
    changed["reference/http.md"] = pages["reference/http.md"].replace("POST /search", "POST /find")
    assert generate.stale_pages(tmp_path, changed) == ["reference/cli.md", "reference/http.md", "reference/settings.md"]

    assert generate.write(tmp_path, pages) == ["reference/cli.md", "reference/settings.md"]
    assert generate.stale_pages(tmp_path, pages) == []


def test_every_setting_command_and_route_is_documented(pages):
    from rrsearch.core.settings import Settings
    from rrsearch.rrs.cli import main

    settings = pages["reference/settings.md"]
    for name, field in Settings.model_fields.items():
        assert f"`RRS_{name.upper()}`" in settings, name
        assert field.description, f"{name} has no description= for the settings reference"
    assert "`ES_URL`" in settings and "`ES_CA_CERTS`" in settings

    cli = pages["reference/cli.md"]
    for name, command in main.commands.items():
        assert f"## rrs {name}\n" in cli, name
        for sub in getattr(command, "commands", {}):
            assert f"### rrs {name} {sub}\n" in cli, f"{name} {sub}"

    http = pages["reference/http.md"]
    for route in ("POST /search", "GET /search", "POST /rerank", "POST /v2/rerank", "POST /judgments", "GET /readyz"):
        assert f"## {route}\n" in http, route


def _nav_files(entries) -> list[str]:
    files: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            files.append(entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                files.extend(_nav_files(value) if isinstance(value, list) else [value])
    return files


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs"
    nav = _nav_files(config["nav"])
    assert len(nav) == len(set(nav)), "a page is listed twice in mkdocs.yml's nav"
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    missing_pages = sorted(set(nav) - pages)
    assert not missing_pages, f"mkdocs.yml's nav names pages that do not exist: {missing_pages}"
    not_in_nav = sorted(pages - set(nav))
    assert not not_in_nav, f"pages missing from mkdocs.yml's nav: {not_in_nav}"


def test_the_nav_check_would_catch_a_page_left_out(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (docs / "orphan.md").write_text("# Orphan\n")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = {path.relative_to(docs).as_posix() for path in docs.rglob("*.md")}
    assert pages - set(_nav_files(config["nav"])) == {"orphan.md"}
