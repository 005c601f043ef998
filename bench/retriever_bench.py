"""`_search` with the plugin's retrievers against the service's `POST /search`, same queries, one run.

    HF_HUB_OFFLINE=1 ES_URL=http://127.0.0.1:9200 python bench/retriever_bench.py \
        [--docs 1000] [--requests 20] [--rerank-requests 8] [--window 100] [--concurrency 1 8]

The node must have our plugin (``rrs es start`` installs it). The script indexes the first
``--docs`` SciFact abstracts (alias bench-retrievers-<docs>, reused when complete), starts a
reranker pool (``rrs serve --role reranker`` with the MiniLM-L6-size cross-encoder of
bench/_common.py) and the search service (``rrs serve``, gunicorn) reranking through that
pool, and points the node's ``rrs.reranker.url`` at the same pool. Then, for rerank off and
on and each concurrency, the same SciFact test queries go through

* ``POST /search`` (``_msearch`` + Python fusion + the pool, in the service), and
* ``POST /search`` of a second service with ``RRS_RETRIEVAL_PATH=retrievers`` (one ``_search``
  fused on the node by ``rrs_rrf``, then the pool, in the service), and
* ``_search`` with ``rrs_rerank(rrs_rrf(standard, knn))`` (or ``rrs_rrf`` alone) sent by a
  client that embeds the query itself (the same bi-encoder, one thread, as a client would; each
  query's embedding time is measured alone and added to its round trip).

Each cell gets queries of its own (the service's window cache never answers); within a cell
the two paths take the same queries, interleaved; a rerank either path skipped is counted
(the service's ``degraded``, the plugin's ``Warning``). Prints and writes
``bench/results/retriever_bench.json``: p50/p95 per path and the ratios _search / service and
service fused on the node / service.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import requests  # noqa: E402

from bench._common import build_minilm_cross_encoder, load_corpus, load_queries  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def index_docs(es, settings, bi_encoder, docs: int) -> str:
    """The first ``docs`` SciFact abstracts, one passage each, as the service indexes them."""
    from elasticsearch import helpers

    from rrsearch.core.encoders import embedding_dims, encode_passages, model_label
    from rrsearch.core.indexes import current_index, delete_alias_and_versions, ensure_alias, passage_index_body

    alias = f"bench-retrievers-{docs}"
    corpus = load_corpus()[:docs]
    if current_index(es, alias) and es.count(index=alias)["count"] == len(corpus):
        return alias
    delete_alias_and_versions(es, alias)
    label = model_label(settings.bi_encoder)
    ensure_alias(es, alias, passage_index_body(es, settings, dims=embedding_dims(bi_encoder), model=label))
    vectors = encode_passages(bi_encoder, [f"{d['title']}. {d['text']}" for d in corpus], batch_size=64)
    helpers.bulk(
        es,
        (
            {
                "_index": alias,
                "_id": d["_id"],
                "_source": {
                    "id": d["_id"],
                    "parent_id": d["_id"],
                    "chunk": 0,
                    "chunk_count": 1,
                    "title": d["title"],
                    "text": d["text"],
                    "metadata": {},
                    "model": label,
                    "embedding": v.tolist(),
                },
            }
            for d, v in zip(corpus, vectors)
        ),
        refresh="wait_for",
    )
    return alias


@contextmanager
def serve(port: int, env: dict, log: Path):
    """``rrs serve`` on 127.0.0.1:``port`` until the block ends (its whole process group)."""
    rrs = Path(sys.executable).parent / "rrs"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(rrs), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"rrs serve exited: {log.read_text()[-2000:]}")
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def retriever(settings, vector: list[float], query: str, window: int, rerank: bool) -> dict:
    """The service's two searches, fused (and reranked) by the plugin: the retriever the service
    itself sends with RRS_RETRIEVAL_PATH=retrievers, under ``rrs_rerank`` when ``rerank``."""
    from rrsearch.service.retrieval import bm25_body, fused_body, knn_body, parse_fields

    bm25 = bm25_body(query, parse_fields(settings.bm25_fields), [], size=window, tie_breaker=settings.bm25_tie_breaker)
    knn = knn_body(vector, [], size=window, num_candidates=settings.knn_num_candidates)
    fused = fused_body(bm25, knn, method="rrf", size=window, rrf_k=settings.rrf_k)["retriever"]
    if not rerank:
        return fused
    return {
        "rrs_rerank": {
            "retriever": fused,
            "field": ["title", "text"],
            "inference_text": query,
            "rank_window_size": window,
        }
    }


def run_cell(
    queries,
    concurrency: int,
    service: str,
    fused_service: str,
    es_url: str,
    alias: str,
    settings,
    bi_encoder,
    window: int,
    rerank: bool,
) -> dict:
    from rrsearch.core.encoders import encode_query
    from rrsearch.core.passage import SOURCE_FIELDS

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    def via_service(query: str, base: str = service) -> float:
        started = time.perf_counter()
        response = session.post(
            f"{base}/search",
            json={
                "query": query,
                "top_k": 10,
                "candidates": window,
                "rerank": rerank,
                "collapse": False,
                "highlight": False,
            },
            timeout=300,
        )
        answer = response.json() if response.status_code == 200 else {}
        assert response.status_code == 200, response.text[:300]
        return (time.perf_counter() - started) * 1000, answer["degraded"]

    # The client embeds each query before its _search (the service embeds inside /search); that time is
    # measured here, one query at a time, and added to the query's _search round trip.
    vectors, embed = {}, {}
    for query in queries:
        started = time.perf_counter()
        vectors[query] = [float(x) for x in encode_query(bi_encoder, query, prompt=settings.query_prompt)]
        embed[query] = (time.perf_counter() - started) * 1000

    def via_search(query: str) -> tuple[float, float]:
        started = time.perf_counter()
        response = session.post(
            f"{es_url}/{alias}/_search",
            json={
                "retriever": retriever(settings, vectors[query], query, window, rerank),
                "size": 10,
                "_source": SOURCE_FIELDS,
            },
            timeout=300,
        )
        assert response.status_code == 200, response.text[:300]
        return (time.perf_counter() - started) * 1000 + embed[query], embed[query], response.headers.get("Warning")

    service_ms, fused_ms, search_ms, embed_ms = [], [], [], []
    degraded = {"service": [], "service_retrievers": [], "search": []}
    with ThreadPoolExecutor(concurrency) as workers:
        for start in range(0, len(queries), concurrency):
            batch = queries[start : start + concurrency]  # the same queries, path after path, batch by batch
            for total, reason in workers.map(via_service, batch):
                service_ms.append(total)
                degraded["service"] += [reason] if reason else []
            for total, reason in workers.map(lambda query: via_service(query, fused_service), batch):
                fused_ms.append(total)
                degraded["service_retrievers"] += [reason] if reason else []
            for total, embedding, warning in workers.map(via_search, batch):
                search_ms.append(total)
                embed_ms.append(embedding)
                degraded["search"] += [warning] if warning else []
    cell = {
        "concurrency": concurrency,
        "rerank": rerank,
        "requests": len(queries),
        "service_ms": {"p50": percentile(service_ms, 0.5), "p95": percentile(service_ms, 0.95)},
        "service_retrievers_ms": {"p50": percentile(fused_ms, 0.5), "p95": percentile(fused_ms, 0.95)},
        "search_ms": {"p50": percentile(search_ms, 0.5), "p95": percentile(search_ms, 0.95)},
        "client_embed_ms_p50": statistics.median(embed_ms),
        "degraded": degraded,
    }  # the service's `degraded`, the plugin's Warning: the rerank was skipped
    cell["ratio_p50"] = round(cell["search_ms"]["p50"] / cell["service_ms"]["p50"], 3)
    cell["ratio_p95"] = round(cell["search_ms"]["p95"] / cell["service_ms"]["p95"], 3)
    cell["service_retrievers_ratio_p50"] = round(cell["service_retrievers_ms"]["p50"] / cell["service_ms"]["p50"], 3)
    cell["service_retrievers_ratio_p95"] = round(cell["service_retrievers_ms"]["p95"] / cell["service_ms"]["p95"], 3)
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20, help="queries per cell without rerank")
    parser.add_argument(
        "--rerank-requests",
        type=int,
        default=8,
        help="queries per cell with rerank (100 MiniLM pairs take seconds on a CPU)",
    )
    parser.add_argument("--window", type=int, default=100, help="fused candidates, all reranked")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "retriever_bench.json")
    args = parser.parse_args()

    from rrsearch.core.encoders import load_bi_encoder
    from rrsearch.core.es_client import make_client, resolve_url
    from rrsearch.core.settings import Settings

    settings = Settings()
    es = make_client(settings)
    es_url = resolve_url(settings).split(",")[0]
    import torch

    bi_encoder = load_bi_encoder(settings.bi_encoder, "cpu")
    alias = index_docs(es, settings, bi_encoder, args.docs)
    torch.set_num_threads(1)  # the client: one thread, not the machine
    queries = list(load_queries("test")[0].values())
    cells = [(rerank, c) for rerank in (False, True) for c in args.concurrency]
    sizes = [args.rerank_requests if rerank else args.requests for rerank, _ in cells]
    if len(queries) < sum(sizes):
        raise SystemExit(f"{len(queries)} test queries cannot give {len(cells)} cells of {sizes}")
    work = Path(tempfile.mkdtemp(prefix="retriever-bench-"))
    model = build_minilm_cross_encoder(work / "cross-encoder")
    common = {"HF_HUB_OFFLINE": "1", "RRS_DEVICE": "cpu", "RRS_SEARCH_LOG_ENABLED": "false"}
    pool_env = {
        **common,
        "RRS_SERVE_ROLE": "reranker",
        "RRS_CROSS_ENCODER": str(model),
        "ES_URL": "http://127.0.0.1:1",
        "RRS_SERVE_THREADS": "16",
        "RRS_RERANK_TIMEOUT_MS": "600000",
    }
    results = []
    with serve(19_900, pool_env, work / "pool.log") as pool:
        service_env = {
            **common,
            "ES_URL": es_url,
            "RRS_INDEX_ALIAS": alias,
            "RRS_RERANKER_URL": pool,
            "RRS_RERANK_TIMEOUT_MS": "600000",
            "RRS_SERVE_THREADS": "16",
        }
        es.cluster.put_settings(persistent={"rrs.reranker.url": pool, "rrs.reranker.timeout": "600s"})
        try:
            with (
                serve(19_901, service_env, work / "service.log") as service,
                serve(19_902, {**service_env, "RRS_RETRIEVAL_PATH": "retrievers"}, work / "fused.log") as fused,
            ):
                for number, (rerank, concurrency) in enumerate(cells):
                    mine = queries[sum(sizes[:number]) : sum(sizes[: number + 1])]
                    cell = run_cell(
                        mine, concurrency, service, fused, es_url, alias, settings, bi_encoder, args.window, rerank
                    )
                    print(json.dumps(cell), flush=True)
                    results.append(cell)
        finally:
            es.cluster.put_settings(persistent={"rrs.reranker.url": None, "rrs.reranker.timeout": None})
    record = {
        "docs": args.docs,
        "window": args.window,
        "requests_per_cell": sizes,
        "cross_encoder": "MiniLM-L6-H384 (bench/_common.py), CPU",
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg()[0],
        "cells": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
