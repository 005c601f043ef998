"""The serving policy and the tuned fusion on several collections: what a user's search is served.

    HF_HUB_OFFLINE=1 ES_URL=... python bench/policy_bench.py --model DIR \\
        scifact=../shared/data/scifact@scifact cisi=/work/collections/cisi medline=/work/collections/medline ...

Each NAME=FOLDER[@ALIAS] is a BEIR folder whose corpus is already indexed behind ALIAS
(default ``--alias-prefix``NAME; ``rrs ingest`` it first). For each:

1. **fusion** (when the folder has a train split): chosen on the train split (``rrs eval --tune-fusion``'s code, written into the
   index's ``_meta``), then RRF and the choice scored on test;
2. **policy** for the cross-encoder ``--model``: ``rrs calibrate``'s corpus calibration
   (pseudo-queries from the index), then on the test queries (RRF, 100 candidates, every
   candidate scored once) nDCG@10 of the first stage, plain reranking, the default blend
   (``RRS_RERANK_DEFAULT_*``) and the corpus calibration; the policy serves the corpus one.

Writes ``bench/results/policy_bench.json``. Target (issue 34): served never more than 0.005
below the first stage on any collection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collections", nargs="+", help="NAME=BEIR_FOLDER")
    parser.add_argument("--model", required=True, help="Cross-encoder folder or hub name.")
    parser.add_argument("--alias-prefix", default="policy-")
    parser.add_argument("--pseudo-queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/policy_bench.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.corpus_calibration import calibrate
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.fusion_tuning import retrieve, score, tune_fusion, write_fusion
    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.offline import open_pipeline
    from rrsearch.evaluation.tuning import collect, replay
    from rrsearch.service.blend import BlendConfig
    from rrsearch.service.schemas import Fusion

    settings = Settings()
    default = BlendConfig(
        weight=settings.rerank_default_weight,
        depth=settings.rerank_default_depth,
        normalization=settings.rerank_default_normalization,
    )
    report: dict = {
        "benchmark": "policy_bench",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": args.model,
        "default_blend": asdict(default),
        "collections": {},
    }
    for item in args.collections:
        name, rest = item.split("=", 1)
        folder, _, alias = rest.partition("@")
        alias, data = alias or args.alias_prefix + name, Path(folder)
        started = time.perf_counter()
        with open_pipeline(settings, alias=alias, depth=100, reranker=args.model) as job:
            pipeline, es = job.pipeline, job.es
            test = load_dataset(data, "test", check_corpus=False)
            fusion = None
            if (data / "qrels" / "train.tsv").exists():
                train = load_dataset(data, "train", check_corpus=False)
                chosen, facts = tune_fusion(pipeline, train, index=alias, candidates=100)
                write_fusion(es, alias, facts)
                test_lists = retrieve(pipeline, test, index=alias, candidates=100)
                fusion = {
                    "chosen_on_train": chosen.model_dump(),
                    "train": {"rrf": facts["rrf"], "chosen": facts["grid"][0]["ndcg@10"]},
                    "test": {
                        "rrf": round(score(test.qrels, test_lists, Fusion(method="rrf", k=settings.rrf_k)), 4),
                        "chosen": round(score(test.qrels, test_lists, chosen), 4),
                    },
                }
            corpus, calibration = calibrate(pipeline, es, alias, count=args.pseudo_queries, candidates=50)
            collected = collect(pipeline, test, candidates=100, index=alias)

        def ndcg(config: BlendConfig, collected=collected, test=test) -> float:
            rankings = {qid: replay(entries, config) for qid, entries in collected.items()}
            return round(evaluate(test.qrels, rankings)["ndcg@10"], 4)

        first = ndcg(BlendConfig(weight=0.0))
        served = ndcg(corpus)
        row = {
            "test_queries": len(test.queries),
            "fusion": fusion,
            "corpus_calibration": {**asdict(corpus), **{k: calibration[k] for k in ("hybrid_alone", "plain_rerank")}},
            "test_ndcg@10": {
                "first_stage": first,
                "plain_rerank": ndcg(BlendConfig(weight=1.0)),
                "default_blend": ndcg(default),
                "served (corpus calibration)": served,
            },
            "served_minus_first_stage": round(served - first, 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
        report["collections"][name] = row
        print(name, json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
