"""``POST /rerank``: the cross-encoder on its own, as text-embeddings-inference serves it.

The second use of Retrieve & Re-Rank: rank a small set of texts for a query, no retrieval
(the paragraphs of one document, the hits of another system). Three routes, so frameworks
that already speak one of these APIs work unchanged:

* ``/rerank`` and ``/v1/rerank``: TEI's request (``query``, ``texts``, ``raw_scores``,
  ``return_text``, ``truncate``, ``truncation_direction``, answered with
  ``[{index, score, text?}]`` best first; Haystack's ``HuggingFaceTEIRanker``) or Cohere's v1
  (``documents``, ``top_n``, ``return_documents``, answered with
  ``{"id", "results": [{index, relevance_score, document?}], "meta"}``; ``cohere.Client``);
* ``/v2/rerank``: Cohere's v2 (``cohere.ClientV2``): ``model``, ``query``, ``documents`` (strings),
  ``top_n``, ``max_tokens_per_doc`` (each document cut to that many tokens first), answered with
  ``{"id", "results": [{index, relevance_score}], "meta"}`` best first. ``priority`` is accepted
  and not used (requests take turns in the batcher); ``relevant_spans`` only as
  ``{"mode": "disabled"}``: a cross-encoder scores whole pairs and finds no spans.

Scoring goes through the same reranker, micro-batcher, time budget, auth and metrics as
``/search``, and errors through the one table of service/http/errors.py (``{"error",
"message", "field"}``, the same statuses on every route).

Every answer carries ``Server-Timing: rerank;dur=<ms>``: the time spent scoring, so a caller
(the search front end's remote reranker, a benchmark) can tell transport from model time.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rrsearch.core.errors import RerankerUnavailable
from rrsearch.service.http.errors import answered_as_api_errors, validation_error
from rrsearch.service.http.served import require_served
from rrsearch.service.schemas import (
    NOT_BLANK,
    CohereDocument,
    CohereRerankResponse,
    CohereResult,
    Rank,
    RerankRequest,
    check_rerank_limits,
    integral_floats,
    query_not_blank,
)

ranking = Blueprint("ranking", __name__)


@ranking.before_request
def _served() -> None:
    require_served("rerank")  # a pool without the cross-encoder (RRS_POOL_MODELS=embed): 404


# --- Cohere's v2 request and answer (cohere.ClientV2.rerank) ------------------------------


class CohereV2RelevantSpans(BaseModel):
    """Cohere's ``relevant_spans``: only ``disabled`` here (a cross-encoder finds no spans)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["disabled"] = Field(
        description='Only "disabled": a cross-encoder scores whole pairs, it finds no spans.'
    )
    threshold: float | None = None
    max_spans: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _no_spans(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mode") == "enabled":
            raise ValueError("relevant spans are not available: this reranker scores whole (query, document) pairs")
        return integral_floats(data, ("max_spans",))


class CohereV2RerankRequest(BaseModel):
    """``POST /v2/rerank``: Cohere's v2 rerank request (``cohere.ClientV2.rerank``)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="Cohere clients name a model; the served one answers.")
    query: str = Field(
        min_length=1, json_schema_extra={"pattern": NOT_BLANK}, description="The query to rank the documents for."
    )
    documents: list[str] = Field(min_length=1, description="The texts to rank.")
    top_n: int | None = Field(default=None, ge=1, description="Only the best n (default: all).")
    max_tokens_per_doc: int | None = Field(
        default=None,
        ge=1,
        description="Cut each document to this many tokens first (default: only the model's "
        "own limit on the pair applies).",
    )
    relevant_spans: CohereV2RelevantSpans | None = Field(
        default=None, description='Only {"mode": "disabled"}: a cross-encoder finds no spans.'
    )
    priority: int | None = Field(default=None, ge=0, description="Accepted, not used: requests take turns.")

    @model_validator(mode="before")
    @classmethod
    def _integral(cls, data: Any) -> Any:
        return integral_floats(data, ("top_n", "max_tokens_per_doc", "priority"))

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return query_not_blank(value)

    @property
    def items(self) -> list[str]:  # what check_rerank_limits reads
        return self.documents

    @property
    def cohere(self) -> bool:
        return True


class CohereV2Result(BaseModel):
    index: int
    relevance_score: float


class CohereV2RerankResponse(BaseModel):
    """Cohere's v2 answer: ``results`` best first (``top_n`` of them)."""

    id: str
    results: list[CohereV2Result]
    meta: dict[str, Any] = Field(default_factory=dict)


# --- the routes ---------------------------------------------------------------------------


def _parse(model: type[BaseModel]):
    request.max_content_length = current_app.extensions["rrs"]["settings"].rerank_api_max_bytes  # texts are big
    try:
        return model.model_validate_json(request.get_data() or b"", strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def _scores(body, **options) -> tuple[list[float], dict[str, str], Any]:
    """Scores of the body's texts in input order, the Server-Timing header, and the reranker."""
    state = current_app.extensions["rrs"]
    settings, reranker = state["settings"], state["reranker"]
    started = time.perf_counter()
    with answered_as_api_errors(settings.retry_after_s):
        check_rerank_limits(body, settings)
        if reranker is None:
            raise RerankerUnavailable(state["reranker_problem"] or "the rerank stage is disabled (RRS_RERANK_ENABLED)")
        scores = reranker.rank(body.query, body.items, budget_s=settings.rerank_timeout_ms / 1000.0, **options)
    seconds = time.perf_counter() - started
    state["metrics"].stage_seconds.labels(stage="rerank").observe(seconds)
    return scores, {"Server-Timing": f"rerank;dur={seconds * 1000:.2f}"}, reranker


def _best_first(scores: list[float], top_n: int | None) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep input order
    return order[:top_n] if top_n else order


@ranking.post("/rerank")
@ranking.post("/v1/rerank")  # where Cohere's v1 client sends it
def rerank():
    body = _parse(RerankRequest)
    scores, timing, reranker = _scores(
        body, raw=body.raw_scores, truncate=body.should_truncate, direction=body.truncation_direction.lower()
    )
    order = _best_first(scores, body.top_n)
    if body.cohere:
        results = [
            CohereResult(
                index=i,
                relevance_score=scores[i],
                document=CohereDocument(text=body.items[i]) if body.return_documents else None,
            )
            for i in order
        ]
        answer = CohereRerankResponse(
            id=uuid.uuid4().hex, results=results, meta={"model": reranker.name, "billed_units": {"search_units": 0}}
        )
        return jsonify(answer.model_dump(exclude_none=True)), timing
    ranks = [Rank(index=i, score=scores[i], text=body.items[i] if body.return_text else None) for i in order]
    return jsonify([rank.model_dump(exclude_none=True) for rank in ranks]), timing


@ranking.post("/v2/rerank")  # where Cohere's v2 client (cohere.ClientV2) sends it
def rerank_v2():
    body = _parse(CohereV2RerankRequest)
    scores, timing, reranker = _scores(body, truncate=True, max_text_tokens=body.max_tokens_per_doc)
    answer = CohereV2RerankResponse(
        id=uuid.uuid4().hex,
        results=[CohereV2Result(index=i, relevance_score=scores[i]) for i in _best_first(scores, body.top_n)],
        meta={"api_version": {"version": "2"}, "billed_units": {"search_units": 0}, "model": reranker.name},
    )
    return jsonify(answer.model_dump()), timing
