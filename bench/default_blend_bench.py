"""The default blend: chosen on train splits across collections, fusions and models, reported on test.

The serving policy's last source (``service/blend_policy.py``) is what a cross-encoder nothing
confirmed is served, on any index, under whatever fusion the index serves (RRF, or the linear
fusion ``rrs eval --tune-fusion`` chose). It must cost little for a model that does not know the
domain, and keep some of what a good one gives. For each collection this bench chooses the
fusion on train (as the service would serve it), then collects every query's candidates once
per fusion (RRF and the chosen one) and per model, and replays each candidate default from
those scores, beside scores drawn at random (3 seeds: a model that knows nothing at all).

    HF_HUB_OFFLINE=1 python bench/default_blend_bench.py --model demo=DIR --model untrained=DIR \\
        scifact=../shared/data/scifact@policy-scifact cisi=/work/collections/cisi@policy-cisi ...

The rule, applied to the train rows only: keep the candidates whose every cell (collection x
fusion x model, and the random seeds' mean) is at most ``MARGIN`` below the first stage, and among
those the largest mean gain of the real models; with none kept, the largest worst cell. The test
rows are then reported for every candidate. Writes ``bench/results/default_blend.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEIGHTS = (0.03, 0.05, 0.1, 0.15)
DEPTHS = (10, 20, 30)
NORMALIZATIONS = ("minmax", "rank")
RANDOM_SEEDS = (1, 2, 3)
MARGIN = 0.005


def candidates():
    from rrsearch.service.blend import BlendConfig

    return [BlendConfig(weight=w, depth=d, normalization=n) for w in WEIGHTS for d in DEPTHS for n in NORMALIZATIONS]


def label(config) -> str:
    return f"{config.weight}/{config.depth}/{config.normalization}"


def deltas(qrels, collected, configs) -> dict[str, float]:
    """nDCG@10 of each config minus the first stage's, on one set of collected scores (pure)."""
    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.tuning import replay
    from rrsearch.service.blend import BlendConfig

    def ndcg(config) -> float:
        return evaluate(qrels, {qid: replay(entries, config) for qid, entries in collected.items()})["ndcg@10"]

    first = ndcg(BlendConfig(weight=0.0))
    return {"first_stage": round(first, 4), **{label(c): round(ndcg(c) - first, 4) for c in configs}}


def shuffled(collected, seed: int):
    """The same candidates with cross-encoder scores drawn at random (a model that knows nothing)."""
    rng = random.Random(seed)
    return {qid: [replace(e, rerank=rng.random()) for e in entries] for qid, entries in collected.items()}


def sample(dataset, limit: int | None, seed: int = 7):
    if limit is None or len(dataset.queries) <= limit:
        return dataset
    kept = sorted(random.Random(seed).sample(sorted(dataset.queries), limit))
    return replace(
        dataset,
        queries={q: dataset.queries[q] for q in kept},
        qrels={q: dataset.qrels[q] for q in kept if q in dataset.qrels},
    )


def choose(rows: list[dict], configs) -> tuple[str, dict]:
    """The rule of the module's docstring over the train rows (pure)."""
    summary = {}
    for config in configs:
        name = label(config)
        real = [row[name] for row in rows if row["model"] != "random"]
        cells = real + [row[name] for row in rows if row["model"] == "random"]
        summary[name] = {"worst": min(cells), "mean_real_gain": round(sum(real) / len(real), 4)}
    safe = [name for name, s in summary.items() if s["worst"] >= -MARGIN]
    if safe:
        return max(safe, key=lambda name: summary[name]["mean_real_gain"]), summary
    return max(summary, key=lambda name: summary[name]["worst"]), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collections", nargs="+", help="NAME=BEIR_FOLDER[@ALIAS] (indexed already)")
    parser.add_argument("--model", action="append", required=True, help="LABEL=cross-encoder folder")
    parser.add_argument("--alias-prefix", default="policy-")
    parser.add_argument("--max-queries", type=int, default=200, help="a seeded sample of a larger split")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/default_blend.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.fusion_tuning import tune_fusion
    from rrsearch.evaluation.offline import open_pipeline
    from rrsearch.evaluation.tuning import collect
    from rrsearch.service.blend_policy import default_blend
    from rrsearch.service.schemas import Fusion

    settings = Settings()
    configs = candidates()
    depth = max(DEPTHS)
    rows: dict[str, list[dict]] = {"train": [], "test": []}
    started = time.perf_counter()
    for item in args.collections:
        name, rest = item.split("=", 1)
        folder, _, alias = rest.partition("@")
        alias, data = alias or args.alias_prefix + name, Path(folder)
        splits = {s: sample(load_dataset(data, s, check_corpus=False), args.max_queries) for s in ("train", "test")}
        fusions: dict[str, Fusion | None] = {"rrf": Fusion(method="rrf", k=settings.rrf_k)}
        for model_label, model in (m.split("=", 1) for m in args.model):
            with open_pipeline(settings, alias=alias, depth=depth, reranker=model) as job:
                if "chosen" not in fusions:
                    chosen = tune_fusion(job.pipeline, splits["train"], index=alias, candidates=100)[0]
                    fusions["chosen"] = chosen if chosen.method != "rrf" else None
                for split, dataset in splits.items():
                    for fusion_name, fusion in ((n, f) for n, f in fusions.items() if f is not None):
                        collected = collect(job.pipeline, dataset, candidates=depth, index=alias, fusion=fusion)
                        where = {"collection": name, "split": split, "queries": len(dataset.queries)}
                        where["fusion"] = fusion_name if fusion_name == "rrf" else json.dumps(fusion.model_dump())
                        row = {**where, "model": model_label, **deltas(dataset.qrels, collected, configs)}
                        rows[split].append(row)
                        print(json.dumps(row)[:300], flush=True)
                        if model_label == next(iter(args.model)).split("=", 1)[0]:  # random scores once per list
                            noise = [deltas(dataset.qrels, shuffled(collected, s), configs) for s in RANDOM_SEEDS]
                            mean = {k: round(sum(n[k] for n in noise) / len(noise), 4) for k in noise[0]}
                            rows[split].append({**where, "model": "random", **mean})
    chosen, train_summary = choose(rows["train"], configs)
    _, test_summary = choose(rows["test"], configs)
    report = {
        "benchmark": "default_blend_bench",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": args.model,
        "candidates_collected": depth,
        "margin": MARGIN,
        "current_default": asdict(default_blend(settings)),
        "chosen_on_train": chosen,
        "train_summary": train_summary,
        "test_summary": test_summary,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"chosen on train: {chosen} {train_summary[chosen]}; on test: {test_summary[chosen]}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
