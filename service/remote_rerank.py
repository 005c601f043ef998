"""A reranker behind an HTTP endpoint that speaks text-embeddings-inference's ``/rerank``.

With ``RRS_RERANKER_URL`` the search front end loads no cross-encoder: it sends each
request's (query, passages) to a pool of GPU rerankers -- ``rrs serve --role reranker`` or
Hugging Face's text-embeddings-inference itself -- over a pooled HTTP connection, within the
request's rerank budget. Every failure (unreachable, slow, overloaded, a malformed answer) is
a :class:`~core.errors.RerankError`, so the search degrades to the fused order with a reason.

Example::

    reranker = RemoteReranker("http://gpu-pool:8080", pool_size=8)
    scores = reranker.rerank("what is bm25", ["BM25 is ...", "Paris is ..."], budget_s=1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import requests
from requests.adapters import HTTPAdapter

from rrsearch.core.errors import InputTooLong, RerankError, RerankerUnavailable, RerankOverloaded, RerankTimeout
from rrsearch.service.blend import BlendConfig


class RemoteReranker:
    """Scores pairs on a ``/rerank`` server; the same face as the in-process reranker."""

    backend = "remote"

    def __init__(self, url: str, *, pool_size: int = 8, api_key: str | None = None, probe_timeout_s: float = 2.0):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.probe_timeout_s = probe_timeout_s
        info = self._info()
        self.name = info.get("model_id") or self.url
        calibration = info.get("calibration")  # our own pool sends the model folder's setting
        calibration = dict(calibration) if isinstance(calibration, dict) else None
        self.calibration_index: str | None = calibration.pop("index", None) if calibration else None
        self.calibration = BlendConfig(**calibration) if calibration else None

    def _info(self) -> dict:
        """What the server says it serves (``GET /info``, as TEI answers it); {} when it says nothing."""
        try:
            response = self.session.get(f"{self.url}/info", timeout=self.probe_timeout_s)
            body = response.json() if response.ok else {}
            return body if isinstance(body, dict) else {}
        except (requests.RequestException, ValueError):
            return {}

    def problem(self) -> str | None:
        """Why the pool cannot rerank right now, or None (``GET /health``; readiness reports it)."""
        try:
            response = self.session.get(f"{self.url}/health", timeout=self.probe_timeout_s)
        except requests.RequestException as exc:
            return f"remote reranker {self.url} unreachable ({exc.__class__.__name__})"
        return None if response.ok else f"remote reranker {self.url} unhealthy (status {response.status_code})"

    @property
    def queued_pairs(self) -> int:
        return 0  # the pool keeps its own queue

    def rerank_top(self, query: str, passages: Sequence[str], *, budget_s: float, concurrent: int = 1) -> list[float]:
        """All of them: the pool plans its own load (and sheds with a 503 the caller degrades on)."""
        return self.rank(query, passages, budget_s=budget_s)

    def rerank(self, query: str, passages: Sequence[str], *, budget_s: float, raw: bool = False) -> list[float]:
        """Scores of ``passages`` in input order, within ``budget_s`` seconds."""
        return self.rank(query, passages, budget_s=budget_s, raw=raw)

    def rank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        budget_s: float,
        raw: bool = False,
        truncate: bool = True,
        direction: str = "right",
    ) -> list[float]:
        """The /rerank options passed on to the pool as they came."""
        if not texts:
            return []
        body = {
            "query": query,
            "texts": list(texts),
            "truncate": truncate,
            "raw_scores": raw,
            "truncation_direction": direction.capitalize(),
        }
        try:
            response = self.session.post(f"{self.url}/rerank", json=body, timeout=max(budget_s, 0.001))
        except requests.Timeout as exc:
            raise RerankTimeout(f"remote reranker took longer than {budget_s * 1000:.0f} ms") from exc
        except requests.RequestException as exc:
            raise RerankerUnavailable(f"remote reranker {self.url} unreachable ({exc.__class__.__name__})") from exc
        if response.status_code in (429, 503):
            raise RerankOverloaded(f"remote reranker busy (status {response.status_code})")
        if response.status_code == 413:
            raise InputTooLong(_message(response), field="texts")
        if not response.ok:
            raise RerankError(f"remote reranker answered {response.status_code}")
        return scores_in_input_order(response, len(texts))

    def close(self) -> None:
        self.session.close()


def _message(response) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("error") or body)
    except ValueError:
        return response.text[:200]


def scores_in_input_order(response, count: int) -> list[float]:
    """``[{index, score}, ...]`` (sorted by score) back into one score per input, in order."""
    try:
        ranks = response.json()
        scores: list[float | None] = [None] * count
        for rank in ranks:
            scores[int(rank["index"])] = float(rank["score"])
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RerankError(f"remote reranker sent an answer that is not a rank list ({exc})") from exc
    scored = [score for score in scores if score is not None]
    if len(scored) != count:
        raise RerankError("remote reranker left some texts unscored")
    return scored
