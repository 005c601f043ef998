"""The search API through Flask's test client, against a real Elasticsearch node."""

import json
import uuid

import pytest
from tcp_relay import TcpRelay

from rrsearch.core.passage import passage_text
from rrsearch.service.http.app import StartupError, create_app
from rrsearch.service.rerank import load_reranker


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder_dir, es_settings):
    return load_reranker(str(tiny_cross_encoder_dir), es_settings)


@pytest.fixture(scope="module")
def log_index(es):
    name = f"test-slog-{uuid.uuid4().hex[:8]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def settings(es_settings, service_index, tiny_cross_encoder_dir, log_index):
    return es_settings.model_copy(
        update={
            "index_alias": service_index,
            "cross_encoder": str(tiny_cross_encoder_dir),
            "search_log_index": log_index,
            "search_timeout_s": 10.0,
            "rerank_timeout_ms": 30_000.0,
        }
    )


def make_app(settings, bi_encoder, reranker, **updates):
    return create_app(settings.model_copy(update=updates), bi_encoder=bi_encoder, reranker=reranker)


@pytest.fixture(scope="module")
def client(settings, bi_encoder, reranker):
    app = make_app(settings, bi_encoder, reranker)
    app.testing = True
    return app.test_client()


def post(client, **body):
    response = client.post("/search", json=body)
    return response.status_code, response.get_json()


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_every_mode_finds_the_topic(client, mode):
    status, retrieved = post(client, query="moons of planets and telescopes", mode=mode, top_k=5, rerank=False)
    assert status == 200, retrieved
    assert retrieved["mode"] == mode and len(retrieved["hits"]) == 5
    assert [h["metadata"]["topic"] for h in retrieved["hits"]].count("astronomy") >= 3
    # the tiny reranker has random weights: check the stage ran, not its quality
    status, body = post(client, query="moons of planets and telescopes", mode=mode, top_k=5)
    first = body["hits"][0]["stages"]
    assert (first["bm25"] is not None or first["knn"] is not None) and first["fused"] and first["rerank"]
    assert body["reranked"] is True and body["degraded"] is None
    assert body["models"]["cross_encoder"] and body["models"]["bi_encoder"].endswith("all-MiniLM-L6-v2")
    timings = body["timings_ms"]
    assert timings["total"] >= timings["search"] > 0 and timings["rerank"] > 0
    assert (timings["embed_query"] > 0) == (mode != "bm25")


@pytest.mark.parametrize(
    "fusion",
    [
        {"method": "rrf", "k": 10},
        {"method": "linear", "normalization": "zscore", "weight": 0.7},
        {"method": "linear", "normalization": "minmax", "weight": 0.0},
    ],
)
def test_fusion_options(client, fusion):
    status, body = post(client, query="sourdough bread fermentation", rerank=False, fusion=fusion, collapse=False)
    assert status == 200, body
    fused = [h["stages"]["fused"]["rank"] for h in body["hits"]]
    assert fused == sorted(fused) and body["reranked"] is False
    if fusion.get("weight") == 0.0:  # BM25 only: fused order is BM25's order among BM25 hits
        bm25_ranks = [h["stages"]["bm25"]["rank"] for h in body["hits"] if h["stages"]["bm25"]]
        assert bm25_ranks == sorted(bm25_ranks)


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_filters_apply_inside_each_search(client, mode):
    status, body = post(
        client, query="planets and stars", mode=mode, top_k=10, filters={"topic": "cooking", "year": {"gte": 2000}}
    )
    assert status == 200, body
    hits = body["hits"]
    assert all(h["metadata"]["topic"] == "cooking" and h["metadata"]["year"] >= 2000 for h in hits)
    if mode != "bm25":  # kNN filtered inside the search still returns a full page, not a post-filtered remainder
        assert len(hits) == 10


