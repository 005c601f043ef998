"""`POST /rerank`: text-embeddings-inference's request and answer, Cohere's `documents`/`top_n`
(and `/v2/rerank`, Cohere's v2 shape),
driven with the HTTP calls that Haystack's and LangChain-style TEI/Cohere rerankers make
(written from their documented shapes), against the real `rrs serve`: once as a search front
end with an in-process model, once as `--role reranker` behind a search front end
(`RRS_RERANKER_URL`), which must give the same results."""

from __future__ import annotations

import math

import pytest
import requests
from sentence_transformers import CrossEncoder
from serve_process import rrs_serve

from rrsearch.service.rerank import default_max_length

DOCS = [
    "The capital of France is Paris.",
    "Berlin is the capital of Germany.",
    "Paris is known for the Eiffel Tower.",
    "Bread rises because yeast makes gas.",
]
QUERY = "What is the capital of France?"


@pytest.fixture(scope="module")
def remote_front(search_front_env, reranker_pool, tmp_path_factory):
    """The same front end, reranking through the pool."""
    from rrsearch.rrs.local_node import first_free_port

    front_env = {**search_front_env, "RRS_RERANKER_URL": reranker_pool, "RRS_CROSS_ENCODER": "unused-when-remote"}
    with rrs_serve(first_free_port(19_400), front_env, tmp_path_factory.mktemp("remote") / "server.log") as base:
        yield base


def expected_scores(tiny_cross_encoder_dir) -> list[float]:
    return [
        float(s) for s in CrossEncoder(str(tiny_cross_encoder_dir), device="cpu").predict([(QUERY, d) for d in DOCS])
    ]


