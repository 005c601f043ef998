"""A wheel, not only an editable checkout: build it, install it into a fresh virtual
environment outside the clone, create an index and serve search with its ``rrs`` against
the test node. The wheel installs one top-level import name, ``rrsearch``.

The fresh environment gets the project from the wheel only; its third-party dependencies
come from the test environment's site-packages through a ``.pth`` line (the heavy ones,
torch and transformers, are not downloaded again). A ``.pth`` line adds a folder to the
path without running that folder's own ``.pth`` files, so the checkout's editable-install
hook stays out and every project module must come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow  # a wheel build and a fresh virtual environment: minutes

COPY_IGNORE = shutil.ignore_patterns(
    ".git", "tests", "bench", "build", "dist", "*.egg-info", "__pycache__", "test-artifacts"
)


@pytest.fixture(scope="module")
def wheel(repo_root, tmp_path_factory):
    source = tmp_path_factory.mktemp("wheel-src") / "src"
    shutil.copytree(repo_root, source, ignore=COPY_IGNORE)  # building writes build/ and *.egg-info
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("rrsearch-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory):
    home = tmp_path_factory.mktemp("fresh-venv")
    venv.create(home / "venv", with_pip=False)
    python = home / "venv" / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (
        home
        / "venv"
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
        / "deps.pth"
    ).write_text(sysconfig.get_paths()["purelib"] + "\n")
    return home, python, site


def test_the_wheel_installs_one_top_level_name(wheel):
    wheel_zip = zipfile.ZipFile(wheel)
    names = set(wheel_zip.namelist())
    (top_level,) = [name for name in names if name.endswith(".dist-info/top_level.txt")]
    assert wheel_zip.read(top_level).decode().split() == ["rrsearch"]
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"rrsearch"}


def test_the_wheel_carries_mappings_kibana_objects_page_and_gunicorn_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "rrsearch/es_mappings/passages.json",
        "rrsearch/es_mappings/search_logs.json",
        "rrsearch/service/http/static/search.html",
        "rrsearch/service/http/gunicorn.conf.py",
        "rrsearch/core/settings.py",
        "rrsearch/__main__.py",
    } <= names
    assert any(name.startswith("rrsearch/es_mappings/kibana/") and name.endswith(".ndjson") for name in names)


def test_the_wheel_carries_both_plugin_projects(wheel):
    """A node started from an installed wheel builds our plugin and the local node's from these."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for project in ("rrsearch/es_plugin", "rrsearch/es_plugin/local-node"):
        assert {f"{project}/pom.xml", f"{project}/src/main/resources/plugin-descriptor.properties"} <= names


def wheel_rrs(home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The wheel's own `rrs`, run in its folder (not the checkout)."""
    return subprocess.run(
        [str(home / "venv" / "bin" / "rrs"), *args], cwd=home, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def wheel_index(fresh_env, es, es_url):
    """`rrs index create` from the installed wheel, run in its own folder: (alias, index name). The
    serving test serves this empty index too."""
    from rrsearch.core.indexes import delete_alias_and_versions

    home, _python, _site = fresh_env
    alias = "test-wheel-install"
    done = wheel_rrs(
        home, "index", "create", "--alias", alias, env={**os.environ, "ES_URL": es_url, "HF_HUB_OFFLINE": "1"}
    )
    assert done.returncode == 0, done.stderr
    yield alias, done.stdout.strip().split(" -> ")[1]
    delete_alias_and_versions(es, alias)


def test_index_create_from_the_installed_wheel(fresh_env, wheel_index, cli_env, es, repo_root):
    home, python, site = fresh_env
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import rrsearch.service, rrsearch.core.mappings as m, rrsearch.rrs.kibana as k, "
            "rrsearch.rrs.es_distribution as d; "
            "print(rrsearch.service.__file__); print(m.MAPPINGS_DIR); print(k.OBJECTS_DIR); "
            "print(d.PROJECT_DIR / 'pom.xml'); print(d.LOCAL_NODE_PROJECT / 'pom.xml')",
        ],
        cwd=home,
        check=True,
        capture_output=True,
        text=True,
        env=cli_env,
    ).stdout.split()
    assert all(path.startswith(site) for path in where), where  # not the checkout
    assert all(Path(path).is_file() for path in where[-2:]), where  # both plugin projects, as rrs es start reads them
    assert not any(path.startswith(str(repo_root)) for path in where)

    alias, name = wheel_index
    mapping = es.indices.get_mapping(index=alias)[name]["mappings"]
    assert mapping["properties"]["embedding"]["dims"] == 384
    assert mapping["_meta"]["bi_encoder"]
    info = wheel_rrs(home, "index", "info", "--alias", alias, env=cli_env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["index"] == name


def test_serve_from_the_installed_wheel(fresh_env, wheel_index, cli_env, tmp_path):
    """gunicorn loads the app by its rrsearch path from site-packages, and answers a search."""
    from serve_process import rrs_serve

    from rrsearch.rrs.local_node import first_free_port

    home, _python, _site = fresh_env
    alias, _ = wheel_index
    env = {**cli_env, "RRS_INDEX_ALIAS": alias, "RRS_ALLOW_MISSING_RERANKER": "true"}
    with rrs_serve(
        first_free_port(18300), env, tmp_path / "serve.log", rrs=home / "venv" / "bin" / "rrs", cwd=home
    ) as base:
        answer = requests.post(f"{base}/search", json={"query": "anything", "rerank": False}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["hits"] == []  # an empty index answers with no hits, not an error
