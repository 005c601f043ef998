"""Helpers for the plugin's retrievers (rrs_rrf, rrs_linear, rrs_rerank) against the service:
a SciFact subset indexed as the service indexes passages, the `_search` bodies that ask for
what ``POST /search`` does, and the node's reranker pool settings. Used by
test_es_retrievers.py (one node) and test_cluster.py (three nodes)."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path

from elasticsearch import helpers
from serve_process import rrs_serve

from rrsearch.core.encoders import encode_passages, encode_query, model_label
from rrsearch.rrs.local_node import first_free_port
from rrsearch.service.retrieval import bm25_body, knn_body, parse_fields

SCIFACT = Path("/work/shared/data/scifact")
QUERIES = 50  # SciFact test queries compared (the bar)
FILLER = 120  # corpus documents beside the judged ones (~190 passages in all)


@lru_cache(maxsize=1)
def scifact_subset() -> tuple[list[tuple[str, str]], list[dict]]:
    """The first ``QUERIES`` SciFact test queries (id, text) and the passages to search: their judged
    documents plus the first ``FILLER`` of the corpus (a few hundred passages)."""
    judged: dict[str, set[str]] = {}
    for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query, doc, _ = line.split("\t")
        judged.setdefault(query, set()).add(doc)
    texts = {row["_id"]: row["text"] for row in map(json.loads, (SCIFACT / "queries.jsonl").read_text().splitlines())}
    queries = [(q, texts[q]) for q in list(judged)[:QUERIES]]
    wanted = set().union(*(judged[q] for q, _ in queries))
    passages = []
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt") as corpus:
        for number, line in enumerate(corpus):
            row = json.loads(line)
            if number < FILLER or row["_id"] in wanted:
                passages.append(
                    {
                        "id": row["_id"],
                        "parent_id": row["_id"],
                        "chunk": 0,
                        "chunk_count": 1,
                        "title": row.get("title") or "",
                        "text": row["text"],
                        "metadata": {},
                    }
                )
    return queries, passages


@lru_cache(maxsize=1)
def _vectors(bi_encoder) -> list[list[float]]:
    _, passages = scifact_subset()
    return [v.tolist() for v in encode_passages(bi_encoder, [f"{p['title']}. {p['text']}" for p in passages])]


def index_subset(es, settings, bi_encoder, alias: str) -> str:
    """The subset under ``alias``, with the index body the service's ingest uses; embedded once per process."""
    from rrsearch.core.encoders import embedding_dims
    from rrsearch.core.indexes import ensure_alias, passage_index_body

    label = model_label(settings.bi_encoder)
    ensure_alias(es, alias, passage_index_body(es, settings, dims=embedding_dims(bi_encoder), model=label))
    _, passages = scifact_subset()
    actions = (
        {"_index": alias, "_id": p["id"], "_source": {**p, "model": label, "embedding": v}}
        for p, v in zip(passages, _vectors(bi_encoder))
    )
    helpers.bulk(es, actions, refresh="wait_for")
    # One segment: approximate kNN over several segments searched concurrently shares one top-k
    # between threads, so two runs of the same query could differ in the tail of the window.
    es.indices.forcemerge(index=alias, max_num_segments=1)
    es.indices.refresh(index=alias)
    return alias


def rrf_retriever(settings, bi_encoder, query: str, window: int) -> dict:
    """``rrs_rrf(standard BM25, knn)`` with exactly the service's two searches (its own body builders)."""
    vector = [float(x) for x in encode_query(bi_encoder, query, prompt=settings.query_prompt)]
    bm25 = bm25_body(query, parse_fields(settings.bm25_fields), [], size=window, tie_breaker=settings.bm25_tie_breaker)[
        "query"
    ]
    knn = knn_body(vector, [], size=window, num_candidates=settings.knn_num_candidates)["knn"]
    return {
        "rrs_rrf": {
            "retrievers": [{"standard": {"query": bm25}}, {"knn": knn}],
            "rank_constant": settings.rrf_k,
            "rank_window_size": window,
        }
    }


def text_only(body, query: str, **options):
    """``body`` with every client-side ``query_vector`` replaced by the plugin's ``rrs_embed`` builder
    (``options``: its ``fallback``): the same search, with nothing but text in it."""
    if isinstance(body, list):
        return [text_only(item, query, **options) for item in body]
    if not isinstance(body, dict):
        return body
    out = {key: text_only(value, query, **options) for key, value in body.items() if key != "query_vector"}
    if "query_vector" in body:
        out["query_vector_builder"] = {"rrs_embed": {"text": query, **options}}
    return out


def set_embedder(es, url: str | None, timeout: str | None = None) -> None:
    """The node's own embedding pool (unset: the reranker's pool serves /embed too) and its timeout."""
    es.cluster.put_settings(persistent={"rrs.embedder.url": url, "rrs.embedder.timeout": timeout})


def linear_retriever(rrf: dict, weight: float, normalizer: str) -> dict:
    """The same children fused by ``rrs_linear``; the service's kNN ``weight`` is weights [1 - w, w]."""
    inner = rrf["rrs_rrf"]
    return {
        "rrs_linear": {
            "retrievers": inner["retrievers"],
            "weights": [1.0 - weight, weight],
            "normalizer": normalizer,
            "rank_window_size": inner["rank_window_size"],
        }
    }


def rerank_retriever(child: dict, query: str, window: int, **options) -> dict:
    """``rrs_rerank`` reading "title. text" (the service's passage_text) over ``child``."""
    return {
        "rrs_rerank": {
            "retriever": child,
            "field": ["title", "text"],
            "inference_text": query,
            "rank_window_size": window,
            **options,
        }
    }


def set_pool(es, url: str | None, timeout: str | None = None) -> None:
    """Point the cluster's nodes at a reranker pool (cluster settings: an admin's call, never a search's)."""
    es.cluster.put_settings(persistent={"rrs.reranker.url": url, "rrs.reranker.timeout": timeout})


def search_ids(es, index: str, retriever: dict, size: int, **extra) -> list[tuple[str, float]]:
    response = es.search(index=index, retriever=retriever, size=size, source=False, **extra)
    return [(hit["_id"], hit["_score"]) for hit in response["hits"]["hits"]]


class Pool:
    """`rrs serve --role reranker` with the tiny cross-encoder (and the bi-encoder: RRS_POOL_MODELS's default
    serves /rerank and /embed); ``stop()`` ends it mid-module."""

    def __init__(self, tiny_cross_encoder_dir, log, port: int = 19_700):
        env = {
            "RRS_SERVE_ROLE": "reranker",
            "RRS_CROSS_ENCODER": str(tiny_cross_encoder_dir),
            "RRS_DEVICE": "cpu",
            "RRS_SERVE_THREADS": "4",
            "HF_HUB_OFFLINE": "1",
            "RRS_SEARCH_LOG_ENABLED": "false",
            "ES_URL": "http://127.0.0.1:1",
            "RRS_RERANK_TIMEOUT_MS": "60000",
        }
        self.stack = ExitStack()
        self.url = self.stack.enter_context(rrs_serve(first_free_port(port), env, log))

    def stop(self):
        self.stack.close()


class SilentServer:
    """A pool that accepts connections and never answers."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self):
        while True:
            try:
                self.held.append(self.server.accept()[0])
            except OSError:
                return

    def close(self):
        for conn in self.held:
            conn.close()
        self.server.close()
