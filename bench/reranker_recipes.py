"""Which `rrs train-reranker` recipe gives the better reranker? Held-out to choose, test to report.

    HF_HUB_OFFLINE=1 python bench/reranker_recipes.py --index ALIAS MODEL_DIR [MODEL_DIR ...]

Each MODEL_DIR is a folder `rrs train-reranker` wrote (its ``training.json`` holds the recipe
and the held-out figures measured at the end of training: 81 SciFact train queries it did
not train on, 100 hybrid candidates). For each, on SciFact test (300 queries, 100 hybrid
RRF candidates over ALIAS, one search per query with every cross-encoder score kept):

* hybrid alone, plain rerank of all 100 candidates, and the blend the model folder carries
  (chosen on held-out train queries by the training run: weight 0 when not confirmed);
* the best fixed blend on test itself, and every setting's figure, for information only (chosen
  on test: not a result; the grid shows what any rule's held-out choice gives on test).

Prints a table and writes bench/results/reranker_recipes.json (merged with earlier rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import DATA  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "reranker_recipes.json"


def recipe(training: dict) -> dict:
    """The options that made the model (what differs between runs)."""
    mining, config = training["mining"], training["result"]["config"]
    return {
        "negatives": mining["negatives"],
        "ranks": f"{mining['min_rank']}..{mining['max_rank']}",
        "title_queries": mining.get("title_queries", 0),
        "loss": config["loss"],
        "epochs": config["epochs"],
        "lr": config["learning_rate"],
        "max_length": config["max_length"],
        "batch_size": config["batch_size"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--index", required=True, help="Alias holding SciFact (the one the models were trained over).")
    parser.add_argument("--candidates", type=int, default=100)
    args = parser.parse_args()

    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.es_client import make_client
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.offline import offline_settings, open_pipeline
    from rrsearch.evaluation.tuning import collect, hybrid_alone, replay, tune
    from rrsearch.service.blend import BlendConfig, load_calibration

    depth = max(100, args.candidates)
    settings = offline_settings(Settings(), depth=depth, alias=args.index)
    dataset = load_dataset(DATA, "test", check_corpus=False)
    es = make_client(settings, request_timeout=120.0)
    bi_encoder = bi_encoder_from(settings)
    rows = json.loads(RESULTS.read_text())["models"] if RESULTS.exists() else {}
    for folder in args.models:
        training = json.loads((folder / "training.json").read_text())
        with open_pipeline(
            settings, alias=args.index, depth=depth, es=es, bi_encoder=bi_encoder, reranker=folder
        ) as offline:
            started = time.perf_counter()
            collected = collect(offline.pipeline, dataset, candidates=args.candidates, index=args.index)
        seconds = time.perf_counter() - started

        def ndcg(config: BlendConfig, collected=collected) -> float:
            rankings = {qid: replay(entries, config) for qid, entries in collected.items()}
            return round(evaluate(dataset.qrels, rankings)["ndcg@10"], 4)

        carried = load_calibration(folder) or BlendConfig(weight=1.0, depth=args.candidates)
        _, grid = tune(dataset.qrels, collected)
        heldout = training.get("blend", {})
        rows[folder.name] = {
            "recipe": recipe(training),
            "training_seconds": training["result"]["seconds"],
            "train_rows": training["result"]["train_rows"],
            "heldout": {
                "queries": training["result"]["heldout_queries"],
                "hybrid": heldout.get("hybrid_alone"),
                "plain_rerank_100": heldout.get("plain_rerank"),
                "chosen": {k: heldout.get("chosen_gain", {}).get(k) for k in ("weight", "depth", "normalization")},
                "chosen_ndcg@10": heldout.get("chosen_gain", {}).get("ndcg@10"),
            },
            "test": {
                "queries": len(collected),
                "hybrid": round(hybrid_alone(dataset.qrels, collected), 4),
                "plain_rerank_100": ndcg(BlendConfig(weight=1.0, depth=args.candidates)),
                "carried_blend": {
                    "weight": carried.weight,
                    "depth": carried.depth,
                    "normalization": carried.normalization,
                    "ndcg@10": ndcg(carried),
                },
                "best_fixed_blend_on_test_for_information": grid[0],
                "grid_for_information": [
                    {k: row[k] for k in ("weight", "depth", "normalization", "ndcg@10")} for row in grid
                ],
            },
            "scoring_seconds": round(seconds, 1),
        }
        test = rows[folder.name]["test"]
        print(
            f"{folder.name}: held-out plain {rows[folder.name]['heldout']['plain_rerank_100']} | test hybrid "
            f"{test['hybrid']}, plain {test['plain_rerank_100']}, carried blend {test['carried_blend']['ndcg@10']} "
            f"(w {carried.weight}, depth {carried.depth})",
            flush=True,
        )
    es.close()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "what": f"SciFact test (300 queries), {args.candidates} hybrid RRF candidates over {args.index}; recipes chosen "
                "on held-out train queries (training.json), reported here",
                "machine": {"cpus": os.cpu_count()},
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "models": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
