"""The three rerank routes driven by the real client libraries, not replayed requests: Haystack's
``HuggingFaceTEIRanker`` (``/rerank``), Cohere's SDK v1 client (``/v1/rerank``) and v2 client
(``/v2/rerank``), against a real `rrs serve --role reranker` with the tiny cross-encoder. Each
must get the service's own ``/rerank`` scores for the same pairs, best first.

Test dependencies: ``cohere`` (the SDK, both clients) and ``huggingface-api-haystack`` (Haystack 3's
home of ``HuggingFaceTEIRanker``; it brings ``haystack-ai``)."""

from __future__ import annotations

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # before haystack is imported: no phoning home

import cohere
import cohere.errors
import haystack_integrations.components.rankers.huggingface_api as tei
import pytest
import requests
from haystack import Document

QUERY = "What is the capital of France?"
DOCS = [
    "The capital of France is Paris.",
    "Berlin is the capital of Germany.",
    "Paris is known for the Eiffel Tower.",
    "Bread rises because yeast makes gas.",
    "France borders Spain, Italy and Germany.",
    "The Seine flows through Paris.",
]


def own_scores(base: str, texts: list[str], *, raw: bool = False) -> list[float]:
    """The service's own /rerank scores, in input order."""
    response = requests.post(
        f"{base}/rerank", json={"query": QUERY, "texts": texts, "raw_scores": raw, "truncate": True}, timeout=30
    )
    assert response.status_code == 200, response.text
    by_index = {rank["index"]: rank["score"] for rank in response.json()}
    return [by_index[i] for i in range(len(texts))]


def best_first(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def test_the_own_scores_are_the_cross_encoders(reranker_pool, tiny_cross_encoder_dir):
    from sentence_transformers import CrossEncoder

    expected = CrossEncoder(str(tiny_cross_encoder_dir), device="cpu").predict([(QUERY, d) for d in DOCS])
    assert own_scores(reranker_pool, DOCS) == pytest.approx([float(s) for s in expected], abs=1e-5)
    assert len({round(s, 6) for s in own_scores(reranker_pool, DOCS)}) == len(DOCS)  # an order to get right


def test_haystack_tei_ranker(reranker_pool):
    scores = own_scores(reranker_pool, DOCS)
    ranker = tei.HuggingFaceTEIRanker(url=reranker_pool, top_k=4, token=None, timeout=30)
    ranked = ranker.run(query=QUERY, documents=[Document(content=d) for d in DOCS])["documents"]
    assert [DOCS.index(d.content) for d in ranked] == best_first(scores)[:4]
    assert [d.score for d in ranked] == pytest.approx([scores[i] for i in best_first(scores)[:4]], abs=1e-5)

    raw = tei.HuggingFaceTEIRanker(url=reranker_pool, top_k=10, raw_scores=True, token=None, timeout=30)
    logits = own_scores(reranker_pool, DOCS, raw=True)
    ranked = raw.run(
        query=QUERY, documents=[Document(content=d) for d in DOCS], truncation_direction=tei.TruncationDirection.LEFT
    )["documents"]
    assert [DOCS.index(d.content) for d in ranked] == best_first(scores)  # the activation keeps the order
    assert [d.score for d in ranked] == pytest.approx([logits[i] for i in best_first(scores)], abs=1e-5)


def test_cohere_v1_client(reranker_pool):
    scores = own_scores(reranker_pool, DOCS)
    client = cohere.Client(api_key="not-checked-here", base_url=reranker_pool, timeout=30, max_retries=0)
    answer = client.rerank(model="rerank-english-v3.0", query=QUERY, documents=DOCS, top_n=3, return_documents=True)
    assert [r.index for r in answer.results] == best_first(scores)[:3]
    assert [r.relevance_score for r in answer.results] == pytest.approx(
        [scores[i] for i in best_first(scores)[:3]], abs=1e-5
    )
    assert [r.document.text for r in answer.results] == [DOCS[r.index] for r in answer.results]
    assert answer.id


def test_cohere_v2_client(reranker_pool):
    scores = own_scores(reranker_pool, DOCS)
    client = cohere.ClientV2(api_key="not-checked-here", base_url=reranker_pool, timeout=30, max_retries=0)
    answer = client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=4)
    assert [r.index for r in answer.results] == best_first(scores)[:4]
    assert [r.relevance_score for r in answer.results] == pytest.approx(
        [scores[i] for i in best_first(scores)[:4]], abs=1e-5
    )
    assert answer.id and answer.meta.api_version.version == "2"
    everything = client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)  # no top_n: all, best first
    assert [r.index for r in everything.results] == best_first(scores)


def test_cohere_v2_max_tokens_per_doc_cuts_each_document_first(reranker_pool):
    client = cohere.ClientV2(api_key="not-checked-here", base_url=reranker_pool, timeout=30, max_retries=0)
    long_doc = "paris paris paris " + "berlin " * 800  # one token a word; longer than the model takes
    head, whole = own_scores(reranker_pool, ["paris paris paris", long_doc])
    cut = client.rerank(model="m", query=QUERY, documents=[long_doc], max_tokens_per_doc=3)
    assert cut.results[0].relevance_score == pytest.approx(head, abs=1e-5)
    plain = client.rerank(model="m", query=QUERY, documents=[long_doc])  # cut only to the model's limit, never refused
    assert plain.results[0].relevance_score == pytest.approx(whole, abs=1e-5)


def test_cohere_v2_errors_come_from_the_one_error_table(reranker_pool):
    client = cohere.ClientV2(api_key="not-checked-here", base_url=reranker_pool, timeout=30, max_retries=0)
    with pytest.raises(cohere.errors.BadRequestError, match="status_code: 400.*documents") as empty:
        client.rerank(model="m", query=QUERY, documents=[])
    assert empty.value.body["error"] == "invalid_request" and empty.value.body["field"] == "documents"
    with pytest.raises(cohere.errors.BadRequestError, match="status_code: 400.*relevant_spans") as spans:
        client.rerank(model="m", query=QUERY, documents=DOCS, relevant_spans=cohere.RerankRelevantSpans(mode="enabled"))
    assert spans.value.body["field"] == "relevant_spans" and "spans are not available" in spans.value.body["message"]
    disabled = client.rerank(
        model="m", query=QUERY, documents=DOCS, priority=3, relevant_spans=cohere.RerankRelevantSpans(mode="disabled")
    )
    assert len(disabled.results) == len(DOCS)
    for body, field in [
        ({"query": " ", "documents": DOCS}, "query"),
        ({"query": QUERY, "documents": [{"text": "objects are v1's"}]}, "documents.0"),
        ({"query": QUERY, "documents": DOCS, "top_n": 0}, "top_n"),
        ({"query": QUERY, "documents": DOCS, "return_documents": True}, "return_documents"),
    ]:
        response = requests.post(f"{reranker_pool}/v2/rerank", json=body, timeout=30)
        assert response.status_code == 400 and response.json()["field"] == field, response.text
