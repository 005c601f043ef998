"""A 3-node cluster on loopback (2 shards, 1 replica): nodes killed under ingest and under
searching clients, shards that do not answer surfaced as `partial`, several ES_URL hosts,
and two stateless service instances that answer alike.

Each test starts from a whole, green cluster (the ``whole_cluster`` fixture starts members an
earlier test killed) and builds the indexes it needs through fixtures, so any one of them
runs alone or in any order."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests
from fault_tools import SearchLoad, clean_reference, start_ingest, stored, wait_until_indexing, write_corpus
from serve_process import rrs_serves

from rrsearch.core.es_client import make_client
from rrsearch.rrs.local_node import first_free_port, node_status, start_node, stop_node
from rrsearch.service.retrieval import search_preference

NODES = 3

pytestmark = pytest.mark.slow  # three nodes to start, kill and restart: minutes


@pytest.fixture(scope="module")
def cluster(es_settings):
    """Three nodes of 512 MB heap each, in a directory of this module's own."""
    if es_settings.es_url:
        pytest.skip("ES_URL names an external cluster: these tests kill nodes of a local one")
    settings = es_settings.model_copy(
        update={
            "es_node_dir": es_settings.home / f"test-cluster-{os.getpid()}",
            "es_nodes": NODES,
            "es_port": first_free_port(9550),
            "es_heap": "512m",
            "number_of_shards": 2,
            "number_of_replicas": 1,
            "search_log_shards": 2,
            "search_log_replicas": 1,
        }
    )
    start_node(settings, log=print)
    yield settings
    stop_node(settings, log=print)
    shutil.rmtree(settings.node_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_env(cluster) -> dict:
    """What `rrs` processes need: every node's URL in ES_URL (the first one is killed below)."""
    members = node_status(cluster).nodes
    return {
        **os.environ,
        "ES_URL": ",".join(m["url"] for m in members),
        "HF_HUB_OFFLINE": "1",
        "RRS_DEVICE": "cpu",
        "RRS_NUMBER_OF_SHARDS": "2",
        "RRS_NUMBER_OF_REPLICAS": "1",
    }


@pytest.fixture
def whole_cluster(cluster):
    """The cluster with every member running and green, whatever an earlier test killed."""
    _heal(cluster)
    return cluster


@pytest.fixture(scope="module")
def clean_alias(cluster, tmp_path_factory) -> tuple:
    """The undisturbed ingest of the fault corpus into alias ``clean``: (corpus, what it stored)."""
    _heal(cluster)
    return clean_reference(tmp_path_factory.mktemp("clean"), cluster)


def _kill(cluster, name: str) -> None:
    member = next(m for m in node_status(cluster).nodes if m["name"] == name)
    os.kill(member["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{member['pid']}"):
        time.sleep(0.1)


def _heal(cluster) -> None:
    """Start the dead members again and wait for green."""
    start_node(cluster, log=print)
    es = make_client(cluster)
    es.options(request_timeout=120).cluster.health(wait_for_status="green", timeout="100s")
    es.close()


def test_three_nodes_form_one_cluster_and_indexes_take_their_shape(whole_cluster, rayed):
    cluster = whole_cluster
    from click.testing import CliRunner

    from rrsearch.rrs.cli import main

    status = CliRunner().invoke(
        main, ["es", "status", "--json", "--dir", str(cluster.node_dir)], env={"RRS_HOME": str(cluster.home)}
    )
    assert status.exit_code == 0, (status.output, status.exception)
    info = json.loads(status.output)
    assert info["health"] == "green"
    assert [(m["name"], m["running"]) for m in info["nodes"]] == [(f"rrs-node-{i}", True) for i in (1, 2, 3)]
    assert len({m["url"] for m in info["nodes"]}) == NODES and info["url"].count("http://") == NODES

    es = make_client(cluster)
    shards = es.cat.shards(index=rayed, format="json")  # the shape RRS_NUMBER_OF_* gave `rrs ingest`
    assert sorted(s["prirep"] for s in shards) == ["p", "p", "r", "r"]
    assert len({s["node"] for s in shards}) >= 2  # primaries and replicas spread over the nodes

    from rrsearch.service.search_log import SearchLogWriter

    writer = SearchLogWriter(
        es, "cluster-search-log", shards=cluster.search_log_shards, replicas=cluster.search_log_replicas
    )
    writer.log({"query": "shape", "status": 200})
    assert writer.flush(20)
    index_settings = es.indices.get_settings(index="cluster-search-log")["cluster-search-log"]["settings"]["index"]
    assert (index_settings["number_of_shards"], index_settings["number_of_replicas"]) == ("2", "1")
    es.close()


@pytest.fixture(scope="module")
def rayed(clean_alias, cluster, cluster_env) -> str:
    """Issue 25: `rrs ingest --engine ray` (a local Ray, 2 encoder actors, the corpus cut into
    shards) of the clean corpus with the 3-node cluster as target: alias ``rayed``."""
    pytest.importorskip("ray.data")
    _heal(cluster)
    path, _ = clean_alias
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rrsearch",
            "ingest",
            str(path),
            "--index",
            "rayed",
            "--engine",
            "ray",
            "--encoders",
            "2",
            "--batch-size",
            "8",
            "--no-progress",
        ],
        env={**cluster_env, "RRS_INGEST_SHARD_BYTES": "8192"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return "rayed"


def test_the_ray_engine_into_the_cluster_stores_what_a_single_process_run_stores(clean_alias, whole_cluster, rayed):
    _, expected = clean_alias
    es = make_client(whole_cluster)
    assert stored(es, rayed) == expected
    es.close()


@pytest.fixture(scope="module")
def cluster_retrievers(cluster, bi_encoder, reranker_pool):
    """The SciFact subset on 2 shards with a replica each, a pool (/rerank and /embed) the nodes call,
    and POST /search through the same pool: (client, alias, settings, service)."""
    from es_retrievers import index_subset, set_pool

    from rrsearch.service.http.app import create_app
    from rrsearch.service.remote_rerank import RemoteReranker

    _heal(cluster)
    es = make_client(cluster)
    # exact kNN: HNSW graphs and int8 quantiles are built per segment, so a primary and its replica may
    # answer a kNN query a little differently, and two searches need not read the same copies
    alias = index_subset(es, cluster.model_copy(update={"vector_index_type": "flat"}), bi_encoder, "cluster-retrievers")
    es.options(request_timeout=60).cluster.health(index=alias, wait_for_status="green", timeout="50s")
    # one segment per copy: a primary and its replica then hold the same BM25 statistics (a CI run saw
    # one RRF score 0.0002 apart when the two searches read copies whose segments differed)
    es.options(request_timeout=120).indices.forcemerge(index=alias, max_num_segments=1)
    es.indices.refresh(index=alias)
    shards = es.cat.shards(index=alias, format="json")
    assert sorted(s["prirep"] for s in shards) == ["p", "p", "r", "r"]
    set_pool(es, reranker_pool, "60s")
    settings = cluster.model_copy(
        update={
            "index_alias": alias,
            "search_log_enabled": False,
            "rerank_timeout_ms": 60_000.0,
            "search_timeout_s": 30.0,
        }
    )
    client = create_app(settings, es=es, bi_encoder=bi_encoder, reranker=RemoteReranker(reranker_pool)).test_client()
    yield es, alias, settings, client
    set_pool(es, None, None)
    es.close()


def _post_search(client, query: str, rerank: bool) -> list[tuple[str, float]]:
    answer = client.post(
        "/search",
        json={"query": query, "top_k": 10, "candidates": 20, "rerank": rerank, "collapse": False, "highlight": False},
    ).get_json()
    assert answer["degraded"] is None, answer["degraded"]
    return [(hit["id"], hit["score"]) for hit in answer["hits"]]


def test_the_plugins_retrievers_equal_post_search_on_the_cluster(whole_cluster, cluster_retrievers, bi_encoder):
    """rrs_rrf, and rrs_rerank over it, on 2 shards with a replica each: every node runs the plugin, the
    coordinating node asks the pool once per search; _search equals POST /search on 50 SciFact queries."""
    from es_retrievers import QUERIES, rerank_retriever, rrf_retriever, scifact_subset, search_ids

    es, alias, settings, client = cluster_retrievers
    queries, _ = scifact_subset()
    for _, query in queries[:QUERIES]:
        fused = rrf_retriever(settings, bi_encoder, query, 20)
        for retriever, rerank in ((fused, False), (rerank_retriever(fused, query, 20), True)):
            # the service's preference: the same shard copies as its own searches (replicas differ in kNN and ties)
            ours = search_ids(es, alias, retriever, 10, preference=search_preference(query))
            theirs = _post_search(client, query, rerank)
            assert [doc for doc, _ in ours] == [doc for doc, _ in theirs], (query, rerank)
            assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-5, abs=1e-7)


def test_a_text_only_hybrid_reranked_search_equals_post_search_on_the_cluster(
    whole_cluster, cluster_retrievers, bi_encoder
):
    """The same with nothing but text in the body: the coordinating node embeds the query through the
    pool's /embed (rrs_embed) before it fans out to the shards."""
    from es_retrievers import rerank_retriever, rrf_retriever, scifact_subset, search_ids, text_only

    es, alias, settings, client = cluster_retrievers
    queries, _ = scifact_subset()
    for _, query in queries[:20]:
        body = rerank_retriever(text_only(rrf_retriever(settings, bi_encoder, query, 20), query), query, 20)
        ours = search_ids(es, alias, body, 10, preference=search_preference(query))
        theirs = _post_search(client, query, True)
        assert [doc for doc, _ in ours] == [doc for doc, _ in theirs], query
        assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-5, abs=1e-7)


