"""The serving policy and the tuned fusion on several collections: what a user's search is served.

    HF_HUB_OFFLINE=1 ES_URL=... python bench/policy_bench.py --model DIR \\
        scifact=../shared/data/scifact@scifact cisi=/work/collections/cisi medline=/work/collections/medline ...

Each NAME=FOLDER[@ALIAS] is a BEIR folder whose corpus is already indexed behind ALIAS
(default ``--alias-prefix``NAME; ``rrs ingest`` it first). For each:

1. **fusion** (when the folder has a train split): chosen on the train split (``rrs eval --tune-fusion``'s code, written into the
   index's ``_meta``), then RRF and the choice scored on test;
2. **served through ``POST /search``** (the service's own app, the settings' defaults, the
   model ``--model`` and nothing calibrated on this index yet): nDCG@10 of what the service
   returns against the same request with ``rerank: false``, and which ``blend.source`` served;
3. **policy** for the cross-encoder ``--model``: ``rrs calibrate``'s corpus calibration
   (pseudo-queries from the index, with ``--judgments``' train queries the model was not trained
   on, saved where the service reads it), then on the test queries (fused as the service
   fuses them: the fusion chosen on train; 100 candidates, every candidate scored once)
   nDCG@10 of the first stage, plain reranking, the default blend (``RRS_RERANK_DEFAULT_*``), the corpus calibration, and what the
   policy serves (the model's judged calibration where it holds on this index and was not
   inconclusive, else the corpus one unless it too was inconclusive, else the default), and,
   for information, the best blend chosen on test itself (what the policy's choice is measured
   against); then ``POST /search`` again, now served from the policy's source.

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


def through_search(settings, job, alias: str, test) -> dict:
    """nDCG@10 of ``POST /search`` on the test queries as the service serves them (its defaults:
    the policy's blend, the fusion in the index's ``_meta``) and with ``rerank: false``, one query
    at a time through the service's own app, with the blend sources its responses name."""
    from collections import Counter

    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.service.http.app import create_app

    served_settings = settings.model_copy(
        # the calibration the service would start itself is made by this bench, in its own step
        update={
            "index_alias": alias,
            "window_cache_size": 0,
            "search_log_enabled": False,
            "rerank_auto_calibrate": False,
        }
    )
    pipeline = job.pipeline
    client = create_app(
        served_settings, es=job.es, bi_encoder=pipeline.bi_encoder, reranker=pipeline.reranker
    ).test_client()
    rankings: dict[str, dict[str, list[str]]] = {"served": {}, "rerank_off": {}}
    sources: Counter = Counter()
    degraded: Counter = Counter()
    for qid, text in test.queries.items():
        for name, extra in (("served", {}), ("rerank_off", {"rerank": False})):
            body = {"query": text[: settings.max_query_chars], "top_k": 10, "highlight": False, **extra}
            response = client.post("/search", json=body)
            answer = response.get_json()
            if response.status_code != 200:
                raise SystemExit(f"POST /search for query {qid} ({name}): {response.status_code} {answer}")
            rankings[name][qid] = [hit["parent_id"] for hit in answer["hits"]]
            if name == "served":
                sources[(answer.get("blend") or {}).get("source", "none")] += 1
                degraded.update(filter(None, (answer.get("degraded") or "").split(",")))
    ndcg = {name: round(evaluate(test.qrels, runs)["ndcg@10"], 4) for name, runs in rankings.items()}
    return {
        "ndcg@10": ndcg,
        "served_minus_rerank_off": round(ndcg["served"] - ndcg["rerank_off"], 4),
        "blend_sources": dict(sources),
        "degraded": dict(degraded),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collections", nargs="+", help="NAME=BEIR_FOLDER")
    parser.add_argument("--model", required=True, help="Cross-encoder folder or hub name.")
    parser.add_argument("--alias-prefix", default="policy-")
    parser.add_argument("--pseudo-queries", type=int, default=200)
    parser.add_argument(
        "--calibration-candidates", type=int, default=50, help="Candidates per calibration query (./run demo: 30)."
    )
    parser.add_argument(
        "--judgments",
        type=Path,
        help="A BEIR folder whose train queries (those the model was not trained on) join the pseudo-queries "
        "(rrs calibrate --judgments; ./run demo passes sample/).",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/policy_bench.json")
    args = parser.parse_args()
    if args.judgments and len(args.collections) > 1:
        parser.error("--judgments judges one corpus: name one collection with it")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.corpus_calibration import calibrate, save
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.fusion_tuning import retrieve, score, tune_fusion, write_fusion
    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.offline import open_pipeline
    from rrsearch.evaluation.tuning import collect, fusion_of, replay, tune
    from rrsearch.service.blend import BlendConfig
    from rrsearch.service.blend_policy import BlendPolicy, calibration_path, model_identity
    from rrsearch.service.schemas import Fusion

    settings = Settings()
    report: dict = {
        "benchmark": "policy_bench",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": args.model,
        "collections": {},
    }
    # judged queries belong to one corpus: loaded once, for the one collection they judge
    judged = load_dataset(args.judgments, "train", check_corpus=False) if args.judgments else None
    for item in args.collections:
        name, rest = item.split("=", 1)
        folder, _, alias = rest.partition("@")
        alias, data = alias or args.alias_prefix + name, Path(folder)
        started = time.perf_counter()
        with open_pipeline(settings, alias=alias, depth=100, reranker=args.model) as job:
            pipeline, es = job.pipeline, job.es
            model, version = model_identity(pipeline.reranker), pipeline.index_info(alias).version
            policy = BlendPolicy(pipeline.reranker, settings)
            report.update(model_identity=model, default_blend=asdict(policy.default))
            calibration_file = calibration_path(settings.home, model, version)
            calibration_file.unlink(missing_ok=True)  # what a user meets before running rrs calibrate
            test = load_dataset(data, "test", check_corpus=False)
            fusion = None
            if (data / "qrels" / "train.tsv").exists():
                train = load_dataset(data, "train", check_corpus=False)
                chosen, facts = tune_fusion(pipeline, train, index=alias, candidates=100)
                write_fusion(es, alias, facts)
                pipeline.index_info(alias, fresh=True)  # this pipeline's searches now fuse as the service does
                test_lists = retrieve(pipeline, test, index=alias, candidates=100)
                fusion = {
                    "chosen_on_train": chosen.model_dump(),
                    "train": {"rrf": facts["rrf"], "chosen": facts["grid"][0]["ndcg@10"]},
                    "test": {
                        "rrf": round(score(test.qrels, test_lists, Fusion(method="rrf", k=settings.rrf_k)), 4),
                        "chosen": round(score(test.qrels, test_lists, chosen), 4),
                    },
                }
            uncalibrated = through_search(settings, job, alias, test)
            corpus, calibration = calibrate(
                pipeline,
                es,
                alias,
                count=args.pseudo_queries,
                candidates=args.calibration_candidates,
                default=policy.default,
                judged=judged,
            )
            save(calibration_file, corpus, calibration, model=model, index_version=version)
            served = BlendPolicy(pipeline.reranker, settings).served(version)
            calibrated = through_search(settings, job, alias, test)
            collected = collect(pipeline, test, candidates=100, index=alias)
            fused_by = fusion_of(pipeline, alias)

        def ndcg(config: BlendConfig, collected=collected, test=test) -> float:
            rankings = {qid: replay(entries, config) for qid, entries in collected.items()}
            return round(evaluate(test.qrels, rankings)["ndcg@10"], 4)

        first, policy_ndcg = ndcg(BlendConfig(weight=0.0)), ndcg(served.config)
        best_on_test = tune(test.qrels, collected)[1][0]  # for information only: chosen on test itself
        row = {
            "test_queries": len(test.queries),
            "fusion": fusion,
            "post_search_uncalibrated": uncalibrated,
            "corpus_calibration": {
                **asdict(corpus),
                **{k: calibration[k] for k in ("hybrid_alone", "plain_rerank", "verdict")},
            },
            "policy": {"source": served.source, **asdict(served.config)},
            "post_search_after_calibrate": calibrated,
            "test_fused_by": fused_by,
            "test_ndcg@10 (the served fusion, 100 candidates)": {
                "first_stage": first,
                "plain_rerank": ndcg(BlendConfig(weight=1.0)),
                "default_blend": ndcg(policy.default),
                "corpus_calibration": ndcg(corpus),
                f"served ({served.source})": policy_ndcg,
                "best blend chosen on test (for information)": {
                    k: best_on_test[k] for k in ("weight", "depth", "normalization", "ndcg@10")
                },
            },
            "served_minus_first_stage": round(policy_ndcg - first, 4),
            "share_of_best_gain": round((policy_ndcg - first) / (best_on_test["ndcg@10"] - first), 2)
            if best_on_test["ndcg@10"] > first
            else None,
            "seconds": round(time.perf_counter() - started, 1),
        }
        report["collections"][name] = row
        print(name, json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
