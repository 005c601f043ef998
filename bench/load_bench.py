"""Load with rerank on: what the service serves, and how good it is, as concurrency grows.

    ES_URL=http://127.0.0.1:9200 python bench/load_bench.py [--model DIR] [--weight W] [--depth D] [--queries 100] \
        [--concurrency 1 4 16] [--configs defaults torch] [--out bench/results/load.json]

Indexes SciFact once (alias bench-scifact), then for each configuration starts ``rrs serve``
(its settings as a user gets them, plus the configuration's environment) with the
cross-encoder ``--model`` (default: the MiniLM-L6-size one of bench/_common.py, whose speed is
that of ms-marco-MiniLM-L6-v2; pass a trained reranker to make the quality figures mean
something) and sends the same SciFact test queries at each concurrency level from that many
closed-loop clients. The window cache is off, so every response is computed.

Per level: p50/p95 latency, searches/s, the fraction of searches reranked (at any depth), the
median depth reranked, the degraded reasons, and nDCG@10 of the responses as served. Two
references on the same queries, from the first configuration's server: the fused order
alone (``rerank: false``), and reranking everything (one client, no time budget).

Configurations:
  defaults  nothing set: auto backends (on a CPU bf16 with AMX, else ONNX int8), the default cap, budget and planner
  torch     RRS_RERANK_BACKEND=torch and RRS_BI_ENCODER_BACKEND=torch (the defaults before `auto`)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench._common import BENCH_ALIAS, build_minilm_cross_encoder, ensure_scifact_index, load_queries
from bench.service_bench import percentile, start_server

CONFIGS = {
    "defaults": {},
    "torch": {"RRS_RERANK_BACKEND": "torch", "RRS_BI_ENCODER_BACKEND": "torch"},
}


def ask(base: str, queries: dict[str, str], concurrency: int, body: dict) -> list[dict]:
    """Each query once, from ``concurrency`` closed-loop clients; one record per response."""

    def one(item):
        qid, text = item
        started = time.perf_counter()
        response = requests.post(f"{base}/search", json={**body, "query": text}, timeout=600)
        seconds = time.perf_counter() - started
        data = response.json() if response.ok else {}
        return {
            "qid": qid,
            "status": response.status_code,
            "seconds": seconds,
            "ids": [hit["id"] for hit in data.get("hits", [])],
            "reranked": bool(data.get("reranked")),
            "reranked_count": data.get("reranked_count", 0),
            "degraded": data.get("degraded"),
        }

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, queries.items()))


def summarise(records: list[dict], wall_s: float, qrels: dict) -> dict:
    from rrsearch.evaluation.metrics import evaluate

    latencies = [r["seconds"] * 1000 for r in records]
    reasons = collections.Counter(reason for r in records if r["degraded"] for reason in r["degraded"].split(","))
    judged = {r["qid"]: qrels[r["qid"]] for r in records}
    return {
        "searches": len(records),
        "errors": sum(1 for r in records if r["status"] != 200),
        "searches_per_s": round(len(records) / wall_s, 2),
        "latency_ms": {"p50": round(percentile(latencies, 0.5), 1), "p95": round(percentile(latencies, 0.95), 1)},
        "reranked_fraction": round(sum(r["reranked"] for r in records) / len(records), 3),
        "reranked_depth_median": statistics.median(r["reranked_count"] for r in records),
        "degraded": dict(reasons),
        "ndcg@10_served": round(evaluate(judged, {r["qid"]: r["ids"] for r in records})["ndcg@10"], 4),
    }


def level(base: str, queries: dict[str, str], concurrency: int, body: dict, qrels: dict) -> dict:
    started = time.perf_counter()
    records = ask(base, queries, concurrency, body)
    return summarise(records, time.perf_counter() - started, qrels)


def serve(env: dict, port: int):
    log = Path(tempfile.mkdtemp(prefix="rrs-load-")) / "server.log"
    print(f"server log: {log}", flush=True)
    return start_server(env, port, log)


def stop(process) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="cross-encoder folder (default: the MiniLM-L6-size one, built once)")
    parser.add_argument("--queries", type=int, default=100, help="SciFact test queries per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["defaults", "torch"])
    parser.add_argument("--weight", type=float, help="rerank_weight sent with each search (default: the model's own)")
    parser.add_argument("--depth", type=int, help="rerank_depth sent with each search (default: the model's own)")
    parser.add_argument(
        "--normalization", choices=["minmax", "rank"], help="rerank_normalization (default: the model's own)"
    )
    parser.add_argument("--no-references", action="store_true", help="skip fused-only and rerank-everything")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "load.json")
    args = parser.parse_args()

    from rrsearch.core.encoders import load_bi_encoder
    from rrsearch.core.es_client import make_client, resolve_url
    from rrsearch.core.settings import Settings
    from rrsearch.rrs.local_node import first_free_port

    settings = Settings()
    ensure_scifact_index(make_client(settings), settings, load_bi_encoder(settings.bi_encoder, "cpu"))
    model_dir = (
        Path(args.model)
        if args.model
        else build_minilm_cross_encoder(settings.home / "bench-models" / "minilm-l6-cross-encoder")
    )
    test, qrels = load_queries("test")
    queries = dict(list(test.items())[: args.queries])
    warm, _ = load_queries("train")
    warm = dict(list(warm.items())[:4])
    body = {"top_k": 10, "candidates": 100, "mode": "hybrid", "rerank": True}
    for option, field in (
        ("weight", "rerank_weight"),
        ("depth", "rerank_depth"),
        ("normalization", "rerank_normalization"),
    ):
        if getattr(args, option) is not None:
            body[field] = getattr(args, option)
    base_env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("RRS_RERANK_BACKEND", "RRS_BI_ENCODER_BACKEND", "RRS_RERANK_TIMEOUT_MS")
    }
    base_env.update(
        {
            "ES_URL": resolve_url(settings),
            "RRS_INDEX_ALIAS": BENCH_ALIAS,
            "RRS_CROSS_ENCODER": str(model_dir),
            "RRS_WINDOW_CACHE_SIZE": "0",
            "HF_HUB_OFFLINE": "1",
        }
    )
    result: dict = {
        "cpu_cores": os.cpu_count(),
        "model": str(model_dir),
        "queries": len(queries),
        "request": body,
        "rerank_max_length": os.environ.get("RRS_RERANK_MAX_LENGTH", "default"),
        "configs": {},
        "references": {},
    }
    port = first_free_port(18_950)
    base = f"http://127.0.0.1:{port}"
    for name in args.configs:
        process = serve({**base_env, **CONFIGS[name]}, port)
        try:
            ask(base, warm, 1, body)  # loads and measures the model (not reported)
            levels = {}
            for concurrency in args.concurrency:
                levels[f"c{concurrency}"] = level(base, queries, concurrency, body, qrels)
                print(json.dumps({name: {f"c{concurrency}": levels[f"c{concurrency}"]}}), flush=True)
            result["configs"][name] = {"env": CONFIGS[name], "levels": levels}
            if not args.no_references and not result["references"]:
                result["references"]["fused_only"] = level(base, queries, 4, {**body, "rerank": False}, qrels)
        finally:
            stop(process)
    if not args.no_references:
        process = serve({**base_env, **CONFIGS[args.configs[0]], "RRS_RERANK_TIMEOUT_MS": "600000"}, port)
        try:
            ask(base, warm, 1, body)
            result["references"]["rerank_everything"] = level(base, queries, 1, body, qrels)
        finally:
            stop(process)
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
