"""Fuse ranked lists from BM25 and kNN into one ranking (pure functions, no I/O).

Two methods, because neither wins everywhere:

* **RRF** (reciprocal rank fusion): ``score(d) = sum over lists of 1 / (k + rank(d))``.
  Uses ranks only, so BM25's unbounded scores and kNN's similarities need no calibration.
* **linear**: normalise each list's scores (min-max or z-score), then
  ``(1 - weight) * bm25 + weight * knn``. A document missing from one list gets that
  list's lowest normalised score (it ranked below everything the list returned).

Ties are broken by the order of first appearance (BM25 before kNN), so results are
deterministic.

Example::

    >>> fused = rrf({"bm25": ["a", "b"], "knn": ["b", "c"]}, k=60)
    >>> [doc for doc, _ in fused]
    ['b', 'a', 'c']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

Normalization = Literal["minmax", "zscore"]


DEFAULT_K = 60  # RRF's usual constant (RRS_RRF_K's default)


def rrf(rankings: Mapping[str, Sequence[str]], k: int = DEFAULT_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of several rankings (best first; ranks start at 1)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores: dict[str, float] = {}
    for ranking in rankings.values():
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    return _sorted(scores)


def normalize(scores: Sequence[float], method: Normalization) -> list[float]:
    """Scores mapped to a common scale: [0, 1] (min-max) or mean 0 / std 1 (z-score).

    A list whose scores are all equal maps to all 1.0 (min-max) or all 0.0 (z-score).
    """
    if not scores:
        return []
    if method == "minmax":
        low, high = min(scores), max(scores)
        if high == low:
            return [1.0] * len(scores)
        return [(s - low) / (high - low) for s in scores]
    if method == "zscore":
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
        if std == 0:
            return [0.0] * len(scores)
        return [(s - mean) / std for s in scores]
    raise ValueError(f"unknown normalization {method!r}; use 'minmax' or 'zscore'")


def linear(
    bm25: Sequence[tuple[str, float]],
    knn: Sequence[tuple[str, float]],
    *,
    weight: float = 0.5,
    method: Normalization = "minmax",
) -> list[tuple[str, float]]:
    """Weighted sum of normalised scores; ``weight`` is kNN's share (0 = BM25 only)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    lists = {"bm25": (bm25, 1.0 - weight), "knn": (knn, weight)}
    order: dict[str, None] = {}
    normalised: dict[str, dict[str, float]] = {}
    for name, (hits, _) in lists.items():
        normalised[name] = dict(zip([doc for doc, _ in hits], normalize([s for _, s in hits], method)))
        order.update(dict.fromkeys(doc for doc, _ in hits))
    floors = {name: min(values.values(), default=0.0) for name, values in normalised.items()}
    fused = {doc: sum(w * normalised[name].get(doc, floors[name]) for name, (_, w) in lists.items()) for doc in order}
    return _sorted(fused)


def fuse(lists: Mapping[str, Sequence[tuple[str, float]]], setting, *, default_k: int) -> list[tuple[str, float]]:
    """The ``bm25`` and ``knn`` lists fused as ``setting`` (a request's ``Fusion``) says: linear
    over normalised scores, or RRF over ranks (``setting.k``, else ``default_k``)."""
    if setting.method == "linear":
        return linear(lists["bm25"], lists["knn"], weight=setting.weight, method=setting.normalization)
    return rrf({name: [doc for doc, _ in ranked] for name, ranked in lists.items()}, k=setting.k or default_k)


def _sorted(scores: dict[str, float]) -> list[tuple[str, float]]:
    """Best first; equal scores keep insertion order (Python's sort is stable)."""
    return sorted(scores.items(), key=lambda item: -item[1])
