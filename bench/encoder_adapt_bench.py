"""Adapted bi-encoder on SciFact: does `rrs train-encoder` lift kNN and hybrid retrieval, and
does its ONNX int8 export keep the torch model's quality?

    ES_URL=... HF_HUB_OFFLINE=1 python bench/encoder_adapt_bench.py --index scifact --output /tmp/enc

1. ``--index`` holds SciFact embedded by the configured (packaged) bi-encoder: evaluate it on
   the test split (300 queries) first, kNN and hybrid RRF, as ``rrs eval`` does.
2. Train with ``training.encoder_run.run_encoder_training`` on ``qrels/train.tsv`` (the held-out
   10% choose the checkpoint), writing the model, its ONNX export and card to ``--output``.
3. Reindex the corpus behind ``--index`` with the trained model (torch) through the real ingest
   (``--reindex``) and evaluate again; then into ``<index>-int8`` with the int8 export
   (``RRS_BI_ENCODER_BACKEND=onnx``) and evaluate that.

Every figure of one run comes from the same node and the same corpus. Prints them and writes
bench/results/encoder_adapt_scifact.json. Options override the ``RRS_TRAIN_ENCODER_*`` recipe.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import DATA

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = ("knn", "hybrid_rrf")


def evaluate(settings, alias: str) -> dict:
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.offline import evaluate_dataset
    from rrsearch.evaluation.runner import FusionParams

    results, _ = evaluate_dataset(
        settings,
        load_dataset(DATA, "test"),
        index_alias=alias,
        candidates=100,
        reranker_name=None,
        configs=CONFIGS,
        fusion=FusionParams(),
        progress=False,
    )
    return {row["config"]: row["metrics"]["ndcg@10"] for row in results}


def reindex(settings, alias: str) -> float:
    from rrsearch.ingest.pipeline import run_ingest

    started = time.perf_counter()
    run_ingest([DATA / "corpus.jsonl.gz"], settings, alias=alias, reindex=True, progress=False)
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--negatives", type=int)
    parser.add_argument("--max-rank", type=int)
    parser.add_argument("--title-queries", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--skip-int8", action="store_true")
    parser.add_argument("--name", default="encoder_adapt_scifact")
    args = parser.parse_args()

    from rrsearch.core.settings import Settings
    from rrsearch.training.encoder_run import run_encoder_training

    overrides = {
        "train_encoder_epochs": args.epochs,
        "train_encoder_negatives": args.negatives,
        "train_encoder_max_rank": args.max_rank,
        "train_encoder_title_queries": args.title_queries,
        "train_encoder_learning_rate": args.lr,
    }
    base = Settings(bi_encoder_backend="torch", **{k: v for k, v in overrides.items() if v is not None})
    figures: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "dataset": "scifact"}
    figures["base_torch"] = evaluate(base, args.index)
    print("base encoder (torch):", figures["base_torch"], flush=True)
    started = time.perf_counter()
    facts = run_encoder_training(DATA, base, alias=args.index, output_dir=args.output, progress=False)
    figures["train_seconds"] = round(time.perf_counter() - started, 1)
    figures["recipe"] = {**facts["result"]["config"], "mining": facts["mining"]}
    figures["heldout"] = {
        "before": facts["result"]["before"],
        "after": facts["result"]["after"],
        "history": facts["result"]["eval_history"],
        "queries": facts["result"]["heldout_queries"],
    }
    figures["onnx_checks"] = facts["onnx"]
    print(
        "held-out nDCG@10:",
        facts["result"]["before"].get("ndcg@10"),
        "->",
        facts["result"]["after"].get("ndcg@10"),
        f"({figures['train_seconds']} s)",
        flush=True,
    )
    adapted = base.model_copy(update={"bi_encoder": str(args.output)})
    figures["reindex_seconds_torch"] = reindex(adapted, args.index)
    figures["adapted_torch"] = evaluate(adapted, args.index)
    print("adapted encoder (torch):", figures["adapted_torch"], flush=True)
    if not args.skip_int8:
        int8 = adapted.model_copy(
            update={"bi_encoder_backend": "onnx", "bi_encoder_onnx_file": "onnx/model_qint8.onnx"}
        )
        figures["reindex_seconds_int8"] = reindex(int8, f"{args.index}-int8")
        figures["adapted_int8"] = evaluate(int8, f"{args.index}-int8")
        print("adapted encoder (ONNX int8):", figures["adapted_int8"], flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
