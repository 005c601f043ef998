"""A wheel, not only an editable checkout: build it, install it into a fresh virtual
environment outside the clone, and create an index with its ``rrs`` against the test node.

The fresh environment gets the project from the wheel only; its third-party dependencies
come from the test environment's site-packages through a ``.pth`` line (the heavy ones,
torch and transformers, are not downloaded again). A ``.pth`` line adds a folder to the
path without running that folder's own ``.pth`` files, so the checkout's editable-install
hook stays out and every project module must come from the wheel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

COPY_IGNORE = shutil.ignore_patterns(".git", "tests", "bench", "build", "dist", "*.egg-info", "__pycache__", "test-artifacts")


@pytest.fixture(scope="module")
def wheel(repo_root, tmp_path_factory):
    source = tmp_path_factory.mktemp("wheel-src") / "src"
    shutil.copytree(repo_root, source, ignore=COPY_IGNORE)  # building writes build/ and *.egg-info
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True, timeout=300,
    )
    (built,) = out.glob("rrsearch-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory):
    home = tmp_path_factory.mktemp("fresh-venv")
    venv.create(home / "venv", with_pip=False)
    python = home / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (home / "venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    return home, python, site


def test_the_wheel_carries_mappings_kibana_objects_page_and_gunicorn_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"es_mappings/passages.json", "es_mappings/search_logs.json", "service/http/static/search.html",
            "service/http/gunicorn.conf.py", "core/settings.py"} <= names
    assert any(name.startswith("es_mappings/kibana/") and name.endswith(".ndjson") for name in names)


def test_index_create_from_the_installed_wheel(fresh_env, cli_env, es, repo_root):
    home, python, site = fresh_env
    where = subprocess.run(
        [str(python), "-c", "import core.mappings, rrs.kibana; print(core.mappings.MAPPINGS_DIR); print(rrs.kibana.OBJECTS_DIR)"],
        cwd=home, check=True, capture_output=True, text=True, env=cli_env,
    ).stdout.split()
    assert all(path.startswith(site) for path in where), where  # not the checkout
    assert not any(path.startswith(str(repo_root)) for path in where)

    alias = "test-wheel-install"
    try:
        done = subprocess.run([str(home / "venv" / "bin" / "rrs"), "index", "create", "--alias", alias],
                              cwd=home, capture_output=True, text=True, env=cli_env, timeout=300)
        assert done.returncode == 0, done.stderr
        name = done.stdout.strip().split(" -> ")[1]
        mapping = es.indices.get_mapping(index=alias)[name]["mappings"]
        assert mapping["properties"]["embedding"]["dims"] == 384
        assert mapping["_meta"]["bi_encoder"]
        info = subprocess.run([str(home / "venv" / "bin" / "rrs"), "index", "info", "--alias", alias],
                              cwd=home, capture_output=True, text=True, env=cli_env, timeout=120, check=True)
        assert json.loads(info.stdout)["index"] == name
    finally:
        from rrsearch.core.indexes import delete_alias_and_versions

        delete_alias_and_versions(es, alias)