def test_terms_filter(client):
    status, body = post(client, query="history of music", filters={"topic": ["music", "history"]}, top_k=10)
    assert status == 200 and {h["metadata"]["topic"] for h in body["hits"]} <= {"music", "history"}


def test_paging_reads_the_same_window(client):
    _, first = post(client, query="healthy sleep habits", top_k=10, candidates=40)
    _, second = post(client, query="healthy sleep habits", top_k=5, candidates=40, **{"from": 5})
    assert second["cached"] is True and second["from"] == 5
    assert [h["id"] for h in second["hits"]] == [h["id"] for h in first["hits"][5:10]]
    status, beyond = post(client, query="healthy sleep habits", top_k=10, candidates=40, **{"from": 35})
    assert status == 200 and len(beyond["hits"]) <= 5  # past the window's end: a short page, as in Elasticsearch


def test_collapse_keeps_the_best_passage_per_parent(client, reranker):
    query = "Twin Companions of the Rusty Planet"
    _, flat = post(client, query=query, collapse=False, top_k=20, candidates=20)
    ids = [h["id"] for h in flat["hits"]]
    assert "astro-001#0" in ids and "astro-001#1" in ids
    _, collapsed = post(client, query=query, collapse=True, top_k=20, candidates=20)
    parents = [h["parent_id"] for h in collapsed["hits"]]
    assert len(parents) == len(set(parents))
    shown = [h for h in collapsed["hits"] if h["parent_id"] == "astro-001"]
    both = [h for h in flat["hits"] if h["parent_id"] == "astro-001"]
    assert len(shown) == 1 and shown[0]["id"] == max(both, key=lambda h: h["score"])["id"]  # MaxP


def test_rerank_orders_by_the_cross_encoder(client, reranker):
    query = "how do plants take up water"
    _, fused = post(client, query=query, rerank=False, collapse=False, top_k=20, candidates=20, highlight=False)
    _, reranked = post(client, query=query, rerank=True, collapse=False, top_k=20, candidates=20, highlight=False)
    fused_ids = [h["id"] for h in fused["hits"]]
    assert sorted(fused_ids) == sorted(h["id"] for h in reranked["hits"])
    scores = reranker.model.predict([(query, passage_text(h)) for h in fused["hits"]])
    expected = [doc for _, doc in sorted(zip(-scores, fused_ids), key=lambda x: x[0])]
    assert [h["id"] for h in reranked["hits"]] == expected
    assert expected != fused_ids  # the stage really reordered
    assert [h["stages"]["rerank"]["rank"] for h in reranked["hits"]] == list(range(1, 21))


def test_highlight_snippet(client):
    _, body = post(client, query="bread", mode="bm25", top_k=3, highlight=True)
    assert "<em>" in body["hits"][0]["snippet"].lower()
    _, plain = post(client, query="bread", mode="bm25", top_k=3, highlight=False)
    assert plain["hits"][0]["snippet"] is None


def test_get_search(client):
    response = client.get("/search?q=telescope&top_k=3&mode=bm25&rerank=false")
    body = response.get_json()
    assert response.status_code == 200 and 1 <= len(body["hits"]) <= 3 and body["reranked"] is False
    assert "telescope" in (body["hits"][0]["title"] + body["hits"][0]["text"]).lower()
    assert client.get("/search?top_k=3").get_json()["field"] == "query"


