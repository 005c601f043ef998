"""Test nDCG@10 of the rerankers a GPU trained (bench/gpu_rerank_train.py), served as the policy would serve them.

    python bench/gpu_blend_eval.py --lists .gpu/scifact_lists.json.gz /path/to/gpu_scores_*.json.gz

For each recipe's scores: the blend is chosen and confirmed on the out-of-fold train scores by
the cross-fitted rule (``training/crossfit.choose_cross_fitted``, the rule ``rrs train-reranker``
applies), then replayed on the test queries. Reports hybrid alone, plain reranking (weight 1,
100 deep) and the chosen blend on test.

The policy table (``policy_table``): candidate default blends replayed with each recipe's scores
and with random scores (``RANDOM_SEEDS``: a reranker that knows nothing), on train (out of fold)
and test -- what ``RRS_RERANK_DEFAULT_*`` was chosen from. Writes
``bench/results/gpu/gpu_blend_scifact.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RANDOM_SEEDS = (0, 1, 2)
DEFAULT_CANDIDATES = [  # (weight, depth, normalization)
    (0.1, 20, "minmax"),
    (0.2, 20, "minmax"),
    (0.3, 20, "minmax"),
    (0.1, 20, "rank"),
    (0.2, 20, "rank"),
    (0.2, 50, "rank"),
]


def scored(split: dict, scores: dict[str, list[float]]) -> dict:
    """Query id -> its candidates as ``Scored`` (fused order), for the queries that were scored."""
    from rrsearch.evaluation.tuning import Scored

    return {
        entry["id"]: [
            Scored(doc, fused, rerank)
            for doc, fused, rerank in zip(entry["docs"], entry["scores"], scores[entry["id"]], strict=True)
        ]
        for entry in split["lists"]
        if entry["id"] in scores
    }


def policy_table(scores_of: dict[str, dict], frozen: dict) -> list[dict]:
    """nDCG@10 of each candidate default blend with each model's scores and with random ones."""
    import random

    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.tuning import Scored, replay
    from rrsearch.service.blend import BlendConfig

    any_model = next(iter(scores_of.values()))
    models = dict(scores_of)
    for seed in RANDOM_SEEDS:
        rng = random.Random(seed)
        models[f"random-{seed}"] = {
            split: {q: [Scored(e.parent_id, e.fused, rng.random()) for e in entries] for q, entries in lists.items()}
            for split, lists in any_model.items()
        }
    rows = []
    for weight, depth, normalization in [(0.0, 100, "minmax"), *DEFAULT_CANDIDATES]:
        config = BlendConfig(weight=weight, depth=depth, normalization=normalization)  # type: ignore[arg-type]
        row: dict = {"weight": weight, "depth": depth, "normalization": normalization}
        for name, splits in models.items():
            for split, lists in splits.items():
                qrels = frozen["splits"][split]["qrels"]
                rankings = {q: replay(entries, config) for q, entries in lists.items()}
                row[f"{split}:{name}"] = round(evaluate({q: qrels[q] for q in lists}, rankings)["ndcg@10"], 4)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=Path, default=ROOT / ".gpu/scifact_lists.json.gz")
    parser.add_argument("scores", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/gpu/gpu_blend_scifact.json")
    args = parser.parse_args()

    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.tuning import replay
    from rrsearch.service.blend import BlendConfig
    from rrsearch.training.crossfit import choose_cross_fitted

    with gzip.open(args.lists, "rt") as handle:
        frozen = json.load(handle)
    train, test = frozen["splits"]["train"], frozen["splits"]["test"]
    report: dict = {"benchmark": "gpu_blend_scifact", "test_queries": len(test["lists"]), "recipes": {}}
    scores_of: dict[str, dict] = {}
    for path in args.scores:
        with gzip.open(path, "rt") as handle:
            document = json.load(handle)
        facts = document["facts"]
        out_of_fold = scored(train, document["out_of_fold_train"])
        best, chosen = choose_cross_fitted(
            {qid: train["qrels"][qid] for qid in out_of_fold}, out_of_fold, folds=2, candidates=frozen["depth"]
        )
        on_test = scored(test, document["test"])
        test_qrels = {qid: test["qrels"][qid] for qid in on_test}

        def ndcg(config: BlendConfig, on_test=on_test, test_qrels=test_qrels) -> float:
            rankings = {qid: replay(entries, config) for qid, entries in on_test.items()}
            return round(evaluate(test_qrels, rankings)["ndcg@10"], 4)

        figures = {
            "hybrid": ndcg(BlendConfig(weight=0.0, depth=frozen["depth"], normalization="minmax")),
            "plain_rerank": ndcg(BlendConfig(weight=1.0, depth=frozen["depth"], normalization="minmax")),
            "served_blend": ndcg(best),
        }
        report["recipes"][facts["recipe"]] = {
            "training": facts,
            "chosen_on_train": {**asdict(best), **{k: chosen[k] for k in ("hybrid_alone", "plain_rerank")}},
            "chosen_gain": chosen["chosen_gain"],
            "test_ndcg@10": figures,
        }
        print(f"{facts['recipe']}: chosen {asdict(best)} on train; test nDCG@10 {figures}")
        scores_of[facts["recipe"]] = {"train": out_of_fold, "test": on_test}
    report["policy_table"] = policy_table(scores_of, frozen)
    for row in report["policy_table"]:
        print(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
