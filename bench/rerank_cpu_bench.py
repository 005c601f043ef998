"""CPU rerank: torch fp32 vs ONNX Runtime fp32 vs ONNX int8, and what int8 costs in nDCG@10.

    HF_HUB_OFFLINE=1 python bench/rerank_cpu_bench.py [--model DIR] [--queries 300] [--depth 100] [--output FILE]

Speed: 100 (query, passage) pairs of about 150 tokens, scored by the service's reranker
(same code path as serving) with each backend, median of --repeats runs, in one process.
Quality: BM25 top --depth from the SciFact bench index, reranked by torch fp32 and by
ONNX int8 with the same model; nDCG@10 of both (ir_measures), the difference and its 95%
bootstrap interval over queries.
Without --model a MiniLM-L6-size cross-encoder is built (see bench/_common.py): its speed
is that of ms-marco-MiniLM-L6-v2, its absolute nDCG is not (untrained head).
Writes bench/results/rerank_cpu.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_ALIAS, build_minilm_cross_encoder, ensure_scifact_index, load_corpus, load_queries

RESULTS = Path(__file__).resolve().parent / "results"


def pairs_of_about(tokenizer, n: int, tokens: int) -> list[tuple[str, str]]:
    """n real SciFact (claim, abstract) pairs cut to about ``tokens`` tokens."""
    corpus = load_corpus()
    queries, _ = load_queries("test")
    claims = list(queries.values())
    pairs = []
    for i in range(n):
        ids = tokenizer(corpus[i]["text"], add_special_tokens=False)["input_ids"][: tokens - 20]
        pairs.append((claims[i % len(claims)], tokenizer.decode(ids)))
    return pairs


def time_backend(reranker, pairs, repeats: int) -> float:
    reranker.score_pairs(pairs)  # warm-up
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        reranker.score_pairs(pairs)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def ndcg_at_10_per_query(run: dict[str, dict[str, float]], qrels) -> dict[str, float]:
    import ir_measures
    from ir_measures import nDCG

    return {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], qrels, run)}


def bootstrap_interval(differences: list[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the mean per-query difference (resampling queries)."""
    import numpy as np

    values = np.asarray(differences)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(rounds, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="cross-encoder folder (default: build a MiniLM-L6-size one)")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queries", type=int, default=300, help="SciFact test queries for nDCG (0: skip)")
    parser.add_argument("--depth", type=int, default=100, help="BM25 candidates reranked per query")
    parser.add_argument("--output", type=Path, default=RESULTS / "rerank_cpu.json")
    args = parser.parse_args()

    from rrsearch.core.onnx_export import export_onnx
    from rrsearch.core.settings import Settings
    from rrsearch.service.rerank import load_reranker

    settings = Settings()
    model_dir = Path(args.model or (settings.home / "bench-models" / "minilm-l6-cross-encoder"))
    if not args.model:
        build_minilm_cross_encoder(model_dir)
    export = export_onnx(model_dir)  # always: files from an older exporter would measure the old graph
    backends = {
        "torch_fp32": settings.model_copy(update={"rerank_backend": "torch"}),
        "onnx_fp32": settings.model_copy(update={"rerank_backend": "onnx", "rerank_onnx_file": "onnx/model.onnx"}),
        "onnx_int8": settings.model_copy(
            update={"rerank_backend": "onnx", "rerank_onnx_file": "onnx/model_qint8.onnx"}
        ),
    }
    rerankers = {name: load_reranker(str(model_dir), s) for name, s in backends.items()}
    pairs = pairs_of_about(rerankers["torch_fp32"].tokenizer, args.pairs, args.tokens)
    lengths = [len(ids) for ids in rerankers["torch_fp32"].tokenize(pairs)["input_ids"]]
    seconds = {name: time_backend(r, pairs, args.repeats) for name, r in rerankers.items()}
    result: dict = {
        "model": str(model_dir),
        "cpu_cores": os.cpu_count(),
        "pairs": len(pairs),
        "onnx_export": {
            "exporter": export.exporter,
            "fused_ops": export.fused_ops,
            "int8_max_logit_difference": export.int8_max_logit_difference,
        },
        "mean_tokens_per_pair": round(statistics.mean(lengths), 1),
        "seconds_per_100_pairs": {k: round(v * 100 / len(pairs), 3) for k, v in seconds.items()},
        "speedup_vs_torch_fp32": {k: round(seconds["torch_fp32"] / v, 2) for k, v in seconds.items()},
    }
    print(json.dumps(result, indent=2), flush=True)

    if args.queries:
        from rrsearch.core.encoders import load_bi_encoder
        from rrsearch.core.es_client import make_client
        from rrsearch.core.passage import passage_text
        from rrsearch.service.retrieval import bm25_body, msearch, parse_fields

        es = make_client(settings)
        ensure_scifact_index(es, settings, load_bi_encoder(settings.bi_encoder, settings.device))
        queries, qrels = load_queries("test")
        chosen = list(queries.items())[: args.queries]
        runs: dict[str, dict] = {"bm25": {}, "torch_fp32": {}, "onnx_int8": {}}
        for number, (qid, text) in enumerate(chosen, start=1):
            if number % 10 == 0:
                print(f"reranked {number}/{len(chosen)} queries", flush=True)
            [result_bm25] = msearch(
                es,
                BENCH_ALIAS,
                [bm25_body(text, parse_fields(settings.bm25_fields), [], size=args.depth)],
                timeout_s=30,
            )
            hits = result_bm25.hits
            runs["bm25"][qid] = {h.id: h.score for h in hits}
            for name in ("torch_fp32", "onnx_int8"):
                scores = rerankers[name].score_pairs([(text, passage_text(h.source)) for h in hits])
                runs[name][qid] = {h.id: float(s) for h, s in zip(hits, scores)}
        judged = {qid: qrels[qid] for qid, _ in chosen}
        per_query = {name: ndcg_at_10_per_query(run, judged) for name, run in runs.items()}
        ndcg = {name: round(statistics.mean(values.values()), 4) for name, values in per_query.items()}
        differences = [per_query["onnx_int8"].get(qid, 0.0) - per_query["torch_fp32"].get(qid, 0.0) for qid in judged]
        low, high = bootstrap_interval(differences)
        result["ndcg_at_10"] = {
            "queries": len(chosen),
            "depth": args.depth,
            **ndcg,
            "int8_minus_fp32": round(statistics.mean(differences), 4),
            "int8_minus_fp32_95ci": [round(low, 4), round(high, 4)],
            "queries_changed": sum(1 for d in differences if d != 0),
        }
        print(json.dumps(result["ndcg_at_10"], indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
