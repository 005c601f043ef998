"""Shared fixtures. Integration tests get a real Elasticsearch node through ``es_node``:
the one ``ES_URL`` names, or a local node started with the same code as ``rrs es start``
(its own directory and port, stopped at the end of the session)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from service.settings import Settings

TEST_NODE_PORT = 9250  # away from a developer's own node on 9200; next free one if taken


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def es_settings() -> Settings:
    """Settings pointing at a real, running cluster for the whole test session."""
    from service.local_node import first_free_port, start_node, stop_node

    base = Settings()
    if base.es_url:
        yield base
        return
    _stop_orphaned_test_nodes(base)
    settings = base.model_copy(
        update={
            "es_node_dir": base.home / f"test-node-{os.getpid()}",
            "es_port": first_free_port(TEST_NODE_PORT),
            "es_heap": "1g",
        }
    )
    start_node(settings, log=print)
    yield settings
    stop_node(settings, log=print)
    shutil.rmtree(settings.node_dir, ignore_errors=True)


def _stop_orphaned_test_nodes(base: Settings) -> None:
    """Nodes left by test sessions that were killed (their pytest pid is gone)."""
    from service.local_node import stop_node

    for node_dir in base.home.glob("test-node-*"):
        owner = node_dir.name.rsplit("-", 1)[-1]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            stop_node(base.model_copy(update={"es_node_dir": node_dir}), log=lambda _m: None)
            shutil.rmtree(node_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def es(es_settings):
    from service.es_client import make_client

    client = make_client(es_settings)
    yield client
    client.close()


@pytest.fixture(scope="session")
def bi_encoder():
    """The packaged all-MiniLM-L6-v2, loaded offline."""
    from service.encoders import load_bi_encoder

    return load_bi_encoder("all-MiniLM-L6-v2", "cpu")


@pytest.fixture
def alias(es):
    """A fresh alias name; every index version behind it is deleted afterwards."""
    from service.indexes import delete_alias_and_versions

    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    delete_alias_and_versions(es, name)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
