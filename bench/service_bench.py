"""The service under gunicorn, driven by concurrent clients, against SciFact in a real node.

    HF_HUB_OFFLINE=1 ES_URL=http://127.0.0.1:9200 python bench/service_bench.py \
        [--concurrency 1 4 16] [--requests 16] [--candidates 100] [--backend onnx]

Indexes SciFact once (alias bench-scifact), starts ``rrs serve`` on a free port with the
MiniLM-L6-size cross-encoder (bench/_common.py), sends distinct SciFact queries (so the
window cache never answers) and prints JSON: client p50/p95/p99 latency and QPS per
concurrency, per-stage medians from the responses' timings_ms, and the overhead ratio
= median total / (median ES round trip + median rerank + median query embedding), which
says how much the service adds on top of the work it waits for (target <= 1.10 at c=1).
Writes bench/results/service.json.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench._common import BENCH_ALIAS, build_minilm_cross_encoder, ensure_scifact_index, load_queries


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(env: dict, port: int, log: Path) -> subprocess.Popen:
    rrs = Path(sys.executable).parent / "rrs"
    out = open(log, "w")  # noqa: SIM115 (the server writes to it until it is stopped)
    process = subprocess.Popen(
        [str(rrs), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(1)
    os.killpg(process.pid, signal.SIGTERM)
    sys.exit("server did not become ready")


def run_level(base: str, queries: list[str], concurrency: int, body: dict) -> dict:
    samples: list[tuple[float, dict]] = []

    def one(query: str):
        started = time.perf_counter()
        response = requests.post(f"{base}/search", json={**body, "query": query}, timeout=600)
        samples.append(
            (time.perf_counter() - started, response.json() if response.ok else {"status": response.status_code})
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, queries))
    wall = time.perf_counter() - started
    latencies = [s * 1000 for s, _ in samples]
    timings = [r["timings_ms"] for _, r in samples if "timings_ms" in r]
    stages = {k: round(statistics.median(t[k] for t in timings), 2) for k in timings[0]} if timings else {}
    waited = stages.get("search", 0) + stages.get("rerank", 0) + stages.get("embed_query", 0)
    return {
        "requests": len(samples),
        "ok": len(timings),
        "qps": round(len(samples) / wall, 2),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "p99": round(percentile(latencies, 0.99), 1),
        },
        "stage_medians_ms": stages,
        "overhead_ratio": round(stages["total"] / waited, 3) if waited else None,
        "overhead_ratio_client": round(statistics.median(latencies) / waited, 3) if waited else None,
        "degraded": sum(1 for _, r in samples if r.get("degraded")),
        "reranked_count_median": statistics.median(r.get("reranked_count", 0) for _, r in samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--backend", choices=["torch", "onnx"], default="onnx")
    parser.add_argument("--model", help="cross-encoder folder (default: MiniLM-L6-size, built once)")
    args = parser.parse_args()

    from rrsearch.core.encoders import load_bi_encoder
    from rrsearch.core.es_client import make_client, resolve_url
    from rrsearch.core.onnx_export import export_onnx
    from rrsearch.core.settings import Settings
    from rrsearch.rrs.local_node import first_free_port

    settings = Settings()
    es = make_client(settings)
    ensure_scifact_index(es, settings, load_bi_encoder(settings.bi_encoder, settings.device))
    model_dir = Path(args.model or settings.home / "bench-models" / "minilm-l6-cross-encoder")
    build_minilm_cross_encoder(model_dir)
    if args.backend == "onnx":
        export_onnx(model_dir)  # always: files from an older exporter would measure the old graph
    port = first_free_port(18_900)
    env = {
        **os.environ,
        "ES_URL": resolve_url(settings),
        "RRS_INDEX_ALIAS": BENCH_ALIAS,
        "RRS_CROSS_ENCODER": str(model_dir),
        "RRS_RERANK_BACKEND": args.backend,
        "RRS_SERVE_THREADS": str(max(args.concurrency)),
        "RRS_RERANK_TIMEOUT_MS": "600000",
        "RRS_MAX_CANDIDATES": str(max(args.candidates, 500)),
        "HF_HUB_OFFLINE": "1",
    }
    log = Path(tempfile.mkdtemp(prefix="rrs-bench-")) / "server.log"
    print(f"server log: {log}", flush=True)
    process = start_server(env, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        train, _ = load_queries("train")
        test, _ = load_queries("test")
        pool = list(test.values()) + list(train.values())
        body = {"top_k": 10, "candidates": args.candidates, "mode": "hybrid"}
        run_level(base, pool[-4:], 1, body)  # warm-up (not reported)
        result: dict = {
            "cpu_cores": os.cpu_count(),
            "backend": args.backend,
            "candidates": args.candidates,
            "model": str(model_dir),
            "levels": {},
        }
        offset = 0
        for concurrency in args.concurrency:
            n = max(args.requests, concurrency * 2)
            queries = pool[offset : offset + n]
            offset += n
            result["levels"][f"c{concurrency}"] = run_level(base, queries, concurrency, body)
            print(json.dumps({f"c{concurrency}": result["levels"][f"c{concurrency}"]}), flush=True)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    print(json.dumps(result, indent=2))
    (Path(__file__).resolve().parent / "results").mkdir(exist_ok=True)
    (Path(__file__).resolve().parent / "results" / "service.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
