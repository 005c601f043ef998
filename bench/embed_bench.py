"""Text in, reranked hits out through the plugin (rrs_embed) against the client's own vector and
``POST /search``; ``_bulk`` through the rrsearch-embed pipeline against ``rrs ingest``. One run.

    HF_HUB_OFFLINE=1 ES_URL=http://127.0.0.1:9200 python bench/embed_bench.py \\
        [--docs 1000] [--requests 20] [--rerank-requests 8] [--window 100] [--rerank-window 20] [--concurrency 1 8]

The node must have our plugin (``rrs es start`` installs it). The script indexes the first
``--docs`` SciFact abstracts (bench/retriever_bench.py's alias, reused when complete), starts a
pool (``rrs serve --role reranker``: the MiniLM-L6-size cross-encoder of bench/_common.py for
/rerank and the bi-encoder for /embed) and the search service (``rrs serve``, gunicorn)
reranking through it, and points the node's ``rrs.reranker.url`` at the pool (``rrs_embed`` uses
the same pool). Then, for rerank off (``rrs_rrf``) and on (``rrs_rerank(rrs_rrf)``) and each
concurrency, the same SciFact test queries go through

* ``_search`` with nothing but text: the kNN child's ``query_vector_builder`` is ``rrs_embed``
  (the coordinating node embeds the query through the pool's ``/embed``);
* ``_search`` with a client-side vector: the client embeds the query itself (the same bi-encoder,
  one thread; that time is measured per query and added to its round trip), as the README's
  example did before rrs_embed;
* ``POST /search`` (the service: ``_msearch``, fusion in Python, the pool's ``/rerank``).

Each cell gets queries of its own; within a cell the three paths take the same queries,
interleaved batch by batch. Then ingest, on ``sample/corpus.jsonl``: ``rrs ingest`` (in this
process, after a warm-up run, so no model loading is timed; its own end-to-end passages/s) into
an alias made by ``rrs index create``, and elasticsearch-py's plain ``_bulk`` of the same
passages without vectors (``chunk_size`` 500) into a second such alias, embedded by the
pipeline's ``rrs_embed`` through the pool; the cosine of each pair of vectors is checked.
Prints and writes ``bench/results/embed_bench.json`` with p50/p95 per path, the ratios to
``POST /search`` and to the client-vector ``_search``, and the ingest ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import numpy as np  # noqa: E402
import requests  # noqa: E402

from bench._common import build_minilm_cross_encoder, load_queries  # noqa: E402
from bench.retriever_bench import index_docs, percentile, serve  # noqa: E402


def bodies(settings, vector: list[float] | None, query: str, window: int, rerank: bool) -> dict:
    """The service's two searches fused by rrs_rrf (under rrs_rerank when ``rerank``); the kNN child
    carries ``vector``, or, when it is None, ``rrs_embed`` with the query text."""
    from bench.retriever_bench import retriever

    body = retriever(settings, vector or [0.0], query, window, rerank)
    fused = body["rrs_rerank"]["retriever"] if rerank else body
    if vector is None:
        knn = fused["rrs_rrf"]["retrievers"][1]["knn"]
        del knn["query_vector"]
        knn["query_vector_builder"] = {"rrs_embed": {"text": query}}
    return body


def run_cell(queries, concurrency, service, es_url, alias, settings, bi_encoder, window, rerank) -> dict:
    from rrsearch.core.encoders import encode_query
    from rrsearch.core.passage import SOURCE_FIELDS

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    def via_service(query: str):
        started = time.perf_counter()
        body = {"query": query, "top_k": 10, "candidates": window, "rerank": rerank, "collapse": False}
        response = session.post(f"{service}/search", json={**body, "highlight": False}, timeout=300)
        assert response.status_code == 200, response.text[:300]
        return (time.perf_counter() - started) * 1000, response.json()["degraded"]

    vectors, embed = {}, {}
    for query in queries:  # the client's embedding, one query at a time, added to its _search round trip
        started = time.perf_counter()
        vectors[query] = [float(x) for x in encode_query(bi_encoder, query, prompt=settings.query_prompt)]
        embed[query] = (time.perf_counter() - started) * 1000

    def via_search(query: str, text_only: bool):
        vector = None if text_only else vectors[query]
        started = time.perf_counter()
        response = session.post(
            f"{es_url}/{alias}/_search",
            json={"retriever": bodies(settings, vector, query, window, rerank), "size": 10, "_source": SOURCE_FIELDS},
            timeout=300,
        )
        assert response.status_code == 200, response.text[:300]
        took = (time.perf_counter() - started) * 1000 + (0.0 if text_only else embed[query])
        return took, response.headers.get("Warning"), [hit["_id"] for hit in response.json()["hits"]["hits"]]

    times: dict[str, list[float]] = {"post_search": [], "search_text_only": [], "search_client_vector": []}
    degraded: dict[str, list] = {name: [] for name in times}
    same_top10 = 0
    with ThreadPoolExecutor(concurrency) as workers:
        for start in range(0, len(queries), concurrency):
            batch = queries[start : start + concurrency]
            for took, reason in workers.map(via_service, batch):
                times["post_search"].append(took)
                degraded["post_search"] += [reason] if reason else []
            text = list(workers.map(lambda q: via_search(q, True), batch))
            client = list(workers.map(lambda q: via_search(q, False), batch))
            for name, results in (("search_text_only", text), ("search_client_vector", client)):
                for took, warning, _ in results:
                    times[name].append(took)
                    degraded[name] += [warning] if warning else []
            same_top10 += sum(a[2] == b[2] for a, b in zip(text, client))
    cell = {
        "concurrency": concurrency,
        "rerank": rerank,
        "window": window,
        "requests": len(queries),
        **{f"{name}_ms": {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95)} for name, v in times.items()},
        "client_embed_ms_p50": statistics.median(embed.values()),
        "text_only_top10_equals_client_vector": f"{same_top10}/{len(queries)}",
        "degraded": degraded,
    }
    for q in ("p50", "p95"):
        text = cell["search_text_only_ms"][q]
        cell[f"text_only_over_post_search_{q}"] = round(text / cell["post_search_ms"][q], 3)
        cell[f"text_only_over_client_vector_{q}"] = round(text / cell["search_client_vector_ms"][q], 3)
    return cell


def ingest_both(es, es_url: str, settings, work: Path) -> dict:
    """rrs ingest vs _bulk through the pipeline, on the sample corpus, each into its own `rrs index create` alias."""
    from click.testing import CliRunner
    from elasticsearch import helpers

    from rrsearch.core.indexes import delete_alias_and_versions
    from rrsearch.rrs.cli import main
    from rrsearch.rrs.es_plugin import detach_embed_pipeline

    corpus = ROOT.parent / "sample" / "corpus.jsonl"
    env = {"ES_URL": es_url, "HF_HUB_OFFLINE": "1"}

    def cli(*args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        if result.exit_code != 0:
            raise SystemExit(result.output)
        return result.stdout

    ingested, bulked = "bench-embed-ingest", "bench-embed-bulk"
    for alias in (ingested, bulked):
        delete_alias_and_versions(es, alias)
        cli("index", "create", "--alias", alias)
    cli("ingest", str(corpus), "--index", ingested, "--no-progress")  # warm-up: the model loads here
    report = json.loads(cli("ingest", str(corpus), "--index", ingested, "--reindex", "--no-progress", "--json"))
    es.indices.refresh(index=ingested)
    hits = es.search(index=ingested, size=10_000, source_exclude_vectors=False)["hits"]["hits"]
    raw = ("id", "parent_id", "chunk", "chunk_count", "title", "text", "metadata")
    passages = {hit["_id"]: hit["_source"] for hit in hits}
    whole = {k: v for k, v in passages.items() if v["chunk_count"] == 1}  # what a _bulk user sends as it is
    started = time.perf_counter()
    done, errors = helpers.bulk(
        es,
        ({"_index": bulked, "_id": k, "_source": {f: v[f] for f in raw}} for k, v in whole.items()),
        chunk_size=500,
        raise_on_error=False,
    )
    seconds = time.perf_counter() - started
    es.indices.refresh(index=bulked)
    stored = {
        h["_id"]: h["_source"]
        for h in es.search(index=bulked, size=10_000, source_exclude_vectors=False)["hits"]["hits"]
    }
    cosines = [
        float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
        for k in whole
        for a, b in [(np.asarray(passages[k]["embedding"]), np.asarray(stored[k]["embedding"]))]
    ]
    for alias in (ingested, bulked):
        delete_alias_and_versions(es, alias)
        detach_embed_pipeline(es, alias)
    bulk_rate = len(whole) / seconds
    return {
        "corpus": "sample/corpus.jsonl",
        "rrs_ingest": {"passages": report["indexed"], "passages_per_s": round(report["passages_per_second"], 1)},
        "bulk_pipeline": {"passages": done, "errors": len(errors), "passages_per_s": round(bulk_rate, 1)},
        "bulk_over_rrs_ingest": round(bulk_rate / report["passages_per_second"], 3),
        "cosine_min": round(min(cosines), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20, help="queries per cell without rerank")
    parser.add_argument("--rerank-requests", type=int, default=8, help="queries per cell with rerank")
    parser.add_argument("--window", type=int, default=100, help="fused candidates without rerank")
    parser.add_argument("--rerank-window", type=int, default=20, help="candidates reranked")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "embed_bench.json")
    args = parser.parse_args()

    import torch

    from rrsearch.core.encoders import load_bi_encoder
    from rrsearch.core.es_client import make_client, resolve_url
    from rrsearch.core.settings import Settings

    settings = Settings()
    es = make_client(settings, request_timeout=300)
    es_url = resolve_url(settings).split(",")[0]
    bi_encoder = load_bi_encoder(settings.bi_encoder, "cpu")
    alias = index_docs(es, settings, bi_encoder, args.docs)
    queries = list(load_queries("test")[0].values())
    cells = [(rerank, c) for rerank in (False, True) for c in args.concurrency]
    sizes = [args.rerank_requests if rerank else args.requests for rerank, _ in cells]
    if len(queries) < sum(sizes):
        raise SystemExit(f"{len(queries)} test queries cannot give {len(cells)} cells of {sizes}")
    work = Path(tempfile.mkdtemp(prefix="embed-bench-"))
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
    with serve(19_910, pool_env, work / "pool.log") as pool:
        service_env = {**common, "ES_URL": es_url, "RRS_INDEX_ALIAS": alias, "RRS_RERANKER_URL": pool}
        service_env.update(RRS_RERANK_TIMEOUT_MS="600000", RRS_SERVE_THREADS="16")
        es.cluster.put_settings(
            persistent={"rrs.reranker.url": pool, "rrs.reranker.timeout": "600s", "rrs.embedder.timeout": "60s"}
        )
        try:
            with serve(19_911, service_env, work / "service.log") as service:
                torch.set_num_threads(1)  # the client embeds on one thread, not the machine
                for number, (rerank, concurrency) in enumerate(cells):
                    mine = queries[sum(sizes[:number]) : sum(sizes[: number + 1])]
                    window = args.rerank_window if rerank else args.window
                    cell = run_cell(mine, concurrency, service, es_url, alias, settings, bi_encoder, window, rerank)
                    print(json.dumps(cell), flush=True)
                    results.append(cell)
                torch.set_num_threads(os.cpu_count() or 1)
                ingest = ingest_both(es, es_url, settings, work)
                print(json.dumps(ingest), flush=True)
        finally:
            es.cluster.put_settings(
                persistent={"rrs.reranker.url": None, "rrs.reranker.timeout": None, "rrs.embedder.timeout": None}
            )
    record = {
        "docs": args.docs,
        "requests_per_cell": sizes,
        "cross_encoder": "MiniLM-L6-H384 (bench/_common.py), CPU",
        "bi_encoder": settings.bi_encoder,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg()[0],
        "cells": results,
        "ingest": ingest,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
