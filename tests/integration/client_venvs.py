"""Virtual environments for the real client packages whose pins conflict with ours (LangChain's and
LlamaIndex's Elasticsearch integrations want elasticsearch<9 or their own versions), made once under
RRS_HOME/venvs and run in a subprocess. Used by test_local_node_plugin.py and test_text_only_search.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import venv
from pathlib import Path

import pytest

from rrsearch.core.settings import Settings

LANGCHAIN_REQUIREMENT = "langchain-elasticsearch>=1,<2"
LLAMAINDEX_REQUIREMENT = "llama-index-vector-stores-elasticsearch>=0.7,<0.8"


def client_python(name: str, requirement: str) -> Path:
    """Python of the virtual environment ``RRS_HOME/venvs/<name>`` with ``requirement`` installed, made once;
    a pip that fails skips the test (fails it under CI=1) with pip's words."""
    root = Settings().home.resolve() / "venvs"
    target = root / name
    if not (target / ".complete").exists():
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))  # private: two sessions may build at once
        try:
            venv.create(work, with_pip=True)
            result = subprocess.run(
                [str(work / "bin" / "python"), "-m", "pip", "install", "-q", requirement],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if result.returncode != 0:
                message = f"pip could not install {requirement}: {(result.stdout + result.stderr)[-2000:]}"
                if os.environ.get("CI"):
                    pytest.fail(message)
                pytest.skip(message)
            (work / ".complete").touch()
            if target.exists() and not (target / ".complete").exists():
                shutil.rmtree(target)  # an unfinished one
            try:
                work.rename(target)  # only bin/python is used: it works from the new path
            except OSError:
                if not (target / ".complete").exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target / "bin" / "python"


def langchain_python() -> Path:
    return client_python("langchain-elasticsearch-1", LANGCHAIN_REQUIREMENT)


def llamaindex_python() -> Path:
    return client_python("llama-index-elasticsearch-0.7", LLAMAINDEX_REQUIREMENT)