@pytest.mark.parametrize(
    "raw, field",
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"query": "q", "colour": "red"}).encode(), "colour"),
        (json.dumps({"query": "q", "top_k": "5"}).encode(), "top_k"),
        (json.dumps({"query": ""}).encode(), "query"),
        (json.dumps({"query": "q" * 5000}).encode(), "query"),
        (json.dumps({"query": "q", "top_k": 1000}).encode(), "top_k"),
        (json.dumps({"query": "q", "candidates": 100000}).encode(), "candidates"),
        (json.dumps({"query": "q", "filters": {"colour": "red"}}).encode(), "filters.colour"),
        (
            json.dumps({"query": "q", "filters": {"year": "not-a-year"}}).encode(),
            "filters.year",
        ),  # checked against the type
        (json.dumps({"top_k": 3}).encode(), "query"),
        (json.dumps({"query": "q", "filters": {"year": {}}}).encode(), "filters.year"),
        (json.dumps({"query": "q", "filters": {"year": {"gte": 1, "near": 2}}}).encode(), "filters.year"),
    ],
)
def test_bad_requests_are_400_naming_the_field(client, raw, field):
    response = client.post("/search", data=raw, content_type="application/json")
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["field"] == field and body["error"] == "invalid_request" and body["message"]


def test_body_size_is_capped(client):
    response = client.post("/search", data=json.dumps({"query": "x" * 100_000}), content_type="application/json")
    assert response.status_code == 413 and response.get_json()["field"] == "body"


def test_unknown_index_is_404(settings, bi_encoder, reranker):
    app = make_app(settings, bi_encoder, reranker, allowed_indexes="test-missing-alias-xyz")
    client = app.test_client()
    status, body = post(client, query="q", index="test-missing-alias-xyz")
    assert status == 404 and body["field"] == "index"
    status, body = post(client, query="q", index="some-other-index")  # not allowed: unknown to this server
    assert status == 404


