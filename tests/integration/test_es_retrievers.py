"""The plugin's retrievers on a real node and a real reranker pool, against ``POST /search``.

One SciFact subset (50 test queries, ~300 passages) is indexed as the service indexes it; the
service (Flask test client) and the node both rerank through the same `rrs serve --role
reranker` process (the tiny cross-encoder), so the same candidates get the same scores and the
two paths must agree hit for hit. The pool is stopped in the last test of the module."""

from __future__ import annotations

import json
import threading
import time
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from elasticsearch import ApiError, ElasticsearchWarning
from es_retrievers import (
    QUERIES,
    Pool,
    SilentServer,
    index_subset,
    linear_retriever,
    rerank_retriever,
    rrf_retriever,
    scifact_subset,
    search_ids,
    set_pool,
)
from serve_process import rrs_serve

from rrsearch.rrs.local_node import first_free_port
from rrsearch.service.http.app import create_app
from rrsearch.service.remote_rerank import RemoteReranker

WINDOW = 100  # fused candidates (the service's default)
RERANK_WINDOW = 20  # reranked candidates: 50 queries x 2 paths through a CPU pool stay within seconds


@pytest.fixture(scope="module")
def pool(tiny_cross_encoder_dir, tmp_path_factory):
    running = Pool(tiny_cross_encoder_dir, tmp_path_factory.mktemp("pool") / "server.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def alias(es, es_settings, bi_encoder):
    from rrsearch.core.indexes import delete_alias_and_versions

    name = index_subset(es, es_settings, bi_encoder, f"test-retrievers-{uuid.uuid4().hex[:8]}")
    yield name
    delete_alias_and_versions(es, name)


@pytest.fixture(scope="module")
def pooled(es, pool):
    """The node's rrs.reranker.url names the pool for this module (a cluster setting), then is cleared."""
    set_pool(es, pool.url, "60s")
    yield pool
    set_pool(es, None, None)


@pytest.fixture(scope="module")
def settings(es_settings, alias, pool):
    return es_settings.model_copy(
        update={
            "index_alias": alias,
            "search_log_enabled": False,
            "search_timeout_s": 30.0,
            "rerank_timeout_ms": 60_000.0,
            "reranker_url": pool.url,
        }
    )


@pytest.fixture(scope="module")
def service(settings, bi_encoder, pool):
    """``POST /search`` reranking through the same pool as the node."""
    app = create_app(settings, bi_encoder=bi_encoder, reranker=RemoteReranker(pool.url))
    app.testing = True
    return app.test_client()


def service_hits(service, query: str, **options) -> list[tuple[str, float]]:
    body = {"query": query, "collapse": False, "highlight": False, **options}
    response = service.post("/search", json=body)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert not answer["degraded"], answer["degraded"]
    return [(hit["id"], hit["score"]) for hit in answer["hits"]]


def assert_same(ours, theirs, *, rel=1e-5):
    assert [doc for doc, _ in ours] == [doc for doc, _ in theirs]
    for (_, a), (_, b) in zip(ours, theirs):
        assert a == pytest.approx(b, rel=rel, abs=1e-7)


def test_rrs_rrf_equals_the_services_rrf_order_and_scores(es, alias, service, settings, bi_encoder):
    queries, _ = scifact_subset()
    assert len(queries) == QUERIES
    for _, query in queries:
        ours = search_ids(es, alias, rrf_retriever(settings, bi_encoder, query, WINDOW), WINDOW)
        theirs = service_hits(service, query, top_k=WINDOW, candidates=WINDOW, rerank=False)
        assert len(ours) > 20
        assert_same(ours, theirs)  # the whole fused window, ties included


def test_rrs_linear_equals_the_services_linear_fusion(es, alias, service, settings, bi_encoder):
    queries, _ = scifact_subset()
    for number, (_, query) in enumerate(queries):
        normalizer = ("minmax", "zscore")[number % 2]  # each normalizer on 25 of the 50 queries
        body = linear_retriever(rrf_retriever(settings, bi_encoder, query, WINDOW), 0.3, normalizer)
        ours = search_ids(es, alias, body, WINDOW)
        theirs = service_hits(
            service,
            query,
            top_k=WINDOW,
            candidates=WINDOW,
            rerank=False,
            fusion={"method": "linear", "weight": 0.3, "normalization": normalizer},
        )
        assert [doc for doc, _ in ours] == [doc for doc, _ in theirs]
        # z-scores are lifted by one constant so that Elasticsearch keeps them positive (and in order);
        # a float near the lifted scores (~10) is 1e-6 wide
        shift, tolerance = (0.0, 1e-6) if normalizer == "minmax" else (ours[0][1] - theirs[0][1], 1e-5)
        assert [score - shift for _, score in ours] == pytest.approx([s for _, s in theirs], rel=1e-5, abs=tolerance)


def test_rrs_rerank_over_rrs_rrf_equals_post_search_top_10(es, alias, pooled, service, settings, bi_encoder):
    queries, _ = scifact_subset()
    moved = 0
    for _, query in queries:
        fused = rrf_retriever(settings, bi_encoder, query, RERANK_WINDOW)
        ours = search_ids(es, alias, rerank_retriever(fused, query, RERANK_WINDOW), 10)
        theirs = service_hits(service, query, top_k=10, candidates=RERANK_WINDOW, rerank=True)
        assert_same(ours, theirs)
        moved += [doc for doc, _ in ours] != [doc for doc, _ in search_ids(es, alias, fused, 10)]
    assert moved > QUERIES // 2  # the cross-encoder did reorder: the comparison is not fused vs fused


def test_a_blend_equals_the_services_blend(es, alias, pooled, service, settings, bi_encoder):
    queries, _ = scifact_subset()
    for _, query in queries[:10]:
        fused = rrf_retriever(settings, bi_encoder, query, RERANK_WINDOW)
        blended = rerank_retriever(fused, query, RERANK_WINDOW, weight=0.4, normalization="rank")
        ours = search_ids(es, alias, blended, 10)
        theirs = service_hits(
            service,
            query,
            top_k=10,
            candidates=RERANK_WINDOW,
            rerank=True,
            rerank_weight=0.4,
            rerank_normalization="rank",
        )
        assert_same(ours, theirs)


def test_from_and_size_page_through_the_reranked_window(es, alias, pooled, service, settings, bi_encoder):
    _, query = scifact_subset()[0][3]
    body = rerank_retriever(rrf_retriever(settings, bi_encoder, query, RERANK_WINDOW), query, RERANK_WINDOW)
    whole = search_ids(es, alias, body, RERANK_WINDOW)
    pages = [search_ids(es, alias, body, 7, from_=start) for start in (0, 7, 14)]
    assert [doc for page in pages for doc, _ in page] == [doc for doc, _ in whole]
    assert len(whole) == RERANK_WINDOW and search_ids(es, alias, body, 10, from_=RERANK_WINDOW) == []
    second = service_hits(service, query, top_k=7, candidates=RERANK_WINDOW, rerank=True, **{"from": 7})
    assert_same(pages[1], second)
    cut = {"rrs_rerank": {**body["rrs_rerank"], "min_score": whole[4][1]}}  # applied after the rerank
    assert search_ids(es, alias, cut, 10) == whole[:5]


@pytest.fixture(scope="module")
def fused_on_node(settings, bi_encoder, pool):
    """The service with RRS_RETRIEVAL_PATH=retrievers: one _search that rrs_rrf/rrs_linear fuse."""
    app = create_app(
        settings.model_copy(update={"retrieval_path": "retrievers"}),
        bi_encoder=bi_encoder,
        reranker=RemoteReranker(pool.url),
    )
    app.testing = True
    return app.test_client()


def test_the_service_fusing_on_the_node_serves_the_same_hits(es, alias, pooled, service, fused_on_node):
    queries, _ = scifact_subset()
    for number, (_, query) in enumerate(queries):
        fusion = [{}, {"fusion": {"method": "linear", "weight": 0.3, "normalization": "minmax"}}][number % 2]
        options = {"top_k": WINDOW, "candidates": WINDOW, "rerank": False, **fusion}
        assert_same(service_hits(fused_on_node, query, **options), service_hits(service, query, **options))
    for _, query in queries[:10]:  # the rerank stage on top sees the same candidates in the same order
        options = {"top_k": 10, "candidates": RERANK_WINDOW, "rerank": True}
        assert_same(service_hits(fused_on_node, query, **options), service_hits(service, query, **options))
    # z-scores come back lifted by one constant (Elasticsearch keeps scores positive): same order
    options = {
        "top_k": WINDOW,
        "candidates": WINDOW,
        "rerank": False,
        "fusion": {"method": "linear", "weight": 0.3, "normalization": "zscore"},
    }
    ours, theirs = (
        service_hits(fused_on_node, queries[0][1], **options),
        service_hits(service, queries[0][1], **options),
    )
    shift = ours[0][1] - theirs[0][1]
    assert [d for d, _ in ours] == [d for d, _ in theirs]
    assert [s - shift for _, s in ours] == pytest.approx([s for _, s in theirs], abs=1e-5)
    highlighted = [
        client.post("/search", json={"query": queries[0][1], "top_k": 10, "highlight": True}).get_json()
        for client in (fused_on_node, service)
    ]
    assert [h["snippet"] for h in highlighted[0]["hits"]] == [h["snippet"] for h in highlighted[1]["hits"]]
    assert any("<em>" in (h["snippet"] or "") for h in highlighted[0]["hits"])
    first = highlighted[0]["hits"][0]
    assert first["stages"]["fused"]["rank"] >= 1
    assert first["stages"]["bm25"] is None and first["stages"]["knn"] is None  # the node fused them: no per-stage ranks


def test_a_node_without_the_retrievers_is_a_503_that_names_the_plugin(es, alias):
    """What RRS_RETRIEVAL_PATH=retrievers meets on a node whose plugin lacks them (here: a name
    no plugin declares, as a node without ours answers for rrs_rrf)."""
    from rrsearch.core.errors import RetrieversMissing
    from rrsearch.service.http.errors import to_api_error
    from rrsearch.service.retrieval import search

    with pytest.raises(RetrieversMissing) as raised:
        search(es, alias, {"retriever": {"rrs_not_installed": {}}}, timeout_s=10)
    answer = to_api_error(raised.value, retry_after_s=5)
    assert (answer.status, answer.error, answer.headers) == (503, "retrievers_missing", {"Retry-After": "5"})
    assert "needs our plugin on every node" in answer.message


def test_a_reranker_pool_announces_itself_to_the_local_node(
    es, es_settings, alias, pooled, tiny_cross_encoder_dir, tmp_path, settings, bi_encoder
):
    """`rrs serve --role reranker` beside the local node: the node's rrs.reranker.url names it while
    it runs (rrs_rerank reranks through it) and is cleared when it exits."""
    if es_settings.es_url:
        pytest.skip("ES_URL names an external node: a pool wires only the local one")
    env = {
        "RRS_SERVE_ROLE": "reranker",
        "RRS_CROSS_ENCODER": str(tiny_cross_encoder_dir),
        "RRS_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
        "RRS_SEARCH_LOG_ENABLED": "false",
        "ES_URL": "",
        "RRS_HOME": str(tmp_path),
        "RRS_ES_NODE_DIR": str(es_settings.node_dir),
        "RRS_RERANK_TIMEOUT_MS": "60000",
    }
    _, query = scifact_subset()[0][5]
    body = rerank_retriever(rrf_retriever(settings, bi_encoder, query, RERANK_WINDOW), query, RERANK_WINDOW)
    set_pool(es, None, "60s")
    try:
        with rrs_serve(first_free_port(19_760), env, tmp_path / "announced.log") as url:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _persistent_pool(es) != url:
                time.sleep(0.2)
            assert _persistent_pool(es) == url
            assert json.loads((tmp_path / "run" / "reranker-pool.json").read_text())["url"] == url
            hits, said, _ = _skipped_search(es, alias, body)
            assert said == [] and len(hits) == 10  # reranked through the announced pool, nothing skipped
        assert _persistent_pool(es) is None and not (tmp_path / "run" / "reranker-pool.json").exists()
    finally:
        set_pool(es, pooled.url, "60s")


def _persistent_pool(es):
    return es.cluster.get_settings(flat_settings=True)["persistent"].get("rrs.reranker.url")


BAD = [
    ({"rrs_rrf": {"retrievers": []}}, "needs at least one retriever"),
    ({"rrs_rrf": {"retrievers": [{"standard": {}}], "rank_constant": 0}}, r"\[rank_constant\] must be at least 1"),
    ({"rrs_rrf": {"retrievers": [{"standard": {}}], "colour": 1}}, r"unknown field \[colour\]"),
    ({"rrs_linear": {"retrievers": [{"standard": {}}], "weights": [1, 2]}}, "1 retrievers but 2 weights"),
    ({"rrs_linear": {"retrievers": [{"standard": {}}], "normalizer": "l2"}}, "must be one of minmax, zscore"),
    (
        {"rrs_rerank": {"retriever": {"standard": {}}, "field": "text", "inference_text": "x", "weight": 2}},
        r"\[weight\] must be in \[0, 1\]",
    ),
    ({"rrs_rerank": {"retriever": {"standard": {}}, "field": "text", "inference_text": "  "}}, "must not be blank"),
    ({"rrs_rerank": {"retriever": {"standard": {}}, "inference_text": "x"}}, r"\[field\]"),
    (
        {
            "rrs_rerank": {
                "retriever": {"standard": {}},
                "field": "text",
                "inference_text": "x",
                "normalization": "zscore",
            }
        },
        "must be one of minmax, rank",
    ),
    (
        {"rrs_rerank": {"retriever": {"standard": {}}, "field": "text", "inference_text": "x", "url": "http://evil"}},
        r"unknown field \[url\]",
    ),  # the pool is the node's, never the request's
]


@pytest.mark.parametrize(("retriever", "reason"), BAD)
def test_bad_parameters_are_a_400_that_says_why(es, alias, retriever, reason):
    with pytest.raises(ApiError, match=reason) as raised:
        es.search(index=alias, retriever=retriever)
    assert raised.value.status_code == 400


class _Garbage(BaseHTTPRequestHandler):
    def do_POST(self):  # http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"<html>not a rank list</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _skipped_search(es, alias, body) -> tuple[list, list[str], float]:
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hits = search_ids(es, alias, body, 10)
    said = [str(w.message) for w in caught if issubclass(w.category, ElasticsearchWarning)]
    return hits, said, time.monotonic() - started


def test_a_slow_or_garbled_pool_is_skipped_within_the_timeout(es, alias, pooled, settings, bi_encoder):
    _, query = scifact_subset()[0][0]
    fused = rrf_retriever(settings, bi_encoder, query, RERANK_WINDOW)
    first_stage = [doc for doc, _ in search_ids(es, alias, fused, 10)]
    silent = SilentServer()
    garbage = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=garbage.serve_forever, daemon=True).start()
    try:
        set_pool(es, silent.url, "1s")
        hits, said, took = _skipped_search(es, alias, rerank_retriever(fused, query, RERANK_WINDOW))
        assert [doc for doc, _ in hits] == first_stage and took < 5
        assert any("rrs_rerank skipped" in s and "did not answer within 1s" in s for s in said), said

        set_pool(es, f"http://127.0.0.1:{garbage.server_address[1]}", "5s")
        hits, said, _ = _skipped_search(es, alias, rerank_retriever(fused, query, RERANK_WINDOW))
        assert [doc for doc, _ in hits] == first_stage
        assert any("not a rank list" in s for s in said), said

        with pytest.raises(ApiError, match="rrs_rerank") as raised:
            es.options(retry_on_status=(), max_retries=0).search(
                index=alias, retriever=rerank_retriever(fused, query, RERANK_WINDOW, strict=True)
            )
        assert raised.value.status_code == 503
        assert "[strict] is true: the reranker pool's answer is not a rank list" in json.dumps(raised.value.body)
    finally:
        set_pool(es, pooled.url, "60s")
        silent.close()
        garbage.shutdown()


def test_the_pool_stopped_mid_test_still_answers_200_in_first_stage_order(es, alias, pooled, settings, bi_encoder):
    """Last in the module: the pool process ends here."""
    _, query = scifact_subset()[0][1]
    fused = rrf_retriever(settings, bi_encoder, query, RERANK_WINDOW)
    body = rerank_retriever(fused, query, RERANK_WINDOW)
    reranked, said, _ = _skipped_search(es, alias, body)
    assert said == []
    pooled.stop()
    hits, said, took = _skipped_search(es, alias, body)
    assert [doc for doc, _ in hits] == [doc for doc, _ in search_ids(es, alias, fused, 10)] != [d for d, _ in reranked]
    assert took < 5 and any("rrs_rerank skipped" in s and "unreachable" in s for s in said), said


def test_the_node_log_has_no_entitlement_refusal(es_settings, es, alias):
    if es_settings.es_url:
        pytest.skip("ES_URL names an external node: its log is not ours to read")
    logs = "".join(p.read_text(errors="replace") for p in (es_settings.node_dir / "logs").glob("*.log"))
    assert "rrs_rerank skipped" in logs or "continuing with existing ranks" in logs  # the log is the one searched
    assert "NotEntitledException" not in logs
