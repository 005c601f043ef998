"""Both Elasticsearch majors from one install (issue 35, item 3).

An 8.19 node is started here with the same code as ``RRS_ES_VERSION=8.19.21 rrs es start``
(its own directory, port and a small heap); the same client line (elasticsearch-py 9) then
creates the index, ingests sample passages, and serves ``POST /search`` with its search
log. Our plugin's 8.x build gives that node the ``english`` analyzer only, and the node says
so. The 9.x side is the rest of the suite (the session node); here it only checks that the
client keeps ``compatible-with=9`` there. The first run fetches 8.19.21 from Maven Central.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest
from click.testing import CliRunner

from rrsearch.core.es_client import make_client
from rrsearch.core.es_compat import compat_version
from rrsearch.core.settings import Settings
from rrsearch.rrs.cli import main
from rrsearch.rrs.es_distribution import PINNED_VERSIONS
from rrsearch.rrs.es_plugin import has_retrievers
from rrsearch.rrs.local_node import first_free_port, start_node, stop_node
from rrsearch.service.http.app import create_app
from rrsearch.service.rerank import load_reranker

pytestmark = pytest.mark.slow

ES8 = PINNED_VERSIONS[8]  # 8.19.21


@pytest.fixture(scope="module")
def es8_node():
    """An 8.19 node started as `rrs es start` starts one; stopped and removed at the end."""
    base = Settings()
    settings = base.model_copy(
        update={
            "es_url": None,
            "es_version": ES8,
            "es_node_dir": base.home / f"test-node-es8-{os.getpid()}",  # conftest's orphan sweep knows the name
            "es_port": first_free_port(9450),
            "es_heap": "512m",
        }
    )
    said: list[str] = []
    info = start_node(settings, log=said.append)
    try:
        yield settings, info, said
    finally:
        stop_node(settings, log=lambda _m: None)
        shutil.rmtree(settings.node_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def es8(es8_node):
    settings, _, _ = es8_node
    client = make_client(settings)
    yield client
    client.close()


@pytest.fixture(scope="module")
def env8(es8_node) -> dict:
    """The environment an `rrs` command gets for the 8.19 node (CliRunner sets it)."""
    _, info, _ = es8_node
    return {"ES_URL": info.url, "HF_HUB_OFFLINE": "1", "RRS_INDEX_ALIAS": f"test-es8-{uuid.uuid4().hex[:8]}"}


def test_the_node_is_8_19_and_says_what_it_lacks(es8_node, es8):
    settings, info, said = es8_node
    assert info.running and info.version == ES8
    notes = [line for line in said if "rrs_rrf" in line]
    assert len(notes) == 1, said
    assert "RRS_RETRIEVAL_PATH=retrievers is unavailable" in notes[0] and "msearch" in notes[0]
    home = settings.home.resolve() / "dist" / f"elasticsearch-{ES8}"
    assert not has_retrievers(home)  # the 8.x build: the analyzer alone
    status = CliRunner().invoke(main, ["es", "status", "--dir", str(settings.node_dir)], env={"ES_URL": None})
    assert status.exit_code == 0, status.output
    assert f"Elasticsearch {ES8}" in status.output and "rrs_rrf" in status.output


def test_the_client_speaks_8_to_it(es8):
    assert es8.cluster.health()["status"] in ("green", "yellow")
    assert compat_version(es8) == 8


def test_the_english_analyzer_is_there(es8):
    tokens = es8.indices.analyze(analyzer="english", text="The runners were running")["tokens"]
    assert [t["token"] for t in tokens] == ["runner", "were", "run"]


@pytest.fixture(scope="module")
def ingested(es8, env8, repo_root, tmp_path_factory):
    """`rrs index create` and `rrs ingest` of 20 sample documents, through the CLI."""
    runner = CliRunner()
    created = runner.invoke(main, ["index", "create"], env=env8)
    assert created.exit_code == 0, created.output
    lines = (repo_root / "sample" / "corpus.jsonl").read_text().splitlines()[:20]
    source = tmp_path_factory.mktemp("es8") / "few.jsonl"
    source.write_text("\n".join(lines) + "\n")
    done = runner.invoke(main, ["ingest", str(source), "--no-progress", "--json"], env=env8)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout[done.stdout.index("{") :])
    alias = env8["RRS_INDEX_ALIAS"]
    yield alias, report
    from rrsearch.core.indexes import delete_alias_and_versions

    delete_alias_and_versions(es8, alias)


def test_index_create_and_ingest(es8, ingested):
    alias, report = ingested
    es8.indices.refresh(index=alias)
    assert report["documents"] == 20 and es8.count(index=alias)["count"] == report["chunks"] > 0
    index = next(iter(es8.indices.get_alias(name=alias)))
    mapping = es8.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["properties"]["text"].get("analyzer") == "english"


@pytest.fixture(scope="module")
def service8(es8_node, ingested, bi_encoder, tiny_cross_encoder_dir):
    settings, info, _ = es8_node
    alias, _ = ingested
    log_index = f"test-slog8-{uuid.uuid4().hex[:8]}"
    served = settings.model_copy(
        update={
            "es_url": info.url,
            "index_alias": alias,
            "cross_encoder": str(tiny_cross_encoder_dir),
            "search_log_index": log_index,
            "search_timeout_s": 10.0,
            "rerank_timeout_ms": 30_000.0,
        }
    )
    reranker = load_reranker(str(tiny_cross_encoder_dir), served)
    app = create_app(served, bi_encoder=bi_encoder, reranker=reranker)
    app.testing = True
    return served, app.test_client(), log_index, reranker


def test_search_and_its_log(es8, service8):
    _, client, log_index, _ = service8
    response = client.post("/search", json={"query": "moons of the red planet", "mode": "hybrid", "top_k": 5})
    assert response.status_code == 200, response.get_json()
    hits = response.get_json()["hits"]
    assert len(hits) == 5
    assert client.application.extensions["rrs"]["search_log"].flush(30)
    es8.indices.refresh(index=log_index)
    logged = es8.search(index=log_index, query={"term": {"request_id": response.headers["X-Request-Id"]}})
    assert logged["hits"]["total"]["value"] == 1


def test_the_retrievers_path_says_it_is_missing(service8, bi_encoder):
    served, _, _, reranker = service8
    app = create_app(
        served.model_copy(update={"retrieval_path": "retrievers"}), bi_encoder=bi_encoder, reranker=reranker
    )
    response = app.test_client().post("/search", json={"query": "moons", "mode": "hybrid", "rerank": False})
    assert response.status_code == 503 and response.get_json()["error"] == "retrievers_missing"


def test_a_9x_node_keeps_compatible_with_9(es):
    """The session node (9.x): nothing refused, nothing switched."""
    es.cluster.health()
    assert compat_version(es) == 9
