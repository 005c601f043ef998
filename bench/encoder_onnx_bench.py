"""ONNX bi-encoder benchmark: torch fp32 against ONNX int8 (and fp32), in one run.

For each backend, on a real node: ingest SciFact end to end into its own alias (passages/s),
evaluate SciFact test nDCG@10 for kNN and hybrid RRF with that index and the same
backend's query vectors, and time single-query embedding (p50/p95, no cache). Then the
resident memory of one service process (the app built as a gunicorn worker builds it, one
search run) with torch bi-encoder + torch reranker against ONNX bi-encoder + ONNX reranker.

Bars (issue 15): ingest int8 >= 2.5x torch; nDCG@10 within 0.005 of fp32; query embedding
p50 <= 3 ms; worker RSS at least 30% lower.

Query embedding is timed twice: right after each backend's evaluation (as it ran), and at the
end in interleaved rounds (torch, int8, torch, ...) over the same queries, so a busy moment of
the shared machine does not land on one backend only. ``--query-only`` redoes just that part
and adds it to the existing JSON.

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/encoder_onnx_bench.py [--limit N] [--with-fp32]

Prints JSON and writes it to ``bench/results/encoder_onnx.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import DATA, build_minilm_cross_encoder  # noqa: E402

CACHE = Path(os.environ.get("RRS_BENCH_CACHE", "/tmp/rrs-bench"))


def _backends(model_dir: Path, with_fp32: bool) -> dict[str, dict]:
    chosen = {
        "torch_fp32": {"bi_encoder": "all-MiniLM-L6-v2", "bi_encoder_backend": "torch"},
        "onnx_int8": {
            "bi_encoder": str(model_dir),
            "bi_encoder_backend": "onnx",
            "bi_encoder_onnx_file": "onnx/model_qint8.onnx",
        },
    }
    if with_fp32:
        chosen["onnx_fp32"] = {
            "bi_encoder": str(model_dir),
            "bi_encoder_backend": "onnx",
            "bi_encoder_onnx_file": "onnx/model.onnx",
        }
    return chosen


def _query_latency_ms(encoder, queries: list[str]) -> dict[str, float]:
    from rrsearch.core.encoders import encode_query

    for text in queries[:10]:
        encode_query(encoder, text)  # warm
    times = []
    for text in queries:
        start = time.perf_counter()
        encode_query(encoder, text)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50": round(statistics.median(times), 2), "p95": round(times[int(0.95 * (len(times) - 1))], 2)}


def _interleaved_query_latency(encoders: dict, queries: list[str], rounds: int = 5) -> dict:
    """p50/p95 per backend over ``rounds`` alternating passes of every query."""
    from rrsearch.core.encoders import encode_query

    times: dict[str, list[float]] = {name: [] for name in encoders}
    for encoder in encoders.values():
        for text in queries[:20]:
            encode_query(encoder, text)  # warm
    for _ in range(rounds):
        for name, encoder in encoders.items():
            for text in queries:
                start = time.perf_counter()
                encode_query(encoder, text)
                times[name].append((time.perf_counter() - start) * 1000)
    return {
        name: {
            "p50": round(statistics.median(values), 2),
            "p95": round(sorted(values)[int(0.95 * (len(values) - 1))], 2),
        }
        for name, values in times.items()
    }


def _worker_rss(overrides: dict, reranker_dir: Path, alias: str) -> dict:
    """Resident memory of a fresh process that builds the app and serves one search."""
    script = textwrap.dedent(f"""
        import json, os, sys
        from rrsearch.core.settings import Settings
        from rrsearch.service.http.app import create_app
        settings = Settings(**{overrides!r}, cross_encoder={str(reranker_dir)!r}, index_alias={alias!r},
                            rerank_timeout_ms=600000)
        client = create_app(settings).test_client()
        response = client.post("/search", json={{"query": "vitamin d and bone fractures", "top_k": 10}})
        assert response.status_code == 200, response.get_data(as_text=True)
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(json.dumps({{"rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
                          "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1),
                          "torch_imported": "torch" in sys.modules,
                          "degraded": response.get_json().get("degraded")}}), flush=True)
        os._exit(0)  # skip interpreter teardown: the batcher and runtime threads are still up
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="Only the first N documents (quick runs; not for reporting).")
    parser.add_argument("--with-fp32", action="store_true", help="Also measure the ONNX fp32 file.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "encoder_onnx.json")
    parser.add_argument("--query-only", action="store_true", help="Only the interleaved query-embedding timing.")
    args = parser.parse_args()
    if args.query_only:
        _query_only(args.out)
        return

    from bench.ingest_bench import _limited_copy
    from rrsearch.core.encoder_export import export_bi_encoder
    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.es_client import make_client
    from rrsearch.core.indexes import delete_alias_and_versions
    from rrsearch.core.onnx_export import export_onnx
    from rrsearch.core.onnx_models import read_encoder_card
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.offline import evaluate_dataset
    from rrsearch.evaluation.runner import FusionParams
    from rrsearch.ingest.pipeline import run_ingest

    base = Settings()
    model_dir = CACHE / "minilm-onnx"
    started = time.perf_counter()
    export = export_bi_encoder("all-MiniLM-L6-v2", model_dir)
    export_s = time.perf_counter() - started
    reranker_dir = build_minilm_cross_encoder(CACHE / "minilm-cross-encoder")
    export_onnx(reranker_dir)

    corpus = DATA / "corpus.jsonl.gz"
    if args.limit:
        corpus = _limited_copy(corpus, args.limit, CACHE)
    dataset = load_dataset(DATA, "test")
    queries = list(dataset.queries.values())
    es = make_client(base)
    results: dict[str, dict] = {}
    for name, overrides in _backends(model_dir, args.with_fp32).items():
        settings = base.model_copy(update=overrides)
        alias = f"bench-encoder-{name.replace('_', '-')}"
        delete_alias_and_versions(es, alias)
        report = run_ingest([corpus], settings, alias=alias, reindex=True, progress=False, es=es)
        rows, _run = evaluate_dataset(
            settings,
            dataset,
            index_alias=alias,
            candidates=100,
            reranker_name=None,
            configs=("knn", "hybrid_rrf"),
            fusion=FusionParams(base.rrf_k, 0.5, "minmax"),
            progress=False,
        )
        ndcg = {row["config"]: round(row["metrics"]["ndcg@10"], 4) for row in rows}
        results[name] = {
            "stage_busy_s": {k: round(v, 1) for k, v in report.stage_seconds.items()},
            "passages": report.chunks,
            "ingest_wall_s": round(report.wall_seconds, 1),
            "ingest_passages_per_s": round(report.chunks / report.wall_seconds, 2),
            "ndcg@10": ndcg,
            "query_embedding_ms": _query_latency_ms(bi_encoder_from(settings), queries),
        }
        print(name, json.dumps(results[name]), flush=True)
    torch_row, int8_row = results["torch_fp32"], results["onnx_int8"]
    rss = {
        "torch": _worker_rss(
            {"bi_encoder_backend": "torch", "rerank_backend": "torch"}, reranker_dir, "bench-encoder-torch-fp32"
        ),
        "onnx": _worker_rss(
            {**_backends(model_dir, False)["onnx_int8"], "rerank_backend": "onnx"},
            reranker_dir,
            "bench-encoder-onnx-int8",
        ),
    }
    interleaved = _interleaved_query_latency(
        {
            name: bi_encoder_from(base.model_copy(update=overrides))
            for name, overrides in _backends(model_dir, args.with_fp32).items()
        },
        queries,
    )
    result = {
        "query_embedding_interleaved_ms": interleaved,
        "corpus": str(corpus),
        "split": "test",
        "queries": len(queries),
        "export": {
            "seconds": round(export_s, 1),
            "checks": read_encoder_card(model_dir)["checks"],
            "fused_ops": export.fused_ops,
        },
        "backends": results,
        "ratios": {
            "ingest_int8_over_torch": round(int8_row["ingest_passages_per_s"] / torch_row["ingest_passages_per_s"], 2),
            "ndcg_int8_minus_fp32": {
                k: round(int8_row["ndcg@10"][k] - torch_row["ndcg@10"][k], 4) for k in torch_row["ndcg@10"]
            },
            "query_p50_torch_over_int8": round(
                torch_row["query_embedding_ms"]["p50"] / int8_row["query_embedding_ms"]["p50"], 2
            ),
            "worker_rss_onnx_over_torch": round(rss["onnx"]["rss_mb"] / rss["torch"]["rss_mb"], 3),
        },
        "worker_rss": rss,
        "bars": {"ingest_ratio": 2.5, "ndcg_within": 0.005, "query_p50_ms": 3.0, "rss_ratio_at_most": 0.70},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


def _query_only(out: Path) -> None:
    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import load_dataset

    base = Settings()
    queries = list(load_dataset(DATA, "test").queries.values())
    backends = _backends(CACHE / "minilm-onnx", False)
    interleaved = _interleaved_query_latency(
        {name: bi_encoder_from(base.model_copy(update=overrides)) for name, overrides in backends.items()}, queries
    )
    document = json.loads(out.read_text()) if out.exists() else {}
    document["query_embedding_interleaved_ms"] = interleaved
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(interleaved, indent=2))


if __name__ == "__main__":
    main()
