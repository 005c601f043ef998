"""Choose a reranker's blend (weight, depth, normalisation) on a split you name.

Every judged query is searched once (hybrid, fused as the service fuses the index, the
cross-encoder over all ``candidates``, no collapse), keeping each candidate's fused score and
cross-encoder score. Every setting of the grid is then replayed offline from those scores -- no
second search -- and scored with nDCG@10 on documents, per query, against the hybrid order
(weight 0).

The queries are split in two halves (by a hash of their ids). The setting with the best
mean gain over the hybrid order on the first half is kept only when the *second* half
confirms it: its per-query gain there must have a positive one-sided 95% bootstrap lower
bound (:func:`gain_lower_bound`). Otherwise the choice is weight 0, and a search then skips
the cross-encoder and serves the hybrid order. Picking the best of 110 settings and testing
it on the same queries would flatter it (the winner's curse: on SciFact, a blend that
"won" on 81 held-out queries with a lower bound of +0.008 lost 0.016 on test); a confirmation
on queries the choice never saw does not.

    collected = collect(pipeline, dataset, candidates=100, index="scifact")
    best, grid = tune(dataset.qrels, collected)

``evaluation/offline.py`` runs these for the commands (``tune_blend``: collect, choose, write).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rrsearch.core.errors import RerankError
from rrsearch.evaluation.dataset import Dataset
from rrsearch.evaluation.metrics import evaluate, per_query
from rrsearch.service.blend import BlendConfig, blend
from rrsearch.service.schemas import Fusion, SearchRequest

WEIGHTS = tuple(round(0.1 * step, 1) for step in range(11))
DEPTHS = (10, 20, 30, 50, 100)
NORMALIZATIONS = ("minmax", "rank")
CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Scored:
    """One fused candidate of one query: its document, fused score and cross-encoder score."""

    parent_id: str
    fused: float
    rerank: float


def collect(
    pipeline,
    dataset: Dataset,
    *,
    candidates: int,
    index: str,
    rrf_k: int | None = None,
    fusion: Fusion | None = None,
    progress=None,
) -> dict[str, list[Scored]]:
    """Each query's candidates in fused order, with both scores (one search per query); fused by
    ``fusion``, else by RRF with ``rrf_k`` when it is given, else as the service fuses this index
    (the fusion chosen on train in its ``_meta``, else RRF): a blend is chosen for the order it
    will be served on."""
    fused = _named_fusion(fusion, rrf_k)
    collected: dict[str, list[Scored]] = {}
    for query_id, text in dataset.queries.items():
        request = SearchRequest(
            query=text[: pipeline.settings.max_query_chars],  # a judged query may be longer than the service takes
            mode="hybrid",
            **({"fusion": fused} if fused else {}),
            rerank=True,
            rerank_weight=1.0,
            rerank_depth=candidates,
            candidates=candidates,
            top_k=candidates,
            collapse=False,
            highlight=False,
            index=index,
        )
        response = pipeline.search(request)
        if not response.reranked:
            raise RerankError(f"query {query_id} was not reranked ({response.degraded}); tuning needs every score")
        hits = sorted(response.hits, key=lambda hit: hit.stages.fused.rank)
        collected[query_id] = [Scored(hit.parent_id, hit.stages.fused.score, hit.stages.rerank.score) for hit in hits]
        if progress is not None:
            progress.update(1)
    return collected


def _named_fusion(fusion: Fusion | None, rrf_k: int | None) -> Fusion | None:
    """The fusion a caller named (``fusion``, else RRF with ``rrf_k``), or None: the index's own (pure)."""
    return fusion or (Fusion(method="rrf", k=rrf_k) if rrf_k is not None else None)


def fusion_of(pipeline, index: str, *, fusion: Fusion | None = None, rrf_k: int | None = None) -> dict:
    """The fusion :func:`collect` fuses ``index`` by with these arguments, as the facts record it."""
    from rrsearch.service.pipeline import index_fusion

    used = _named_fusion(fusion, rrf_k)
    if used is None:
        used = index_fusion(pipeline.index_info(index).meta) or Fusion(method="rrf", k=pipeline.settings.rrf_k)
    return used.model_dump(exclude_none=True)


