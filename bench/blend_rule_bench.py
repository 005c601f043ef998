"""How a blend rule chooses on few judged queries: today's proposal (the best mean gain on the
choosing half) against the setting with the best lower bound there, over many random halvings.

    HF_HUB_OFFLINE=1 python bench/blend_rule_bench.py --model DIR --index scifact \\
        ../shared/data/scifact --split train [--test] [--halvings 200]

The judged queries of ``--split`` the model was not trained on (``training.json``'s fingerprints)
are searched once, fused as the index is served, and every candidate is scored once (cached in
``--cache``); each rule is then replayed on ``--halvings`` random splits into a choosing and a
confirming half (and on the hash halves the product uses). For each rule: how often it keeps a
blend, and the mean gain it brings on the confirming halves (0 when it keeps none): what a user
whose judgments are split this way would be served. With ``--test``, the test split's nDCG@10
of each rule's choice on the hash halves is printed too, for information (nothing is chosen on it).

Writes ``bench/results/blend_rule.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def gains_by_setting(qrels, collected) -> tuple[list, np.ndarray, list[str]]:
    """Every grid setting, and each one's per-query nDCG@10 gain over the fused order (settings x queries)."""
    from rrsearch.evaluation.metrics import per_query
    from rrsearch.evaluation.tuning import DEPTHS, NORMALIZATIONS, WEIGHTS, replay
    from rrsearch.service.blend import BlendConfig

    ids = sorted(collected)
    hybrid = per_query(qrels, {q: [e.parent_id for e in collected[q]] for q in ids})
    settings, rows = [], []
    for normalization in NORMALIZATIONS:
        for depth in DEPTHS:
            for weight in WEIGHTS[1:]:
                config = BlendConfig(weight=weight, depth=depth, normalization=normalization)
                scores = per_query(qrels, {q: replay(collected[q], config) for q in ids})
                settings.append(config)
                rows.append([scores[q] - hybrid[q] for q in ids])
    return settings, np.asarray(rows), ids


def propose_and_confirm(rule: str, settings, gains: np.ndarray, choosing: np.ndarray, confirming: np.ndarray):
    """(index of the kept setting or None, the proposal's confirming mean and lower bound)."""
    from rrsearch.evaluation.tuning import gain_lower_bound

    half = gains[:, choosing]
    means = half.mean(axis=1)
    if rule == "mean":  # today's: the best mean, ties to the smaller weight
        order = sorted(range(len(settings)), key=lambda i: (-means[i], settings[i].weight))
    else:  # the best lower bound among settings that move a hit on this half (a no-op bounds at 0)
        moves = [i for i in range(len(settings)) if np.any(half[i] != 0)]
        bounds = {i: gain_lower_bound(half[i]) for i in moves}
        order = sorted(moves, key=lambda i: (-bounds[i], -means[i], settings[i].weight))
    if not order:
        return None, 0.0, 0.0
    proposal = order[0]
    confirmed = gains[proposal, confirming]
    lower = gain_lower_bound(confirmed)
    return (proposal if lower > 0 else None), float(confirmed.mean()), lower


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--halvings", type=int, default=200)
    parser.add_argument("--test", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/blend_rule_collected.pkl"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/blend_rule.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import Dataset, load_dataset
    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.offline import open_pipeline, trained_on
    from rrsearch.evaluation.tuning import collect, fusion_of, halves, replay
    from rrsearch.service.blend import BlendConfig

    judged = load_dataset(args.data, args.split, check_corpus=False)
    left_out = trained_on(args.model, judged).ids
    kept = {q: t for q, t in judged.queries.items() if q not in left_out and judged.qrels.get(q)}
    judged = Dataset(
        root=judged.root,
        corpus_path=judged.corpus_path,
        queries=kept,
        qrels={q: judged.qrels[q] for q in kept},
        split=judged.split,
    )
    test = load_dataset(args.data, "test", check_corpus=False) if args.test else None
    if args.cache.exists():
        cached = pickle.loads(args.cache.read_bytes())
    else:
        with open_pipeline(Settings(), alias=args.index, depth=args.candidates, reranker=args.model) as job:
            cached = {
                "fusion": fusion_of(job.pipeline, args.index),
                "judged": collect(job.pipeline, judged, candidates=args.candidates, index=args.index),
                "test": collect(job.pipeline, test, candidates=args.candidates, index=args.index) if test else None,
            }
        args.cache.write_bytes(pickle.dumps(cached))
    settings, gains, ids = gains_by_setting(judged.qrels, cached["judged"])
    position = {q: i for i, q in enumerate(ids)}
    rng = np.random.default_rng(0)
    report: dict = {
        "benchmark": "blend_rule_bench",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": args.model,
        "fusion": cached["fusion"],
        "queries": len(ids),
        "halvings": args.halvings,
        "rules": {},
    }
    hash_choosing, hash_confirming = (np.asarray([position[q] for q in half]) for half in halves(ids))
    for rule in ("mean", "lower"):
        served = []
        for _ in range(args.halvings):
            order = rng.permutation(len(ids))
            choosing, confirming = order[: len(ids) // 2], order[len(ids) // 2 :]
            kept_index, _, _ = propose_and_confirm(rule, settings, gains, choosing, confirming)
            served.append(0.0 if kept_index is None else float(gains[kept_index, confirming].mean()))
        kept_index, mean, lower = propose_and_confirm(rule, settings, gains, hash_choosing, hash_confirming)
        row = {
            "kept_share": round(float(np.mean([s != 0.0 for s in served])), 3),
            "mean_served_gain_on_confirming_halves": round(float(np.mean(served)), 4),
            "worst_served_gain": round(float(np.min(served)), 4),
            "hash_halves": {
                "kept": None if kept_index is None else asdict(settings[kept_index]),
                "proposal_confirming_gain": round(mean, 4),
                "proposal_confirming_lower": round(lower, 4),
            },
        }
        if test is not None:
            config = BlendConfig(weight=0.0) if kept_index is None else settings[kept_index]
            rankings = {q: replay(entries, config) for q, entries in cached["test"].items()}
            first = {q: [e.parent_id for e in entries] for q, entries in cached["test"].items()}
            row["test_ndcg@10 (information)"] = {
                "first_stage": round(evaluate(test.qrels, first)["ndcg@10"], 4),
                "kept": round(evaluate(test.qrels, rankings)["ndcg@10"], 4),
            }
        report["rules"][rule] = row
        print(rule, json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
