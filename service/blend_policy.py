"""Which blend the rerank stage serves, and why: the serving policy every cross-encoder goes through.

Served plain, a cross-encoder that was never shown to help on the user's data can make results
worse (a SciFact-trained model cost 0.06–0.11 nDCG@10 on other collections; the demo's lowered
its own sample on queries it never saw). So nothing is served plain by default unless
something confirmed it. The blend comes from the first of:

1. ``judgments``: ``rrs_rerank.json`` beside the model, chosen and confirmed on the user's
   judged queries (``rrs train-reranker``, ``rrs eval --tune-rerank``), on the index those
   queries searched (any version of its alias) and no other: a blend confirmed on one corpus
   says nothing of another;
2. ``corpus``: chosen and confirmed without judgments, on pseudo-queries made from the index
   itself (``rrs calibrate``), cached per model and index under ``RRS_HOME/calibrations``; a
   new model or a new index version has none until it is made again, which the service starts
   itself on the first search that meets it (``service/auto_calibration.py``). One that kept no
   blend and showed no harm from the default (``inconclusive``) says nothing: the default serves;
3. ``default``: a nearly neutral blend (``RRS_RERANK_DEFAULT_*``, 0.03/10/minmax), the largest
   that cost at most 0.005 on every collection, fusion and model measured, a reranker scoring at
   random included (``bench/README.md``, "Choosing the default blend").

A request's ``rerank_weight``/``rerank_depth``/``rerank_normalization`` override the policy
(source ``request``). Every response names the source (``blend.source``), as does ``/info``.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from rrsearch.core.indexes import is_version_of
from rrsearch.core.settings import settings_env
from rrsearch.service import auto_calibration
from rrsearch.service.blend import BlendConfig, Normalization, read_calibration

Source = Literal["request", "judgments", "corpus", "default"]
CALIBRATIONS_DIR = "calibrations"


@dataclass(frozen=True)
class ServedBlend:
    """The blend a reranker serves on one index, where it came from, and why."""

    config: BlendConfig
    source: Source
    detail: str


def calibration_path(home: Path, model: str, index_version: str) -> Path:
    """Where the corpus calibration of ``model`` on one concrete index version is cached.

    The name holds both (readably) and a hash of both, so a changed model fingerprint or a
    reindex (a new concrete index) finds no file and falls back until ``rrs calibrate`` runs."""
    digest = hashlib.sha256(f"{model}\n{index_version}".encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}--{index_version}")[:120]
    return Path(home) / CALIBRATIONS_DIR / f"{readable}-{digest}.json"


def resolve(judged: BlendConfig | None, corpus: BlendConfig | None, default: BlendConfig) -> ServedBlend:
    """The policy's choice among what exists (pure): judgments, else corpus, else the default."""
    if judged is not None:
        return ServedBlend(judged, "judgments", "chosen and confirmed on judged queries (rrs_rerank.json)")
    if corpus is not None:
        return ServedBlend(corpus, "corpus", "chosen and confirmed on pseudo-queries from this index (rrs calibrate)")
    return ServedBlend(
        default,
        "default",
        "nothing confirmed this model here: a conservative blend (run rrs calibrate, or train with judgments)",
    )


def default_blend(settings) -> BlendConfig:
    """The conservative blend a model nothing confirmed is served (``RRS_RERANK_DEFAULT_*``)."""
    return BlendConfig(
        weight=settings.rerank_default_weight,
        depth=settings.rerank_default_depth,
        normalization=settings.rerank_default_normalization,
    )


def judged_applies(judged_on: str | None, index_version: str) -> bool:
    """Whether a judged calibration holds on ``index_version`` (pure): it does on any version of
    the alias its judgments searched (a reindex of the same corpus keeps it), on no other index; a
    file that names no alias (written before it was recorded) holds everywhere, as it did then."""
    if judged_on is None:
        return True
    parts = [part for part in index_version.split(",") if part]
    return bool(parts) and all(part == judged_on or is_version_of(judged_on, part) for part in parts)