def test_tei_request_and_answer_as_haystack_sends_it(search_front, tiny_cross_encoder_dir):
    # Haystack's HuggingFaceTEIRanker: POST <url>/rerank with these keys, reads index and score.
    response = requests.post(
        f"{search_front}/rerank",
        json={
            "query": QUERY,
            "texts": DOCS,
            "raw_scores": False,
            "truncate": True,
            "truncation_direction": "Right",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    ranks = response.json()
    assert sorted(r["index"] for r in ranks) == [0, 1, 2, 3] and set(ranks[0]) == {"index", "score"}
    assert [r["score"] for r in ranks] == sorted((r["score"] for r in ranks), reverse=True)
    by_index = {r["index"]: r["score"] for r in ranks}
    assert [by_index[i] for i in range(4)] == pytest.approx(expected_scores(tiny_cross_encoder_dir), abs=1e-5)
    name, duration = response.headers["Server-Timing"].split(";dur=")  # model time, apart from transport
    assert name == "rerank" and 0.0 < float(duration) < response.elapsed.total_seconds() * 1000


def test_return_text_raw_scores_and_left_truncation(search_front, tiny_cross_encoder_dir):
    plain = requests.post(f"{search_front}/rerank", json={"query": QUERY, "texts": DOCS}, timeout=30).json()
    raw = requests.post(
        f"{search_front}/rerank",
        json={"query": QUERY, "texts": DOCS, "raw_scores": True, "return_text": True},
        timeout=30,
    ).json()
    assert [r["index"] for r in raw] == [r["index"] for r in plain]  # the activation keeps the order
    assert all(r["text"] == DOCS[r["index"]] for r in raw)
    sigmoid = [1 / (1 + math.exp(-r["score"])) for r in raw]  # the tiny model's activation
    assert sigmoid == pytest.approx([r["score"] for r in plain], abs=1e-5)
    long_text = "filler words " * 600 + "the capital of France is Paris"
    too_long = requests.post(f"{search_front}/rerank", json={"query": QUERY, "texts": [long_text]}, timeout=30)
    assert too_long.status_code == 413 and too_long.json()["error"] == "input_too_long"
    left = requests.post(
        f"{search_front}/rerank",
        json={"query": QUERY, "texts": [long_text], "truncate": True, "truncation_direction": "Left"},
        timeout=30,
    )
    right = requests.post(
        f"{search_front}/rerank", json={"query": QUERY, "texts": [long_text], "truncate": True}, timeout=30
    )
    assert left.status_code == right.status_code == 200
    cap = default_max_length("cpu")  # the service's pair cap (RRS_DEVICE=cpu, no RRS_RERANK_MAX_LENGTH)
    head = float(
        CrossEncoder(str(tiny_cross_encoder_dir), device="cpu", max_length=cap).predict([(QUERY, long_text)])[0]
    )
    assert right.json()[0]["score"] == pytest.approx(head, abs=1e-5)  # right: the start is kept, as predict does
    assert left.json()[0]["score"] != pytest.approx(head, abs=1e-5)  # left: the end (with Paris) is kept


def test_cohere_documents_and_top_n_as_a_cohere_client_sends_them(search_front):
    # LangChain's CohereRerank (and Cohere's SDK): query, documents, top_n, model; reads results.
    response = requests.post(
        f"{search_front}/v1/rerank",
        json={
            "model": "rerank-english-v3.0",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 2,
            "return_documents": True,
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 2 and {"index", "relevance_score", "document"} <= set(results[0])
    assert results[0]["document"]["text"] == DOCS[results[0]["index"]]
    objects = requests.post(
        f"{search_front}/rerank", json={"query": QUERY, "documents": [{"text": d} for d in DOCS]}, timeout=30
    ).json()["results"]
    assert [r["index"] for r in objects[:2]] == [r["index"] for r in results]


def test_cohere_v2_shape_on_the_search_front(search_front):
    # cohere.ClientV2.rerank (tests/integration/test_rerank_clients.py drives the SDK itself).
    v1 = requests.post(f"{search_front}/v1/rerank", json={"query": QUERY, "documents": DOCS}, timeout=30).json()
    response = requests.post(
        f"{search_front}/v2/rerank",
        json={
            "model": "rerank-v3.5",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 3,
            "max_tokens_per_doc": 4096,
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"id", "results", "meta"} and answer["meta"]["api_version"] == {"version": "2"}
    assert [set(r) for r in answer["results"]] == [{"index", "relevance_score"}] * 3
    assert [r["index"] for r in answer["results"]] == [r["index"] for r in v1["results"][:3]]
    assert [r["relevance_score"] for r in answer["results"]] == pytest.approx(
        [r["relevance_score"] for r in v1["results"][:3]], abs=1e-6
    )
    refused = requests.post(f"{search_front}/v2/rerank", json={"query": QUERY, "texts": DOCS}, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"texts": DOCS}, "query"),
        ({"query": QUERY}, "body"),  # "give either texts (TEI) or documents (Cohere)"
        ({"query": QUERY, "texts": []}, "texts"),
        ({"query": QUERY, "texts": DOCS, "documents": DOCS}, "body"),
        ({"query": QUERY, "texts": DOCS, "truncation_direction": "Middle"}, "truncation_direction"),
        ({"query": QUERY, "texts": [1, 2]}, "texts.0"),
    ],
)
def test_bad_rerank_requests_are_400_naming_the_field(search_front, body, field):
    response = requests.post(f"{search_front}/rerank", json=body, timeout=30)
    assert response.status_code == 400 and response.json()["field"] == field, response.text


def test_a_remote_reranker_gives_the_same_results_as_an_in_process_one(search_front, remote_front, reranker_pool):
    info = requests.get(f"{reranker_pool}/info", timeout=5).json()
    assert info["model_type"] == "reranker" and info["model_id"]
    assert (
        requests.post(f"{reranker_pool}/search", json={"query": "q"}, timeout=5).status_code == 404
    )  # no search there
    for query in ["tomato plants in pots", "moons of planets and telescopes", "history of jazz"]:
        body = {"query": query, "top_k": 5, "candidates": 20}
        local = requests.post(f"{search_front}/search", json=body, timeout=60).json()
        remote = requests.post(f"{remote_front}/search", json=body, timeout=60).json()
        assert remote["reranked"] is True and remote["degraded"] is None
        assert [h["id"] for h in remote["hits"]] == [h["id"] for h in local["hits"]]
        assert [h["stages"]["rerank"]["score"] for h in remote["hits"]] == pytest.approx(
            [h["stages"]["rerank"]["score"] for h in local["hits"]], abs=1e-5
        )
    ready = requests.get(f"{remote_front}/readyz", timeout=10).json()
    assert ready["reranker_loaded"] is True and not ready["problems"]
