"""Quality metrics from ir-measures (pytrec_eval underneath), on documents, not passages.

A ranked list of passages is collapsed to its parent documents first (a document's rank is
its best passage's), because judgments are per document.
"""

from __future__ import annotations

import statistics

import ir_measures
from ir_measures import MAP, RR, R, nDCG

MEASURES = {"ndcg@10": nDCG @ 10, "recall@100": R @ 100, "mrr@10": RR @ 10, "map@100": MAP @ 100}


def collapse_to_parents(ranked_parent_ids: list[str]) -> list[str]:
    """Parent ids in first-seen order (a document ranks where its best passage does)."""
    return list(dict.fromkeys(ranked_parent_ids))


def run_from_rankings(rankings: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """ir-measures run format from ranked doc lists: earlier = higher score."""
    return {qid: {doc: float(len(docs) - rank) for rank, doc in enumerate(docs)} for qid, docs in rankings.items()}


def evaluate(qrels: dict[str, dict[str, int]], rankings: dict[str, list[str]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@100, MRR@10, MAP@100 over every judged query (missing runs = 0)."""
    run = run_from_rankings({qid: collapse_to_parents(docs) for qid, docs in rankings.items()})
    judged = dict(qrels)
    for qid in judged:
        run.setdefault(qid, {})
    scores = ir_measures.calc_aggregate(list(MEASURES.values()), judged, run)
    return {name: float(scores.get(measure, 0.0)) for name, measure in MEASURES.items()}


def per_query(
    qrels: dict[str, dict[str, int]], rankings: dict[str, list[str]], name: str = "ndcg@10"
) -> dict[str, float]:
    """One measure per judged query (missing runs = 0), for paired comparisons."""
    measure = MEASURES[name]
    run = run_from_rankings({qid: collapse_to_parents(docs) for qid, docs in rankings.items()})
    scores = dict.fromkeys(qrels, 0.0)
    for metric in ir_measures.iter_calc([measure], qrels, run):
        scores[metric.query_id] = float(metric.value)
    return scores


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    """p50 / p95 of per-query latencies."""
    if not latencies_ms:
        return {"p50": 0.0, "p95": 0.0}
    ordered = sorted(latencies_ms)
    p95_index = min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))
    return {"p50": round(statistics.median(ordered), 2), "p95": round(ordered[p95_index], 2)}