def replay(entries: list[Scored], config: BlendConfig) -> list[str]:
    """The document ranking ``config`` gives one query's candidates (pure)."""
    depth = min(config.depth or len(entries), len(entries))
    head, tail = entries[:depth], entries[depth:]
    final = (
        blend(
            [e.fused for e in head], [e.rerank for e in head], weight=config.weight, normalization=config.normalization
        )
        if config.weight < 1.0
        else [e.rerank for e in head]
    )
    order = sorted(range(len(head)), key=lambda i: -final[i])  # ties keep fused order
    return [head[i].parent_id for i in order] + [e.parent_id for e in tail]


def gain_lower_bound(gains, *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """One-sided bootstrap lower bound of the mean per-query gain (pure, seeded)."""
    values = np.asarray(gains, dtype=np.float64)
    if values.size == 0:
        return 0.0
    picks = np.random.default_rng(seed).integers(0, values.size, size=(resamples, values.size))
    return float(np.quantile(values[picks].mean(axis=1), 1.0 - confidence))


def halves(query_ids) -> tuple[list[str], list[str]]:
    """Query ids split into a choosing half and a confirming half by a hash of each id (pure,
    stable across runs and machines)."""
    import hashlib

    ranked = sorted(query_ids, key=lambda qid: hashlib.sha256(qid.encode()).hexdigest())
    return sorted(ranked[0::2]), sorted(ranked[1::2])


def tune(
    qrels: dict[str, dict[str, int]],
    collected: dict[str, list[Scored]],
    *,
    weights=WEIGHTS,
    depths=DEPTHS,
    normalizations=NORMALIZATIONS,
    harmless_up_to: float = 0.0,
    margin: float = 0.0,
) -> tuple[BlendConfig, list[dict]]:
    """The chosen setting (see the module's docstring and :func:`pick`), and every setting's
    figures (best first)."""
    deepest = max((len(entries) for entries in collected.values()), default=0)
    choosing, confirming = halves(qrels)
    hybrid = per_query(qrels, {qid: [e.parent_id for e in entries] for qid, entries in collected.items()})
    grid = []
    for normalization in normalizations:
        for depth in sorted({min(d, deepest) for d in depths if d <= deepest} or {deepest}):
            for weight in weights:
                config = BlendConfig(weight=weight, depth=depth, normalization=normalization)
                rankings = {qid: replay(entries, config) for qid, entries in collected.items()}
                metrics = evaluate(qrels, rankings)
                scores = per_query(qrels, rankings)
                chosen_gains = [scores[q] - hybrid[q] for q in choosing]
                confirmed_gains = [scores[q] - hybrid[q] for q in confirming]
                grid.append(
                    {
                        **asdict(config),
                        "ndcg@10": round(metrics["ndcg@10"], 4),
                        "recall@100": round(metrics["recall@100"], 4),
                        "gain_choosing": round(float(np.mean(chosen_gains)) if chosen_gains else 0.0, 4),
                        "gain_confirming": round(float(np.mean(confirmed_gains)) if confirmed_gains else 0.0, 4),
                        "gain_confirming_lower": round(gain_lower_bound(confirmed_gains), 4) if weight > 0 else 0.0,
                    }
                )
    grid.sort(key=lambda row: (-row["ndcg@10"], -row["weight"], row["depth"]))
    best = pick(grid, harmless_up_to=harmless_up_to, margin=margin)
    return BlendConfig(weight=best["weight"], depth=best["depth"], normalization=best["normalization"]), grid


def pick(grid: list[dict], *, harmless_up_to: float = 0.0, margin: float = 0.0) -> dict:
    """The setting the rule keeps (pure).

    By default (judged queries): the best mean gain on the choosing half (ties: the smaller
    weight), kept when the confirming half's lower bound of its gain is above 0, else weight 0.
    With ``harmless_up_to`` > 0 (pseudo-queries, which the first stage already answers, so a
    good model can mostly only tie there): a weight up to it needs only to do no harm -- kept
    when its lower bound is above ``-margin``, ties going to the larger weight, then to minmax
    (rank normalisation lets any say swap neighbours: with random scores it cost about 3x more),
    then to the smaller depth (fewer pairs scored, fewer moved); a larger weight still needs a
    confirmed gain."""

    def harmless(row: dict) -> bool:
        return 0.0 < row["weight"] <= harmless_up_to

    def preference(row: dict) -> tuple:
        if harmless(row):
            return (row["gain_choosing"], row["weight"], row["normalization"] == "minmax", -row["depth"])
        return (row["gain_choosing"], -row["weight"], False, 0)

    candidate = max(grid, key=preference)
    floor = -margin if harmless(candidate) else 0.0
    if candidate["weight"] > 0 and candidate["gain_confirming_lower"] > floor:
        return candidate
    return next(row for row in grid if row["weight"] == 0)


def blend_verdict(
    qrels: dict[str, dict[str, int]], collected: dict[str, list[Scored]], best: BlendConfig, default: BlendConfig
) -> dict:
    """What a choice tells the serving policy (pure), on judged queries and pseudo-queries alike.

    ``confirmed``: it kept a blend (a gain confirmed out of sample, or on pseudo-queries a light
    one shown harmless). Otherwise the default blend (``RRS_RERANK_DEFAULT_*``, what a model
    nothing confirmed is served) is replayed on every query: ``harmful`` when the one-sided 95%
    upper bound of its gain is below 0 (the model is shown to hurt here: weight 0 serves), else
    ``inconclusive``: the queries showed neither a gain nor harm, so they say nothing the default
    does not already assume, and the policy falls through to its next source (``service/blend.py``'s
    ``read_calibration``). Without this, a model whose gain 81 held-out queries could not confirm
    was served weight 0 on SciFact, where the default blend gave it +0.017 on test; and pseudo-queries
    the first stage already answers (nDCG@10 0.99) refused every blend of the in-domain model there."""
    if best.weight > 0:
        return {"verdict": "confirmed"}
    hybrid = per_query(qrels, {qid: [e.parent_id for e in entries] for qid, entries in collected.items()})
    scores = per_query(qrels, {qid: replay(entries, default) for qid, entries in collected.items()})
    gains = [scores[qid] - hybrid[qid] for qid in collected if qid in qrels]
    upper = -gain_lower_bound([-gain for gain in gains])
    return {
        "verdict": "harmful" if upper < 0 else "inconclusive",
        "default_blend": {
            **asdict(default),
            "gain": round(float(np.mean(gains)) if gains else 0.0, 4),
            "gain_upper": round(upper, 4),
            "queries": len(gains),
        },
    }


def verdict_line(facts: dict, inconclusive_serves: str) -> str:
    """What :func:`blend_verdict`'s verdict in ``facts`` means for serving, in one line (pure)."""
    verdict, default = facts.get("verdict"), facts.get("default_blend", {})
    if verdict == "confirmed":
        return "confirmed: the service serves it on this index"
    if verdict == "harmful":
        return f"harmful: even the default blend loses here (gain {default.get('gain')}), so weight 0 serves"
    return (
        f"inconclusive (the default blend's gain {default.get('gain')}, upper bound {default.get('gain_upper')}): "
        + inconclusive_serves
    )


def hybrid_alone(qrels: dict[str, dict[str, int]], collected: dict[str, list[Scored]]) -> float:
    """nDCG@10 of the fused order itself (weight 0 over the whole window)."""
    return evaluate(qrels, {qid: [e.parent_id for e in entries] for qid, entries in collected.items()})["ndcg@10"]


def choose(
    qrels: dict[str, dict[str, int]],
    collected: dict[str, list[Scored]],
    chosen_on: dict,
    *,
    harmless_up_to: float = 0.0,
    margin: float = 0.0,
    default: BlendConfig | None = None,
) -> tuple[BlendConfig, dict]:
    """The best setting and the facts stored with it (``rrs_rerank.json``, or a corpus
    calibration's file); with ``default``, also :func:`blend_verdict`'s."""
    best, grid = tune(qrels, collected, harmless_up_to=harmless_up_to, margin=margin)
    deepest = max(row["depth"] for row in grid)
    facts = {
        "chosen_on": {**chosen_on, "metric": "ndcg@10"},
        "hybrid_alone": round(hybrid_alone(qrels, collected), 4),
        "plain_rerank": next(
            row["ndcg@10"]
            for row in grid
            if row["weight"] == 1.0 and row["depth"] == deepest and row["normalization"] == "minmax"
        ),
        "best": grid[0],
        "chosen_gain": next(
            row
            for row in grid
            if (row["weight"], row["depth"], row["normalization"]) == (best.weight, best.depth, best.normalization)
        ),
        "rule": f"the best mean gain over hybrid on half of the queries, kept when the other half confirms it "
        f"(one-sided {CONFIDENCE:.0%} bootstrap lower bound of its gain there > 0"
        + (f"; up to weight {harmless_up_to:g}, > {-margin:g}: no harm" if harmless_up_to else "")
        + "); else weight 0 "
        "(the hybrid order, no cross-encoder)",
        "grid": grid,
    }
    if default is not None:
        facts.update(blend_verdict(qrels, collected, best, default))
    return best, facts
