"""Test nDCG@10 of the rerankers a GPU trained (bench/gpu_rerank_train.py), served as the policy would serve them.

    python bench/gpu_blend_eval.py --lists .gpu/scifact_lists.json.gz /path/to/gpu_scores_*.json.gz

For each recipe's scores: the blend is chosen and confirmed on the out-of-fold train scores by
the cross-fitted rule (``training/crossfit.choose_cross_fitted``, the rule ``rrs train-reranker``
applies), then replayed on the test queries. Reports hybrid alone, plain reranking (weight 1,
100 deep) and the chosen blend on test, and writes ``bench/results/gpu_blend_scifact.json``.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=Path, default=ROOT / ".gpu/scifact_lists.json.gz")
    parser.add_argument("scores", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/gpu_blend_scifact.json")
    args = parser.parse_args()

    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.tuning import replay
    from rrsearch.service.blend import BlendConfig
    from rrsearch.training.crossfit import choose_cross_fitted

    with gzip.open(args.lists, "rt") as handle:
        frozen = json.load(handle)
    train, test = frozen["splits"]["train"], frozen["splits"]["test"]
    report: dict = {"benchmark": "gpu_blend_scifact", "test_queries": len(test["lists"]), "recipes": {}}
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
