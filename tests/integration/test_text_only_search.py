"""Text in, reranked hits out, through plain ``_search`` and ``_bulk`` (issue 36): the plugin's
``rrs_embed`` query vector builder and ingest processor against a real node and a real pool
(`rrs serve --role reranker`, serving /rerank and /embed), compared with ``POST /search`` and
``rrs ingest``.

The search side uses test_es_retrievers' SciFact subset and the service's own body builders with
the client-side query vector replaced by ``rrs_embed`` (es_retrievers.text_only): the service
embeds its query in-process and the node asks the pool, both torch fp32 with the same model, so
the top 10 must agree hit for hit within test_es_retrievers' tolerance (scores to 1e-5 relative).
The ingest side creates its indexes with ``rrs index create`` (which makes the rrsearch-embed
pipeline) and fills one with ``rrs ingest`` and one with elasticsearch-py's plain ``_bulk`` of the
same passages, without vectors."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from click.testing import CliRunner
from elasticsearch import ApiError, ElasticsearchWarning, helpers
from es_retrievers import (
    SilentServer,
    index_subset,
    linear_retriever,
    rerank_retriever,
    rrf_retriever,
    scifact_subset,
    search_ids,
    set_embedder,
    set_pool,
    text_only,
)

from rrsearch.core.encoders import model_label
from rrsearch.rrs.es_plugin import EMBED_PIPELINE
from rrsearch.service.http.app import create_app
from rrsearch.service.remote_rerank import RemoteReranker

WINDOW = 20  # candidates reranked (as test_es_retrievers)
QUERIES = 20  # SciFact test queries compared text-only (test_es_retrievers compares 50 with client vectors)
SAMPLE_DOCS = 40  # sample corpus documents ingested both ways


@pytest.fixture(scope="module")
def pooled(es, reranker_pool) -> Iterator[str]:
    """rrs.reranker.url names the pool; rrs.embedder.url is unset, so rrs_embed uses the same pool."""
    set_pool(es, reranker_pool, "60s")
    set_embedder(es, None, "30s")
    yield reranker_pool
    set_embedder(es, None, None)
    set_pool(es, None, None)


@pytest.fixture(scope="module")
def scifact(es, es_settings, bi_encoder):
    from rrsearch.core.indexes import delete_alias_and_versions

    name = index_subset(es, es_settings, bi_encoder, f"test-text-only-{uuid.uuid4().hex[:8]}")
    yield name
    delete_alias_and_versions(es, name)


def _service(settings, bi_encoder, pool_url: str, alias):
    app = create_app(
        settings.model_copy(
            update={
                "index_alias": alias,
                "search_log_enabled": False,
                "search_timeout_s": 30.0,
                "rerank_timeout_ms": 60_000.0,
                "reranker_url": pool_url,
            }
        ),
        bi_encoder=bi_encoder,
        reranker=RemoteReranker(pool_url),
    )
    app.testing = True
    return app.test_client()


def service_hits(service, query: str, **options) -> list[tuple[str, float]]:
    body = {"query": query, "collapse": False, "highlight": False, "top_k": 10, "candidates": WINDOW, **options}
    response = service.post("/search", json=body)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert not answer["degraded"], answer["degraded"]
    return [(hit["id"], hit["score"]) for hit in answer["hits"]]


def assert_same(ours, theirs):
    assert [doc for doc, _ in ours] == [doc for doc, _ in theirs]
    assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-5, abs=1e-7)


def hybrid(settings, bi_encoder, query: str, **options) -> dict:
    """rrs_rerank(rrs_rrf(standard BM25, knn)) with nothing but text: the knn child's vector is rrs_embed's."""
    fused = text_only(rrf_retriever(settings, bi_encoder, query, WINDOW), query, **options)
    return rerank_retriever(fused, query, WINDOW)


def test_text_only_hybrid_reranked_search_equals_post_search(es, es_settings, scifact, pooled, bi_encoder):
    service = _service(es_settings, bi_encoder, pooled, scifact)
    queries, _ = scifact_subset()
    for _, query in queries[:QUERIES]:
        body = hybrid(es_settings, bi_encoder, query)
        assert '"query_vector":' not in json.dumps(body)  # no client-side vector
        assert_same(search_ids(es, scifact, body, 10), service_hits(service, query, rerank=True))
    # inside rrs_linear too: the same fused list as with the client's own vector
    for _, query in queries[:3]:
        with_vector = linear_retriever(rrf_retriever(es_settings, bi_encoder, query, WINDOW), 0.3, "minmax")
        assert_same(
            search_ids(es, scifact, text_only(with_vector, query), 10), search_ids(es, scifact, with_vector, 10)
        )


def _cli(args: list[str], es_url: str) -> str:
    from rrsearch.rrs.cli import main

    result = CliRunner().invoke(main, args, env={"ES_URL": es_url, "HF_HUB_OFFLINE": "1"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def bulk_aliases(es, es_url, repo_root, tmp_path_factory, pooled):
    """Two aliases made by `rrs index create`: `ingested` filled by `rrs ingest`, `bulked` by a plain
    elasticsearch-py _bulk of the same passages (no vectors); the passages' ids."""
    from rrsearch.core.indexes import delete_alias_and_versions
    from rrsearch.rrs.es_plugin import detach_embed_pipeline

    ingested, bulked = (f"test-embed-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("ingest", "bulk"))
    source = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    source.write_text("".join((repo_root / "sample" / "corpus.jsonl").read_text().splitlines(True)[:SAMPLE_DOCS]))
    try:
        for alias in (ingested, bulked):
            assert f"embedded by the ingest pipeline {EMBED_PIPELINE}" in _cli(
                ["index", "create", "--alias", alias], es_url
            )
        _cli(["ingest", str(source), "--index", ingested, "--no-progress"], es_url)
        es.indices.refresh(index=ingested)
        passages = {
            hit["_id"]: hit["_source"]
            for hit in es.search(index=ingested, size=1000, source_exclude_vectors=False)["hits"]["hits"]
        }
        single = {k: v for k, v in passages.items() if v["chunk_count"] == 1}  # a _bulk user sends passages whole
        raw = ("id", "parent_id", "chunk", "chunk_count", "title", "text", "metadata")
        started = time.perf_counter()
        done, errors = helpers.bulk(
            es,
            ({"_index": bulked, "_id": k, "_source": {f: v[f] for f in raw}} for k, v in single.items()),
            refresh="wait_for",
            raise_on_error=False,
        )
        print(f"_bulk through the pipeline: {len(single) / (time.perf_counter() - started):.1f} passages/s")
        assert errors == [] and done == len(single) >= SAMPLE_DOCS // 2
        yield ingested, bulked, passages, sorted(single)
    finally:
        for alias in (ingested, bulked):
            delete_alias_and_versions(es, alias)
            detach_embed_pipeline(es, alias)


def _vectors(es, alias: str) -> dict[str, dict]:
    hits = es.search(index=alias, size=1000, source_exclude_vectors=False)["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def test_bulk_of_raw_passages_gets_the_vectors_rrs_ingest_makes(es, bulk_aliases, es_settings):
    _, bulked, passages, ids = bulk_aliases
    stored = _vectors(es, bulked)
    label = model_label(es_settings.bi_encoder)
    cosines = []
    for passage_id in ids:
        a, b = np.asarray(passages[passage_id]["embedding"]), np.asarray(stored[passage_id]["embedding"])
        cosines.append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
        assert stored[passage_id]["model"] == label
    assert min(cosines) > 0.999, min(cosines)
    # a text-only kNN search finds each passage by its own title
    for passage_id in ids[:5]:
        knn = {"field": "embedding", "query_vector_builder": {"rrs_embed": {"text": stored[passage_id]["title"]}}}
        found = search_ids(es, bulked, {"knn": {**knn, "k": 3, "num_candidates": 50}}, 3)
        assert passage_id in [doc for doc, _ in found]


def test_a_passage_with_its_vector_keeps_it_and_one_of_another_model_fails(es, bulk_aliases, es_settings):
    """rrs ingest sends vectors with their model: the pipeline keeps them (nothing is embedded twice)."""
    _, bulked, _, _ = bulk_aliases
    label = model_label(es_settings.bi_encoder)
    mine = [0.0] * 383 + [1.0]
    es.index(index=bulked, id="kept", document={"text": "t", "embedding": mine, "model": label}, refresh=True)
    assert es.get(index=bulked, id="kept", source_exclude_vectors=False)["_source"]["embedding"] == mine
    with pytest.raises(ApiError, match="from model \\[other/model\\]") as raised:
        es.index(index=bulked, id="other", document={"text": "t", "embedding": mine, "model": "other/model"})
    assert raised.value.status_code == 400


def test_elasticsearch_py_bulk_then_text_only_hybrid_search_equals_post_search(
    es, es_settings, bulk_aliases, pooled, bi_encoder
):
    _, bulked, _, _ = bulk_aliases
    service = _service(es_settings, bi_encoder, pooled, bulked)
    for query in ("planet moons orbit", "vitamin deficiency", "ancient trade routes"):
        assert_same(search_ids(es, bulked, hybrid(es_settings, bi_encoder, query), 10), service_hits(service, query))


def test_a_model_mismatch_is_a_400_that_says_so(es, es_settings, bi_encoder, pooled, bulk_aliases):
    from rrsearch.core.encoders import embedding_dims
    from rrsearch.core.indexes import delete_alias_and_versions, ensure_alias, passage_index_body

    alias = f"test-embed-other-{uuid.uuid4().hex[:6]}"
    body = passage_index_body(es, es_settings, dims=embedding_dims(bi_encoder), model="intfloat/other-model")
    ensure_alias(es, alias, body)
    try:
        with pytest.raises(ApiError, match="model mismatch") as raised:
            es.search(index=alias, retriever=hybrid(es_settings, bi_encoder, "vitamin d", fallback="bm25"))
        assert raised.value.status_code == 400  # never a fallback: the pool is up, it is the wrong one
        reason = json.dumps(raised.value.body)
        assert "[intfloat/other-model]" in reason and f"[{model_label(es_settings.bi_encoder)}]" in reason
        with pytest.raises(ApiError, match="model mismatch") as bulk_raised:
            es.index(index=alias, document={"title": "t", "text": "x"}, pipeline=EMBED_PIPELINE)
        assert bulk_raised.value.status_code == 400
    finally:
        delete_alias_and_versions(es, alias)


def _search_warned(es, index, body) -> tuple[list, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hits = search_ids(es, index, body, 10)
    return hits, [str(w.message) for w in caught if issubclass(w.category, ElasticsearchWarning)]


def test_a_pool_that_is_down_is_a_503_or_with_fallback_the_bm25_child_alone(
    es, es_settings, scifact, pooled, bi_encoder, bulk_aliases
):
    _, query = scifact_subset()[0][2]
    bm25_alone = text_only(rrf_retriever(es_settings, bi_encoder, query, WINDOW), query)
    bm25_alone["rrs_rrf"]["retrievers"] = bm25_alone["rrs_rrf"]["retrievers"][:1]
    strict = es.options(retry_on_status=(), max_retries=0)
    set_embedder(es, "http://127.0.0.1:1", "5s")
    try:
        with pytest.raises(ApiError, match="unreachable") as raised:
            strict.search(index=scifact, retriever=hybrid(es_settings, bi_encoder, query))
        assert raised.value.status_code == 503
        hits, said = _search_warned(es, scifact, hybrid(es_settings, bi_encoder, query, fallback="bm25"))
        assert [d for d, _ in hits] == [
            d for d, _ in search_ids(es, scifact, rerank_retriever(bm25_alone, query, WINDOW), 10)
        ]
        assert any("rrs_embed fell back to bm25" in s and "unreachable" in s for s in said), said
        # ingest: the document fails with the reason (what on_failure would see), never indexed without its vector
        with pytest.raises(ApiError, match="unreachable") as bulk_raised:
            strict.index(index=scifact, document={"title": "t", "text": "x"}, pipeline=EMBED_PIPELINE)
        assert bulk_raised.value.status_code == 503
        simulated = es.ingest.simulate(id=EMBED_PIPELINE, docs=[{"_index": scifact, "_source": {"text": "x"}}])
        assert "rrs_embed" in json.dumps(simulated.body) and "unreachable" in json.dumps(simulated.body)
    finally:
        set_embedder(es, None, "30s")


def test_a_slow_pool_is_a_504_within_the_timeout(es, es_settings, scifact, pooled, bi_encoder):
    _, query = scifact_subset()[0][3]
    silent = SilentServer()
    set_embedder(es, silent.url, "1s")
    try:
        started = time.monotonic()
        with pytest.raises(ApiError, match="did not answer within 1s") as raised:
            es.options(retry_on_status=(), max_retries=0).search(
                index=scifact, retriever=hybrid(es_settings, bi_encoder, query)
            )
        assert raised.value.status_code == 504 and time.monotonic() - started < 5
        hits, said = _search_warned(es, scifact, hybrid(es_settings, bi_encoder, query, fallback="bm25"))
        assert len(hits) == 10 and any("did not answer within 1s" in s for s in said), said
    finally:
        set_embedder(es, None, "30s")
        silent.close()


LANGCHAIN_SCRIPT = """
import json, sys
from langchain_elasticsearch import ElasticsearchRetriever

url, index, queries, bodies = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
by_query = dict(zip(queries, bodies))
retriever = ElasticsearchRetriever(
    es_url=url, index_name=index, body_func=lambda q: {"retriever": by_query[q], "size": 10}, content_field="text"
)
print(json.dumps([[d.metadata["_id"] for d in retriever.invoke(q)] for q in queries]))
"""


def test_langchain_retriever_with_a_text_only_body_equals_post_search(
    es, es_url, es_settings, scifact, pooled, bi_encoder
):
    """LangChain's ElasticsearchRetriever (own venv: it needs elasticsearch<9) sends the body as given:
    no encoder on the client side, hybrid rrs_rrf + rrs_rerank on the node."""
    from client_venvs import langchain_python

    if es_settings.es_url:
        pytest.skip("LangChain is checked against the local node (ES_URL names another cluster)")
    service = _service(es_settings, bi_encoder, pooled, scifact)
    queries = [query for _, query in scifact_subset()[0][:3]]
    bodies = [hybrid(es_settings, bi_encoder, query) for query in queries]
    run = subprocess.run(
        [
            str(langchain_python()),
            "-c",
            LANGCHAIN_SCRIPT,
            es_url.split(",")[0],
            scifact,
            json.dumps(queries),
            json.dumps(bodies),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found == [[doc for doc, _ in service_hits(service, query)] for query in queries]


LLAMAINDEX_SCRIPT = """
import json, sys
from elasticsearch.helpers.vectorstore import AsyncBM25Strategy
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
from llama_index.vector_stores.elasticsearch import ElasticsearchStore

url, index, queries, bodies = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
by_query = dict(zip(queries, bodies))
store = ElasticsearchStore(index_name=index, es_url=url, text_field="text", retrieval_strategy=AsyncBM25Strategy())
found = []
for q in queries:
    # custom_query replaces the store's own body (the store adds size): text only, no embed model on the client
    query = VectorStoreQuery(query_str=q, similarity_top_k=10, mode=VectorStoreQueryMode.TEXT_SEARCH)
    found.append(list(store.query(query, custom_query=lambda body, text: {"retriever": by_query[text]}).ids))
print(json.dumps(found))
"""


def test_llamaindex_store_with_a_custom_text_only_body_equals_post_search(
    es, es_url, es_settings, scifact, pooled, bi_encoder
):
    """LlamaIndex's ElasticsearchStore takes a custom_query that replaces its body. (Haystack's
    Elasticsearch retrievers build their own BM25 or embedding bodies and take no custom one.)"""
    from client_venvs import llamaindex_python

    if es_settings.es_url:
        pytest.skip("LlamaIndex is checked against the local node (ES_URL names another cluster)")
    service = _service(es_settings, bi_encoder, pooled, scifact)
    queries = [query for _, query in scifact_subset()[0][:3]]
    bodies = [hybrid(es_settings, bi_encoder, query) for query in queries]
    run = subprocess.run(
        [
            str(llamaindex_python()),
            "-c",
            LLAMAINDEX_SCRIPT,
            es_url.split(",")[0],
            scifact,
            json.dumps(queries),
            json.dumps(bodies),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found == [[doc for doc, _ in service_hits(service, query)] for query in queries]
