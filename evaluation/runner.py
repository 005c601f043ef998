"""Run every judged query through the service's own search pipeline, per configuration.

A configuration is a retrieval mode plus fusion (``bm25``, ``knn``, ``hybrid_rrf``,
``hybrid_linear``), each with and without the cross-encoder when one is loaded. The index
is built once (through the real ingest code) and reused; query embeddings are cached by
the pipeline, so only the first configuration pays for encoding.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from rrsearch.evaluation.dataset import Dataset
from rrsearch.evaluation.metrics import evaluate, latency_summary
from rrsearch.service.schemas import Fusion, SearchRequest

CONFIGS = ("bm25", "knn", "hybrid_rrf", "hybrid_linear")


@dataclass(frozen=True)
class FusionParams:
    rrf_k: int = 60
    linear_weight: float = 0.5
    normalization: str = "minmax"


def request_for(
    config: str, query: str, *, rerank: bool, candidates: int, index: str, fusion: FusionParams
) -> SearchRequest:
    """The search request one configuration sends for one query (pure)."""
    if config not in CONFIGS:
        raise ValueError(f"unknown configuration {config!r}; choose from {', '.join(CONFIGS)}")
    mode = "hybrid" if config.startswith("hybrid") else config
    fusion_spec = (
        Fusion(method="linear", weight=fusion.linear_weight, normalization=fusion.normalization)
        if config == "hybrid_linear"
        else Fusion(method="rrf", k=fusion.rrf_k)
    )
    return SearchRequest(
        query=query,
        mode=mode,
        fusion=fusion_spec,
        rerank=rerank,
        candidates=candidates,
        top_k=candidates,
        collapse=True,
        highlight=False,
        index=index,
    )


def run_configuration(
    pipeline,
    dataset: Dataset,
    config: str,
    *,
    rerank: bool,
    candidates: int,
    index: str,
    fusion: FusionParams,
    progress=None,
) -> dict:
    """Metrics and latency of one configuration over every judged query."""
    rankings: dict[str, list[str]] = {}
    latencies: list[float] = []
    degraded: dict[str, int] = {}
    blends: Counter = Counter()  # (source, weight, depth, normalization, detail) the serving policy used
    for query_id, text in dataset.queries.items():
        request = request_for(config, text, rerank=rerank, candidates=candidates, index=index, fusion=fusion)
        started = time.perf_counter()
        response = pipeline.search(request)
        latencies.append((time.perf_counter() - started) * 1000.0)
        rankings[query_id] = [hit.parent_id for hit in response.hits]
        if response.degraded:
            degraded[response.degraded] = degraded.get(response.degraded, 0) + 1
        if response.blend is not None:
            b = response.blend
            blends[(b.source, b.weight, b.depth, b.normalization, b.detail)] += 1
        if progress is not None:
            progress.update(1)
    result = {
        "config": config,
        "rerank": rerank,
        "metrics": {name: round(value, 4) for name, value in evaluate(dataset.qrels, rankings).items()},
        "latency_ms": latency_summary(latencies),
        "queries": len(dataset.queries),
    }
    if degraded:
        result["degraded"] = degraded
    if blends:  # which blend served, and who chose it (service/blend_policy.py): the most common one
        (source, weight, depth, normalization, detail), count = blends.most_common(1)[0]
        result["blend"] = {
            "source": source,
            "weight": weight,
            "depth": depth,
            "normalization": normalization,
            "detail": detail,
            "queries": count,
        }
    return result


def warm_query_embeddings(pipeline, dataset: Dataset, *, index: str) -> dict[str, float]:
    """Embed every query once (the pipeline caches them), so that the configurations'
    latencies compare search work, not which one happened to pay for encoding first.
    Returns the embedding latency summary."""
    times = []
    for text in dataset.queries.values():
        request = SearchRequest(
            query=text, mode="knn", rerank=False, top_k=1, candidates=1, highlight=False, index=index
        )
        times.append(pipeline.search(request).timings_ms.embed_query)
    return latency_summary(times)


def run_all(
    pipeline,
    dataset: Dataset,
    *,
    configs: tuple[str, ...] = CONFIGS,
    with_rerank: bool,
    candidates: int,
    index: str,
    fusion: FusionParams,
    show_progress: bool = True,
) -> list[dict]:
    """Every configuration, without and (when a reranker is loaded) with the cross-encoder."""
    from tqdm import tqdm

    plan = [(config, rerank) for config in configs for rerank in ((False, True) if with_rerank else (False,))]
    results = []
    with tqdm(total=len(plan) * len(dataset.queries), desc="queries", unit="q", disable=not show_progress) as bar:
        for config, rerank in plan:
            bar.set_postfix_str(f"{config}{' +rerank' if rerank else ''}")
            results.append(
                run_configuration(
                    pipeline,
                    dataset,
                    config,
                    rerank=rerank,
                    candidates=candidates,
                    index=index,
                    fusion=fusion,
                    progress=bar,
                )
            )
    return results
