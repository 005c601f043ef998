"""The type checker's configuration catches the mistakes it is there for.

``mypy`` (run from the checkout with no arguments) reads ``[tool.mypy]`` in pyproject.toml.
Here it checks two small modules with that same configuration: one that uses real project
code wrongly (a misspelt attribute of ``Settings``, a real function called without its
required argument, both in annotated and in unannotated functions), whose every mistake must
be reported with its error code and line, and the same module corrected, which must pass.

``--follow-imports=silent`` keeps the verdict about the fixture alone (the project's own
modules are read for their types, and the plain ``mypy`` run judges them). A cold run takes
a few seconds: the cache is a temporary folder, apart from the plain run's ``.mypy_cache/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is a dev extra")

ROOT = Path(__file__).resolve().parents[2]

# Each mistake carries `# expect: <error code>` on the line mypy must report.
WRONG = """\
from rrsearch.core.settings import Settings
from rrsearch.ingest.ids import passage_id
from rrsearch.service.fusion import rrf


def alias(settings: Settings) -> str:
    return settings.index_alais  # expect: attr-defined


def unannotated_alias():
    return Settings().index_alais  # expect: attr-defined


def fused(rankings: dict[str, list[str]]) -> list[tuple[str, float]]:
    return rrf(k=60)  # expect: call-arg


def unannotated_passage(doc_id):
    return passage_id(doc_id)  # expect: call-arg


def wrong_type(settings: Settings) -> str:
    return passage_id(settings.index_alias, "0")  # expect: arg-type
"""

RIGHT = """\
from rrsearch.core.settings import Settings
from rrsearch.ingest.ids import passage_id
from rrsearch.service.fusion import rrf


def alias(settings: Settings) -> str:
    return settings.index_alias


def unannotated_alias():
    return Settings().index_alias


def fused(rankings: dict[str, list[str]]) -> list[tuple[str, float]]:
    return rrf(rankings, k=60)


def unannotated_passage(doc_id):
    return passage_id(doc_id, 0)


def wrong_type(settings: Settings) -> str:
    return passage_id(settings.index_alias, 0)
"""

REPORT = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): error: .*\[(?P<code>[a-z0-9-]+)\]$", re.MULTILINE)


def expected(source: str) -> set[tuple[int, str]]:
    return {
        (number, match.group(1))
        for number, line in enumerate(source.splitlines(), start=1)
        if (match := re.search(r"# expect: ([a-z0-9-]+)$", line))
    }


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def run_mypy(folder: Path, name: str, source: str, cache: Path, monkeypatch) -> tuple[set[tuple[int, str]], str, int]:
    """(line, code) of each error mypy reports in the module, its whole output, its status."""
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    monkeypatch.chdir(ROOT)  # where mypy finds the rrsearch package (its links to the folders)
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--follow-imports=silent",
            "--cache-dir",
            str(cache),
            "--no-pretty",
            "--show-error-codes",
            str(path),
        ]
    )
    found = {
        (int(match["line"]), match["code"])
        for match in REPORT.finditer(stdout)
        if Path(match["path"]).name == path.name
    }
    return found, stdout + stderr, status


def test_the_config_reports_wrong_attributes_and_missing_arguments(tmp_path, cache, monkeypatch):
    wanted = expected(WRONG)
    assert {code for _, code in wanted} == {"attr-defined", "call-arg", "arg-type"}
    found, output, status = run_mypy(tmp_path, "type_check_wrong", WRONG, cache, monkeypatch)
    assert status == 1, output
    assert found == wanted, output


def test_the_same_code_corrected_passes(tmp_path, cache, monkeypatch):
    found, output, status = run_mypy(tmp_path, "type_check_right", RIGHT, cache, monkeypatch)
    assert (status, found) == (0, set()), output
    assert "Success: no issues found in 1 source file" in output


def test_the_plain_run_checks_core_service_and_ingest():
    """`mypy` with no arguments covers at least the packages the issue names."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert {"rrsearch.core", "rrsearch.service", "rrsearch.ingest"} <= set(config["packages"])
    assert config["check_untyped_defs"] is True  # the bodies of unannotated functions are checked too
