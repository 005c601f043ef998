"""Reranker training on SciFact: does a cross-encoder trained by `rrs train-reranker` on
our own hybrid negatives beat hybrid retrieval alone?

    HF_HUB_OFFLINE=1 python bench/train_reranker_bench.py [--index ALIAS] [--device cpu|cuda] ...

1. Index the SciFact corpus through the real ingest code (``run_ingest``; a re-run finds
   it done), or use ``--index`` when an alias already holds it (e.g. ``eval-scifact``).
2. Train with ``training.reranker_run.run_training`` on ``qrels/train.tsv`` (809 queries): negatives
   mined by the service's hybrid pipeline, the packaged all-MiniLM-L6-v2 as the base.
3. Evaluate on ``qrels/test.tsv`` (300 queries) through the service's pipeline, as
   ``rrs eval`` does: hybrid (RRF) alone vs hybrid + the trained reranker over
   ``--candidates`` fused candidates; nDCG@10 etc. from ``evaluation.metrics``.
4. Rerank latency: 100 hybrid candidates of real test queries scored by the service's
   reranker (``score_pairs``), median and p95 over ``--latency-queries`` queries.

Prints the figures and writes bench/results/train_reranker_scifact[_<device>].json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "scifact"
RESULTS = ROOT / "bench" / "results"
DEFAULT_ALIAS = "bench-train-reranker-scifact"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--index", help="Alias already holding the corpus (skips ingest).")
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/rrs-bench/reranker-scifact"))
    parser.add_argument("--base", default="all-MiniLM-L6-v2")
    parser.add_argument("--negatives", type=int, default=6)
    parser.add_argument("--min-rank", type=int, default=1)
    parser.add_argument("--max-rank", type=int, default=30)
    parser.add_argument("--sampling", choices=["top", "random"], default="random")
    parser.add_argument("--loss", choices=["bce", "mnrl"], default="bce")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--eval-fraction", type=float, default=0.1)
    parser.add_argument("--eval-depth", type=int, default=20)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--eval-steps", type=int, help="Steps between held-out evaluations (default 4 per epoch).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--candidates", type=int, default=100, help="Fused candidates reranked on the test split.")
    parser.add_argument("--latency-queries", type=int, default=20)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present).")
    parser.add_argument("--skip-training", action="store_true", help="Evaluate the model already in --model-dir.")
    parser.add_argument(
        "--out", type=Path, help="JSON path (default bench/results/train_reranker_scifact[_cuda].json)."
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rrsearch.core.encoders import load_bi_encoder, pick_device
    from rrsearch.core.es_client import make_client, server_version
    from rrsearch.core.passage import passage_text
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.offline import open_pipeline
    from rrsearch.evaluation.runner import FusionParams, run_configuration
    from rrsearch.service.schemas import SearchRequest
    from rrsearch.training.mining import MiningConfig
    from rrsearch.training.reranker import TrainConfig
    from rrsearch.training.reranker_run import run_training

    device = pick_device(args.device)
    settings = Settings().model_copy(update={"device": device})
    es = make_client(settings, request_timeout=120.0)
    bi_encoder = load_bi_encoder(settings.bi_encoder, device)
    figures: dict = {"device": device, "torch_threads": None}

    # 1. the index
    alias = args.index or DEFAULT_ALIAS
    if args.index is None:
        from rrsearch.ingest.pipeline import run_ingest

        corpus = next(p for p in (args.data / "corpus.jsonl.gz", args.data / "corpus.jsonl") if p.exists())
        report = run_ingest([corpus], settings, alias=alias, progress=True, es=es)
        figures["ingest_seconds"] = round(report.wall_seconds, 1)
    figures["index"] = alias
    figures["passages_in_index"] = es.count(index=alias)["count"]

    # 2. training
    import torch

    figures["torch_threads"] = torch.get_num_threads()
    training = TrainConfig(
        base_model=args.base,
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        eval_fraction=args.eval_fraction,
        eval_depth=args.eval_depth,
        eval_steps=args.eval_steps,
        early_stopping_patience=args.patience,
        seed=args.seed,
        device=device,
    )
    mining = MiningConfig(
        negatives=args.negatives, min_rank=args.min_rank, max_rank=args.max_rank, sampling=args.sampling, seed=args.seed
    )
    if args.skip_training:
        facts = json.loads((args.model_dir / "training.json").read_text())
    else:
        facts = run_training(
            args.data,
            settings,
            alias=alias,
            output_dir=args.model_dir,
            split="train",
            mining=mining,
            training=training,
            es=es,
            bi_encoder=bi_encoder,
        )
    result = facts["result"]
    figures["training"] = {
        "queries": facts["data"]["queries"],
        "train_queries": result["train_queries"],
        "heldout_queries": result["heldout_queries"],
        "rows": result["train_rows"],
        "steps": result["steps"],
        "best_step": result["best_step"],
        "stopped_early": result["stopped_early"],
        "mining_seconds": facts["mining"]["seconds"],
        "training_seconds": result["seconds"],
        "heldout_ndcg@10": {
            "hybrid_order": result["first_stage"].get("ndcg@10"),
            "base_model": result["before"].get("ndcg@10"),
            "trained": result["after"].get("ndcg@10"),
        },
        "eval_history": result["eval_history"],
    }
    print(
        f"trained in {result['seconds']} s (mining {facts['mining']['seconds']} s); held-out nDCG@10 "
        f"{figures['training']['heldout_ndcg@10']}",
        flush=True,
    )

    # 3. test split: hybrid alone vs hybrid + trained reranker, through the service's pipeline
    offline = open_pipeline(
        settings, alias=alias, depth=args.candidates, es=es, bi_encoder=bi_encoder, reranker=args.model_dir
    )
    pipeline, reranker, eval_settings = offline.pipeline, offline.reranker, offline.settings
    dataset = load_dataset(args.data, "test")
    fusion = FusionParams(eval_settings.rrf_k)
    runs = {}
    for rerank in (False, True):
        started = time.perf_counter()
        run = run_configuration(
            pipeline, dataset, "hybrid_rrf", rerank=rerank, candidates=args.candidates, index=alias, fusion=fusion
        )
        run["seconds"] = round(time.perf_counter() - started, 1)
        runs["hybrid+trained_reranker" if rerank else "hybrid"] = run
        print(
            f"{'hybrid + trained reranker' if rerank else 'hybrid'}: {run['metrics']} ({run['seconds']} s)", flush=True
        )

    # 4. rerank latency for 100 candidates (the service's scoring path, no queue)
    latencies = []
    for text in list(dataset.queries.values())[: args.latency_queries]:
        response = pipeline.search(
            SearchRequest(query=text, top_k=100, candidates=100, rerank=False, collapse=False, highlight=False)
        )
        pairs = [(text, passage_text({"title": hit.title, "text": hit.text})) for hit in response.hits[:100]]
        reranker.score_pairs(pairs[:8])  # warm
        started = time.perf_counter()
        reranker.score_pairs(pairs)
        latencies.append((time.perf_counter() - started) * 1000.0)
    offline.close()  # the reranker (the client is ours, closed at the end)
    ordered = sorted(latencies)
    hybrid, reranked = runs["hybrid"]["metrics"]["ndcg@10"], runs["hybrid+trained_reranker"]["metrics"]["ndcg@10"]
    figures.update(
        {
            "test_queries": len(dataset.queries),
            "candidates_reranked": args.candidates,
            "ndcg@10": {
                "hybrid": hybrid,
                "hybrid+trained_reranker": reranked,
                "difference": round(reranked - hybrid, 4),
                "ratio": round(reranked / hybrid, 4) if hybrid else None,
            },
            "runs": runs,
            "rerank_100_candidates_ms": {
                "p50": round(statistics.median(ordered), 1),
                "p95": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1),
                "queries": len(ordered),
                "max_length": reranker.max_length,
                "dtype": reranker.dtype,
            },
            "target_met": reranked > hybrid,
        }
    )
    document = {
        "benchmark": "train_reranker_scifact",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        },
        "elasticsearch": server_version(es),
        "settings": {
            "base": args.base,
            "negatives": args.negatives,
            "rank_range": [args.min_rank, args.max_rank],
            "sampling": args.sampling,
            "loss": args.loss,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "max_length": args.max_length,
            "eval_fraction": args.eval_fraction,
            "eval_depth": args.eval_depth,
            "seed": args.seed,
            "model_dir": str(args.model_dir),
        },
        "figures": figures,
    }
    out = args.out or RESULTS / f"train_reranker_scifact{'' if device == 'cpu' else '_' + device.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2))
    print(
        f"\nnDCG@10 on {len(dataset.queries)} test queries: hybrid {hybrid:.4f}, hybrid + trained reranker "
        f"{reranked:.4f} ({reranked - hybrid:+.4f}); training {result['seconds']} s on {device}; rerank of 100 "
        f"candidates p50 {figures['rerank_100_candidates_ms']['p50']} ms\nwrote {out}"
    )
    es.close()


if __name__ == "__main__":
    main()
