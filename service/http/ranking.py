"""``POST /rerank``: the cross-encoder on its own, as text-embeddings-inference serves it.

The second use of Retrieve & Re-Rank: rank a small set of texts for a query, no retrieval
(the paragraphs of one document, the hits of another system). The request is TEI's
(``query``, ``texts``, ``raw_scores``, ``return_text``, ``truncate``, ``truncation_direction``,
answered with ``[{index, score, text?}]`` best first) or Cohere's (``documents``, ``top_n``,
answered with ``{"results": [{index, relevance_score, document?}]}``), so frameworks that
already speak either (Haystack, LangChain, LlamaIndex) work unchanged. Scoring goes through
the same reranker, micro-batcher, time budget, auth and metrics as ``/search``.

Every answer carries ``Server-Timing: rerank;dur=<ms>``: the time spent scoring, so a caller
(the search front end's remote reranker, a benchmark) can tell transport from model time.
"""

from __future__ import annotations

import time
import uuid

from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from rrsearch.core.errors import RerankerUnavailable
from rrsearch.service.http.errors import answered_as_api_errors, validation_error
from rrsearch.service.schemas import CohereDocument, CohereRerankResponse, CohereResult, Rank, RerankRequest, check_rerank_limits

ranking = Blueprint("ranking", __name__)


@ranking.post("/rerank")
@ranking.post("/v1/rerank")  # where Cohere clients send it
def rerank():
    state = current_app.extensions["rrs"]
    settings, reranker = state["settings"], state["reranker"]
    request.max_content_length = settings.rerank_api_max_bytes  # texts are bigger than a search request
    try:
        body = RerankRequest.model_validate_json(request.get_data() or b"", strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    started = time.perf_counter()
    with answered_as_api_errors(settings.retry_after_s):
        check_rerank_limits(body, settings)
        if reranker is None:
            raise RerankerUnavailable(state["reranker_problem"] or "the rerank stage is disabled (RRS_RERANK_ENABLED)")
        scores = reranker.rank(body.query, body.items, budget_s=settings.rerank_timeout_ms / 1000.0,
                               raw=body.raw_scores, truncate=body.should_truncate,
                               direction=body.truncation_direction.lower())
    seconds = time.perf_counter() - started
    state["metrics"].stage_seconds.labels(stage="rerank").observe(seconds)
    timing = {"Server-Timing": f"rerank;dur={seconds * 1000:.2f}"}
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep input order
    if body.cohere:
        chosen = order[: body.top_n] if body.top_n else order
        results = [CohereResult(index=i, relevance_score=scores[i],
                                document=CohereDocument(text=body.items[i]) if body.return_documents else None)
                   for i in chosen]
        answer = CohereRerankResponse(id=uuid.uuid4().hex, results=results,
                                      meta={"model": reranker.name, "billed_units": {"search_units": 0}})
        return jsonify(answer.model_dump(exclude_none=True)), timing
    if body.top_n:
        order = order[: body.top_n]
    ranks = [Rank(index=i, score=scores[i], text=body.items[i] if body.return_text else None) for i in order]
    return jsonify([rank.model_dump(exclude_none=True) for rank in ranks]), timing


