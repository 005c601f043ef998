"""Blending: a reranked candidate's final score mixes the cross-encoder's and the first stage's.

Plain reranking replaces the first-stage order outright, so a cross-encoder weaker than the
retrieval it reranks (or out of its domain) makes results worse. Blending keeps part of
the first stage: both scores are normalised over the reranked window (min-max, or by rank)
and mixed with ``weight`` (the cross-encoder's share; 1 = plain rerank, 0 = first stage).
The rerank ``depth`` (how many fused candidates the cross-encoder sees) matters as much.

Each reranker carries its calibrated setting in a small JSON file beside the model,
``rrs_rerank.json``, written by ``rrs eval --tune-rerank`` (and by ``rrs train-reranker``),
chosen on a split the caller names, with the alias its judged queries searched (the serving
policy applies it there only); a request may override it.

    >>> blend([3.0, 2.0, 1.0], [0.1, 0.9, 0.5], weight=0.5)
    [0.5, 0.75, 0.25]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

CALIBRATION_FILE = "rrs_rerank.json"
TRAINING_FACTS = "training.json"  # written by rrs train-reranker; its trained queries: evaluation/offline.py
Normalization = Literal["minmax", "rank"]


@dataclass(frozen=True)
class BlendConfig:
    """How a reranker's scores are used: its share, how deep, and how scores are normalised."""

    weight: float = 1.0
    depth: int | None = None  # None: every fused candidate the request asks for
    normalization: Normalization = "minmax"

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")
        if self.depth is not None and self.depth < 1:
            raise ValueError(f"depth must be positive, got {self.depth}")
        if self.normalization not in ("minmax", "rank"):
            raise ValueError(f"normalization must be minmax or rank, got {self.normalization!r}")


def normalise(scores: Sequence[float], method: Normalization = "minmax") -> list[float]:
    """Scores mapped to [0, 1] over the window: min-max, or by rank (best 1, worst 0)."""
    n = len(scores)
    if n == 0:
        return []
    if method == "rank":
        if n == 1:
            return [1.0]
        order = sorted(range(n), key=lambda i: -scores[i])
        ranks = [0] * n
        for position, i in enumerate(order):
            ranks[i] = position
        return [1.0 - rank / (n - 1) for rank in ranks]
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * n
    return [(score - low) / (high - low) for score in scores]


def blend(
    first_stage: Sequence[float], rerank: Sequence[float], *, weight: float, normalization: Normalization = "minmax"
) -> list[float]:
    """``weight`` * norm(rerank) + (1 - ``weight``) * norm(first stage), per candidate."""
    if len(first_stage) != len(rerank):
        raise ValueError(f"{len(first_stage)} first-stage scores for {len(rerank)} rerank scores")
    fused, cross = normalise(first_stage, normalization), normalise(rerank, normalization)
    return [weight * c + (1.0 - weight) * f for f, c in zip(fused, cross)]


def load_calibration(model_dir: str | Path) -> BlendConfig | None:
    """The setting a model folder carries (``rrs_rerank.json``), or None when it has none."""
    return read_calibration(Path(model_dir) / CALIBRATION_FILE)


def calibration_index(model_dir: str | Path) -> str | None:
    """The alias whose judged queries chose the model folder's setting, or None (no file, or one
    written before the alias was recorded)."""
    path = Path(model_dir) / CALIBRATION_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("index") if path.is_file() else None


INCONCLUSIVE = "inconclusive"  # a judged check that showed neither a gain nor harm (evaluation/tuning.py)


def read_calibration(path: Path) -> BlendConfig | None:
    """The ``chosen`` setting of a calibration file, or None when there is no such file or its
    judged queries were inconclusive (they then say nothing: the policy's next source serves)."""
    if not path.is_file():
        return None
    facts = json.loads(path.read_text(encoding="utf-8"))
    if facts.get("verdict") == INCONCLUSIVE:
        return None
    chosen = facts.get("chosen", {})
    return BlendConfig(
        weight=float(chosen.get("weight", 1.0)),
        depth=chosen.get("depth"),
        normalization=chosen.get("normalization", "minmax"),
    )


def write_calibration(model_dir: str | Path, config: BlendConfig, facts: dict, *, index: str) -> Path:
    """Store ``config`` (and how it was chosen) beside the model, with ``index``: the alias whose
    judged queries confirmed it, the only index the serving policy applies it to."""
    return write_calibration_file(Path(model_dir) / CALIBRATION_FILE, config, {**facts, "index": index})


def write_calibration_file(path: Path, config: BlendConfig, facts: dict) -> Path:
    """Store ``config`` and how it was chosen in ``path`` (written whole, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"chosen": asdict(config), **facts}, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path