def for_request(
    served: ServedBlend, weight: float | None, depth: int | None, normalization: Normalization | None
) -> ServedBlend:
    """The policy's blend with whatever the request set on top (pure); any override makes the
    source ``request``."""
    if weight is None and depth is None and normalization is None:
        return served
    config = BlendConfig(
        weight=served.config.weight if weight is None else weight,
        depth=depth or served.config.depth,
        normalization=normalization or served.config.normalization,
    )
    return replace(served, config=config, source="request", detail="set by the request")


class BlendPolicy:
    """The policy for one loaded reranker: its judged calibration, the default, and the corpus
    calibrations in ``RRS_HOME/calibrations``; what it serves is worked out once per index version
    (a default again every ``auto_calibration.RECHECK_S``: its corpus calibration may have landed)."""

    def __init__(self, reranker, settings) -> None:
        self.model = model_identity(reranker)
        self.judged: BlendConfig | None = getattr(reranker, "calibration", None)
        self.judged_on: str | None = getattr(reranker, "calibration_index", None)
        self.default = default_blend(settings)
        self.home = Path(settings.home)
        self.use_corpus = settings.rerank_corpus_calibration
        self.settings = settings
        # a local model (a folder or a hub name) can be calibrated by a child process; a remote pool's cannot
        self.calibrate_as: str | None = (
            (reranker.folder or reranker.name)
            if settings.rerank_auto_calibrate and hasattr(reranker, "folder")
            else None
        )
        self._served: dict[str, tuple[ServedBlend, float]] = {}

    def corpus(self, index_version: str) -> BlendConfig | None:
        if not self.use_corpus or self.model is None:
            return None
        return read_calibration(calibration_path(self.home, self.model, index_version))

    def served(self, index_version: str, alias: str | None = None) -> ServedBlend:
        """The blend for one index version, worked out (and its corpus file read) once per version;
        a search (which names its ``alias``) that would get the default starts the corpus
        calibration when it is missing."""
        now = time.monotonic()
        cached = self._served.get(index_version)
        if cached is not None and (cached[0].source != "default" or now - cached[1] < auto_calibration.RECHECK_S):
            return cached[0]
        judged = self.judged if judged_applies(self.judged_on, index_version) else None
        served = resolve(judged, None if judged else self.corpus(index_version), self.default)
        if self.judged is not None and judged is None:
            served = replace(served, detail=f"{served.detail}; its judged calibration is for index {self.judged_on!r}")
        if served.source == "default":
            served = self._calibrating(served, index_version, alias)
        self._served[index_version] = (served, now)
        return served

    def forget(self, index_version: str) -> None:
        """Work the version's blend out again at its next search (its calibration has just ended)."""
        self._served.pop(index_version, None)

    def _calibrating(self, served: ServedBlend, index_version: str, alias: str | None) -> ServedBlend:
        """The default, with where its corpus calibration stands (started here when it is missing,
        inconclusive when it is there)."""
        if not self.use_corpus or self.model is None or not index_version:
            return served
        path = calibration_path(self.home, self.model, index_version)
        now = auto_calibration.state(path)
        if now == "none" and self.calibrate_as and alias:
            auto_calibration.start(
                path,
                auto_calibration.command(alias, self.calibrate_as),
                {**os.environ, **settings_env(self.settings)},
                on_exit=lambda _status: self.forget(index_version),
            )
            now = auto_calibration.state(path)  # running, or ended when the child could not start
        if now == "done":  # a file that read as no calibration: its queries showed neither a gain nor harm
            note = f"its corpus calibration confirmed no blend and showed no harm from this one ({path})"
        elif now == "running":
            note = f"a corpus calibration for this index is being made (log {auto_calibration.log_path(path)})"
        elif now == "ended":
            note = f"its corpus calibration ended without a result (log {auto_calibration.log_path(path)}; rrs calibrate tries again)"
        else:
            return served
        return replace(served, detail=f"{served.detail}; {note}")


def model_identity(reranker) -> str | None:
    """What a corpus calibration is keyed by: the reranker's content fingerprint where it has
    one (a local folder), else its name (a hub id, or what a remote pool reports)."""
    if reranker is None:
        return None
    return getattr(reranker, "identity", None) or reranker.name