# The tests below kill a member; they come last, so the cluster restarts a member twice, not three times.


def test_a_node_killed_mid_ingest_then_the_same_command_equals_a_clean_run(clean_alias, whole_cluster, cluster_env):
    cluster = whole_cluster
    path, expected = clean_alias
    es = make_client(cluster)

    run = start_ingest(path, "faulty", cluster_env)
    wait_until_indexing(es, "faulty", run)
    assert run.poll() is None, "the ingest finished before a node could be killed"
    _kill(cluster, "rrs-node-2")
    run.communicate(timeout=600)  # with a replica of every shard left, the run may well finish
    again = start_ingest(path, "faulty", cluster_env)
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    assert stored(es, "faulty") == expected  # same ids, same content hashes: nothing lost
    es.close()


def test_two_instances_answer_alike_and_survive_the_first_host_dying(
    clean_alias, whole_cluster, cluster_env, tmp_path, tiny_cross_encoder_dir
):
    cluster = whole_cluster
    env = {
        **cluster_env,
        "RRS_INDEX_ALIAS": "clean",
        "RRS_CROSS_ENCODER": str(tiny_cross_encoder_dir),
        "RRS_SERVE_THREADS": "8",
        "RRS_SEARCH_TIMEOUT_S": "2",
        "RRS_ALIAS_CACHE_S": "0",
        "RRS_WINDOW_CACHE_SIZE": "0",
        "RRS_SEARCH_LOG_ENABLED": "false",
    }
    with rrs_serves(
        [(first_free_port(19_300), env, tmp_path / "a.log"), (first_free_port(19_400), env, tmp_path / "b.log")]
    ) as (first, second):
        request = {"query": "jazz note about orbits", "top_k": 10, "rerank": True}
        answers = [requests.post(f"{base}/search", json=request, timeout=60).json() for base in (first, second)]
        assert answers[0]["reranked"] and answers[0]["hits"]
        assert [(h["id"], h["score"]) for h in answers[0]["hits"]] == [
            (h["id"], h["score"]) for h in answers[1]["hits"]
        ]

        with SearchLoad(first) as load:
            time.sleep(3)
            killed = time.monotonic()
            _kill(cluster, "rrs-node-1")  # the first host in ES_URL
            deadline = killed + 60
            while time.monotonic() < deadline and not _steady(load, killed):
                time.sleep(0.2)
    print("statuses:", dict(load.statuses), "answers marked partial:", load.partial)
    assert set(load.statuses) <= {200, 503}, load.statuses
    assert not load.missing_retry_after
    after = [t for t in load.answered if t > killed]
    assert after, "no search succeeded after the first host died"
    last_refusal = max([t for t in load.refused if t > killed], default=killed)
    print(f"every search succeeds again {last_refusal - killed:.1f} s after the node was killed")
    assert last_refusal - killed < 45


