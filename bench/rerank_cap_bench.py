"""The rerank length cap, chosen by quality: a reranker trained at 512 tokens, scored at caps.

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/rerank_cap_bench.py \
        [--alias bench-precision-torch-fp32] [--caps 128 192 256 512] [--model-dir DIR]

Every reranker ``rrs train-reranker`` makes by default is trained at 128 tokens and caps itself
there, so it cannot say what a longer cap is worth. This bench trains one at 512 tokens, on half
of SciFact's judged train queries (fold 0 of ``training.crossfit.assign_folds``), and scores the
other half (fold 1: queries it never saw) at each cap: 100 hybrid candidates per query, through
the configured backend (``auto``), as ``/search`` serves them.

The alias must hold SciFact ingested with the defaults (``bench/cpu_precision_bench.py`` makes
``bench-precision-torch-fp32``): passages of at most 254 word pieces, so a pair is at most about
300 tokens and any cap from there on equals 512. The recipe is the default one except for the
cap and ``--title-queries`` (0 by default: at 512 tokens the 800 title queries would make the
training about three times longer on 2 cores).

For each cap it reports nDCG@10 of the reranked order (weight 1 over all candidates), the
fused order's for reference, and the reranker's seconds per query. The smallest cap within 0.005
nDCG@10 of 512 is the one issue 22 asks for. The figures go to
bench/results/rerank_cap_scifact.json; a re-run with the model folder in place skips training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import DATA, rerank_quality

RESULTS = Path(__file__).resolve().parent / "results"
TOLERANCE = 0.005  # issue 22: within 0.005 nDCG@10 of 512 tokens
FIT_FOLD, SCORE_FOLD = 0, 1


def split_judged(queries) -> tuple[list, list]:
    """The judged train queries dealt into the fold trained on and the fold scored (pure)."""
    from rrsearch.training.crossfit import assign_folds

    fold_of = assign_folds([query.id for query in queries], 2)
    return ([q for q in queries if fold_of[q.id] == FIT_FOLD], [q for q in queries if fold_of[q.id] == SCORE_FOLD])


def smallest_within(ndcg_by_cap: dict[int, float], tolerance: float = TOLERANCE) -> int:
    """The smallest cap whose nDCG@10 is within ``tolerance`` of the longest cap's (pure)."""
    longest = ndcg_by_cap[max(ndcg_by_cap)]
    return min(cap for cap, ndcg in ndcg_by_cap.items() if ndcg >= longest - tolerance)


def train(settings, es, alias: str, fit: list, model_dir: Path, max_length: int, title_queries: int) -> dict:
    """The default recipe at ``max_length`` tokens on ``fit`` (mined over ``alias``) plus title queries."""
    from rrsearch.training.reranker import TrainConfig, train_reranker
    from rrsearch.training.run import gather_training_data, mining_config_from

    mining = mining_config_from(settings, title_queries=title_queries)
    config = TrainConfig.from_settings(settings, max_length=max_length)
    started = time.perf_counter()
    gathered = gather_training_data(
        fit, settings, alias=alias, mining=mining, depth=max(mining.max_rank, config.eval_depth), es=es, progress=False
    )
    result = train_reranker(gathered.mined, config, model_dir, extra_train=gathered.titles, progress=False)
    return {
        "queries": len(gathered.mined),
        "title_queries": len(gathered.titles),
        "max_length": max_length,
        "epochs": config.epochs,
        "steps": result.steps,
        "best_step": result.best_step,
        "training_seconds": result.seconds,
        "seconds": round(time.perf_counter() - started, 1),
        "heldout_after": result.after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alias", default="bench-precision-torch-fp32", help="SciFact ingested with the defaults.")
    parser.add_argument("--title-queries", type=int, default=0, help="Title queries added to training [0].")
    parser.add_argument("--caps", type=int, nargs="+", default=[128, 192, 256, 512])
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/rrs-bench/reranker-scifact-512"))
    parser.add_argument("--out", type=Path, default=RESULTS / "rerank_cap_scifact.json")
    args = parser.parse_args()
    assert os.environ.get("ES_URL"), "set ES_URL (e.g. `rrs es start`)"

    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.es_client import make_client
    from rrsearch.core.settings import Settings
    from rrsearch.training.judgments import load_judgments

    settings = Settings()
    es = make_client(settings, request_timeout=120)
    fit, scored = split_judged(load_judgments(DATA, "train"))
    longest = max(args.caps)
    training = None
    if not (args.model_dir / "config.json").exists():
        print(
            f"training at {longest} tokens on {len(fit)} judged queries + {args.title_queries} title queries",
            flush=True,
        )
        training = train(settings, es, args.alias, fit, args.model_dir, longest, args.title_queries)
        print(json.dumps(training), flush=True)
    bi_encoder = bi_encoder_from(settings)
    rows = []
    for cap in sorted(args.caps):
        capped = settings.model_copy(update={"rerank_max_length": cap})
        rows.append(
            {
                "cap": cap,
                **rerank_quality(
                    capped,
                    es,
                    bi_encoder,
                    args.alias,
                    args.model_dir,
                    {q.id: q.text for q in scored},
                    {q.id: dict.fromkeys(q.positive_ids, 1) for q in scored},
                    args.candidates,
                ),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    es.close()
    chosen = smallest_within({row["cap"]: row["ndcg@10"] for row in rows})
    result = {
        "bench": "rerank_cap",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "alias": args.alias,
        "backend": settings.rerank_backend,
        "candidates": args.candidates,
        "trained_on": f"fold {FIT_FOLD} of 2 of the judged train queries ({len(fit)}), {args.title_queries} title queries",
        "scored_on": f"fold {SCORE_FOLD} of 2 ({len(scored)} judged train queries the model never saw)",
        "training": training,
        "caps": rows,
        "tolerance": TOLERANCE,
        "smallest_cap_within_tolerance": chosen,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"smallest cap within {TOLERANCE} nDCG@10 of {longest}: {chosen} -> {args.out}")


if __name__ == "__main__":
    main()