def test_api_keys(settings, bi_encoder, reranker):
    from pydantic import SecretStr

    app = make_app(settings, bi_encoder, reranker, api_keys=SecretStr("alpha-key,beta-key"))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.post("/search", json={"query": "q"}).status_code == 401
    assert client.post("/search", json={"query": "q"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.post("/search", json={"query": "bread", "top_k": 2}, headers={"Authorization": "Bearer beta-key"})
    assert ok.status_code == 200
    assert client.get("/readyz", headers={"X-API-Key": "alpha-key"}).status_code == 200
    assert client.get("/metrics").status_code == 401


def test_elasticsearch_down_is_503_and_the_process_stays_up(settings, bi_encoder, reranker):
    from rrsearch.rrs.local_node import first_free_port

    closed = f"http://127.0.0.1:{first_free_port(39_500)}"
    app = make_app(settings, bi_encoder, reranker, es_url=closed, search_timeout_s=2.0)
    client = app.test_client()
    response = client.post("/search", json={"query": "bread"})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"] == "search_backend_unavailable"
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["elasticsearch"] is False


def test_service_recovers_when_elasticsearch_returns(settings, bi_encoder, reranker, es_url):
    from urllib.parse import urlparse

    from rrsearch.rrs.local_node import first_free_port

    node = urlparse(es_url)
    relay = TcpRelay(first_free_port(39_600), (node.hostname, node.port)).start()
    client = make_app(
        settings, bi_encoder, reranker, es_url=f"http://127.0.0.1:{relay.port}", search_timeout_s=2.0
    ).test_client()
    try:
        assert post(client, query="bread", rerank=False)[0] == 200
        relay.stop()  # (each query differs: a repeated one would be answered from the window cache)
        status, body = post(client, query="sourdough bread", rerank=False)
        assert status == 503 and body["error"] == "search_backend_unavailable"
        assert client.get("/readyz").status_code == 503
        relay.start()
        status, body = post(client, query="rye bread", rerank=False)
        assert status == 200 and body["hits"], body
        assert client.get("/readyz").status_code == 200
    finally:
        relay.stop()


def test_rerank_timeout_degrades_to_fused_order(settings, bi_encoder, tiny_cross_encoder_dir):
    slow = settings.model_copy(update={"rerank_timeout_ms": 0.01})
    reranker = load_reranker(str(tiny_cross_encoder_dir), slow)
    client = create_app(slow, bi_encoder=bi_encoder, reranker=reranker).test_client()
    _, fused = post(client, query="ancient empires", rerank=False, collapse=False, top_k=20)
    _, timed_out = post(client, query="ancient empires", rerank=True, collapse=False, top_k=20)
    assert timed_out["degraded"] == "rerank_timeout" and timed_out["reranked"] is False
    assert [h["id"] for h in timed_out["hits"]] == [h["id"] for h in fused["hits"]]
    assert all(h["stages"]["rerank"] is None for h in timed_out["hits"])


def test_reranker_disabled_by_setting(settings, bi_encoder):
    client = create_app(settings.model_copy(update={"rerank_enabled": False}), bi_encoder=bi_encoder).test_client()
    _, body = post(client, query="bread")
    assert body["reranked"] is False and body["degraded"] == "rerank_disabled"
    assert client.get("/readyz").get_json()["rerank_enabled"] is False


def test_missing_reranker_stops_start_up_unless_allowed(settings, bi_encoder, tmp_path):
    bad = settings.model_copy(update={"cross_encoder": str(tmp_path / "not-a-model")})
    with pytest.raises(StartupError, match="not-a-model"):
        create_app(bad, bi_encoder=bi_encoder)
    client = create_app(bad.model_copy(update={"allow_missing_reranker": True}), bi_encoder=bi_encoder).test_client()
    ready = client.get("/readyz").get_json()
    assert ready["ready"] is True and ready["reranker_loaded"] is False
    assert any("without reranker" in p for p in ready["problems"])
    _, body = post(client, query="bread")
    assert body["degraded"] == "reranker_unavailable" and body["models"]["cross_encoder"] is None


def test_index_built_by_another_model_stops_start_up(es, es_settings, settings, bi_encoder, alias):
    from rrsearch.core.indexes import ensure_alias, passage_index_body

    ensure_alias(es, alias, passage_index_body(es, es_settings, dims=384, model="other/model"))
    with pytest.raises(StartupError, match="other/model"):
        create_app(settings.model_copy(update={"index_alias": alias}), bi_encoder=bi_encoder, reranker=None)


def test_readyz_metrics_openapi(client):
    from openapi_spec_validator import validate

    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["index_present"] is True
    post(client, query="garden soil compost")
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "rrs_requests_total",
        "rrs_stage_seconds_bucket",
        "rrs_rerank_batch_pairs_bucket",
        "rrs_rerank_queue_pairs",
    ):
        assert name in text
    assert 'stage="rerank"' in text
    spec = client.get("/openapi.json").get_json()
    validate(spec)
    assert "SearchRequest" in spec["components"]["schemas"]
    assert set(spec["paths"]) == {
        "/search",
        "/judgments",
        "/rerank",
        "/v1/rerank",
        "/v2/rerank",
        "/embed",
        "/",  # GET: the search page; POST: TEI's root route (/embed's or /rerank's)
        "/healthz",
        "/health",
        "/info",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
    assert set(spec["paths"]["/"]) == {"get", "post"}


def test_search_log_records_arrive(client, es, log_index):
    response = client.post("/search", json={"query": "search log probe", "mode": "bm25", "top_k": 3})
    bad = client.post("/search", json={"query": "q", "top_k": 0})
    assert bad.status_code == 400
    assert client.application.extensions["rrs"]["search_log"].flush(20)
    es.indices.refresh(index=log_index)
    for request_id, status in [(response.headers["X-Request-Id"], 200), (bad.headers["X-Request-Id"], 400)]:
        hits = es.search(index=log_index, query={"term": {"request_id": request_id}})["hits"]["hits"]
        assert len(hits) == 1 and hits[0]["_source"]["status"] == status
    record = es.search(index=log_index, query={"term": {"request_id": response.headers["X-Request-Id"]}})["hits"][
        "hits"
    ][0]["_source"]
    assert record["query"] == "search log probe" and len(record["hit_ids"]) == 3 and record["timings_ms"]["total"] > 0


def test_oversized_and_overlong_requests_are_logged_with_their_real_status(client, es, log_index):
    big = client.post("/search", data=b'{"query": "' + b"x" * 70_000 + b'"}', content_type="application/json")
    long_query = client.post("/search", json={"query": "q" * 5000})
    assert (big.status_code, long_query.status_code) == (413, 400)
    assert client.application.extensions["rrs"]["search_log"].flush(20)
    es.indices.refresh(index=log_index)
    for response, status in [(big, 413), (long_query, 400)]:
        hits = es.search(index=log_index, query={"term": {"request_id": response.headers["X-Request-Id"]}})["hits"][
            "hits"
        ]
        assert len(hits) == 1 and hits[0]["_source"]["status"] == status
        assert "query" not in hits[0]["_source"]  # the check ran before the record took the query


def test_wrong_method_says_which_are_allowed(client):
    response = client.delete("/search")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_a_blocked_index_gives_503_and_readyz_503_and_the_worker_still_boots(
    settings, bi_encoder, reranker, es, repo_root
):
    """An ApiError that is not a connection error (403 cluster_block_exception here) is our
    trouble: 503 with Retry-After, never a 500, and a worker that boots meanwhile comes up."""
    from rrsearch.core.encoders import embedding_dims, model_label
    from rrsearch.core.indexes import delete_alias_and_versions, ensure_alias, passage_index_body

    alias = f"test-blocked-{uuid.uuid4().hex[:8]}"
    body = passage_index_body(es, settings, dims=embedding_dims(bi_encoder), model=model_label("all-MiniLM-L6-v2"))
    name = ensure_alias(es, alias, body)
    es.indices.put_settings(index=name, settings={"index.blocks.read": True})
    try:
        app = make_app(settings, bi_encoder, reranker, index_alias=alias)  # boots
        client = app.test_client()
        response = client.post("/search", json={"query": "bread"})
        assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0, response.get_json()
        assert "cluster_block" not in response.get_data(as_text=True)  # no Elasticsearch internals
        ready = client.get("/readyz")
        assert ready.status_code == 503 and any("not ready" in p for p in ready.get_json()["problems"])
    finally:
        es.indices.put_settings(index=name, settings={"index.blocks.read": False})
        delete_alias_and_versions(es, alias)


def test_a_failing_reranker_degrades_to_the_fused_order(settings, bi_encoder, reranker, monkeypatch):
    app = make_app(settings, bi_encoder, reranker)
    client = app.test_client()

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(reranker, "rerank_top", broken)
    status, body = post(client, query="a reranker that breaks", top_k=3)
    assert status == 200 and body["reranked"] is False and body["degraded"] == "rerank_failed"
    assert len(body["hits"]) == 3


def test_blending_keeps_the_first_stage_in_the_final_order(client):
    body = {"query": "moons of planets and telescopes", "top_k": 10, "candidates": 20, "collapse": False}
    plain = post(client, **body)[1]
    first_stage = post(client, **body, rerank_weight=0.0)[1]
    half = post(client, **body, rerank_weight=0.5, rerank_depth=10, rerank_normalization="rank")[1]
    assert {k: plain["blend"][k] for k in ("weight", "depth", "normalization")} == {
        "weight": 1.0,
        "depth": 20,
        "normalization": "minmax",
    }
    assert plain["blend"]["source"] == "default" and half["blend"]["source"] == "request"
    assert all(h["stages"]["blended"] is None for h in plain["hits"])
    # weight 0: the cross-encoder has no say, so it is not run: the fused order, nothing reranked
    assert [h["stages"]["fused"]["rank"] for h in first_stage["hits"]] == list(range(1, 11))
    assert first_stage["reranked"] is False and first_stage["degraded"] is None
    assert first_stage["blend"]["weight"] == 0.0 and first_stage["blend"]["source"] == "request"
    assert all(h["stages"]["rerank"] is None for h in first_stage["hits"])
    assert {k: half["blend"][k] for k in ("weight", "depth", "normalization")} == {
        "weight": 0.5,
        "depth": 10,
        "normalization": "rank",
    }
    assert half["reranked_count"] == 10
    scores = [h["score"] for h in half["hits"]]
    assert scores == sorted(scores, reverse=True) and all(
        h["score"] == h["stages"]["blended"]["score"] for h in half["hits"]
    )


def test_a_model_folder_carries_its_calibrated_blend(settings, bi_encoder, tiny_cross_encoder_dir, tmp_path):
    import shutil

    from rrsearch.service.blend import BlendConfig, write_calibration

    folder = tmp_path / "calibrated"
    shutil.copytree(tiny_cross_encoder_dir, folder)
    write_calibration(folder, BlendConfig(weight=0.25, depth=8), {"split": "train"}, index=settings.index_alias)
    app = create_app(settings.model_copy(update={"cross_encoder": str(folder)}), bi_encoder=bi_encoder)
    status, body = post(app.test_client(), query="history of jazz", top_k=5, candidates=20)
    assert status == 200 and body["blend"]["source"] == "judgments"
    assert {k: body["blend"][k] for k in ("weight", "depth", "normalization")} == {
        "weight": 0.25,
        "depth": 8,
        "normalization": "minmax",
    }
    assert body["reranked_count"] == 8


def test_load_shrinks_the_rerank_depth_before_it_skips_the_stage(settings, es, bi_encoder, tiny_cross_encoder_dir):
    """With the measured throughput fixed so that one 3 s budget (80% of it) scores exactly the
    first 30 candidates' tokens, the searches in flight share it: alone a search reranks the top
    30, with one other the top ones within half those tokens, and among 10 (3 each) it skips the
    stage (below the floor of 10). A search reranks the top of its fused order and nothing else."""
    from itertools import accumulate

    from rrsearch.service.pipeline import SearchPipeline
    from rrsearch.service.schemas import SearchRequest

    loaded = settings.model_copy(
        update={"rerank_timeout_ms": 3000.0, "rerank_min_candidates": 10, "window_cache_size": 0}
    )
    reranker = load_reranker(str(tiny_cross_encoder_dir), loaded)
    pipeline = SearchPipeline(loaded, es, bi_encoder, reranker)
    request = SearchRequest(query="ancient empires and their rulers", candidates=40, top_k=40, collapse=False)
    fused = pipeline.search(request.model_copy(update={"rerank": False}))
    assert fused.window == 40
    pairs = [(request.query, passage_text(es.get(index=settings.index_alias, id=h.id)["_source"])) for h in fused.hits]
    used = list(accumulate(len(e.ids) for e in reranker.tokenize(pairs)))
    rate = (used[29] + 0.5) / (0.8 * 3.0)  # tokens/s at which exactly the top 30 fit one budget
    half = sum(1 for total in used if total <= (used[29] + 0.5) / 2)

    def served(others: int):
        reranker.batcher._tokens_per_s = rate  # what the batcher would have measured on a slow device
        for _ in range(others):
            pipeline.reranking.__enter__()
        try:
            return pipeline.search(request)
        finally:
            for _ in range(others):
                pipeline.reranking.__exit__()

    alone, shared, crowded = served(0), served(1), served(9)
    assert (alone.reranked_count, alone.degraded) == (30, "rerank_depth_reduced")
    assert 10 <= half < 30 and (shared.reranked_count, shared.degraded) == (half, "rerank_depth_reduced")
    assert (crowded.reranked, crowded.degraded) == (False, "rerank_overloaded")
    assert [h.id for h in crowded.hits] == [h.id for h in fused.hits]
    reranked_ids = {h.id for h in shared.hits if h.stages.rerank is not None}
    assert reranked_ids == {h.id for h in fused.hits[:half]}  # the top of the fused order only
    assert pipeline.reranking.count == 0