def _steady(load: SearchLoad, since: float, quiet_s: float = 3.0) -> bool:
    """Searches have succeeded for ``quiet_s`` seconds since the last refusal after ``since``."""
    last_refusal = max([t for t in load.refused if t > since], default=since)
    return any(t > last_refusal + quiet_s for t in load.answered)


def test_shards_that_do_not_answer_are_reported_as_partial(whole_cluster, bi_encoder, tmp_path):
    """One shard per node and no replicas: with a node gone, a third of the index cannot answer."""
    cluster = whole_cluster
    from rrsearch.core.indexes import ensure_alias, passage_index_body
    from rrsearch.ingest.pipeline import run_ingest
    from rrsearch.service.http.app import create_app

    es = make_client(cluster)
    settings = cluster.model_copy(
        update={
            "number_of_shards": 3,
            "number_of_replicas": 0,
            "index_alias": "thirds",
            "search_log_enabled": False,
            "max_top_k": 200,
            "max_candidates": 200,
        }
    )
    from rrsearch.core.encoders import embedding_dims, encoder_identity, model_label

    label = model_label(settings.bi_encoder)
    body = passage_index_body(
        es, settings, dims=embedding_dims(bi_encoder), model=label, encoder_meta=encoder_identity(bi_encoder, label)
    )
    body["settings"]["index"]["routing.allocation.total_shards_per_node"] = 1
    ensure_alias(es, "thirds", body)
    run_ingest([write_corpus(tmp_path / "corpus.jsonl", n=90)], settings, alias="thirds", progress=False, es=es)
    es.options(request_timeout=60).cluster.health(index="thirds", wait_for_status="green", timeout="50s")
    client = create_app(settings, es=es, bi_encoder=bi_encoder, reranker=None).test_client()
    every = {"top_k": 100, "candidates": 100, "rerank": False}  # "note" is in every one of the 90 documents
    whole = client.post("/search", json={"query": "jazz note", **every}).get_json()
    assert whole["partial"] is False and whole["degraded"] is None

    _kill(cluster, "rrs-node-3")
    for mode in ("bm25", "knn", "hybrid"):
        response = client.post("/search", json={"query": "jazz note again", **every, "mode": mode})
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
        assert answer["partial"] is True and "partial_results" in answer["degraded"], (mode, answer["degraded"])
        assert 0 < len(answer["hits"]) < len(whole["hits"]) == 90  # a third of the documents could not answer
    es.close()
