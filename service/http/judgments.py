"""``POST /judgments``: the marks a person makes on the search page, stored for training and evaluation.

The body is one mark ``{"query", "id" | "paragraph", "grade", "index"?}`` or a batch
``{"judgments": [mark, ...]}`` (stored all or none). ``id`` is a document id of the index
(a hit's ``parent_id``: qrels judge documents, not passages); ``paragraph`` is the text of
a paragraph pasted into the rerank tab, which is not in the index (its id is derived from
the text). The route shares ``/search``'s API-key check, body limit, validation, error
shapes (service/http/errors.py), request ids and metrics; the store is
service/judgments.py.

Answers: 200 with what was stored; 400 for a bad body (unknown grade, blank query, neither
or both of id/paragraph, a limit); 404 ``document_not_found`` when the index lacks an
``id`` (``field`` names it), ``index_not_found`` for an unknown alias; 503 with
``Retry-After`` when Elasticsearch is down.
"""

from __future__ import annotations

import hashlib
import json
import logging

from flask import Blueprint, current_app, g, jsonify, request
from pydantic import ValidationError

from rrsearch.service.http.auth import presented_key
from rrsearch.service.http.errors import ApiError, answered_as_api_errors, validation_error
from rrsearch.service.judgments import Mark, UnknownDocuments
from rrsearch.service.schemas import JudgmentBatch, JudgmentRequest, JudgmentsResponse, check_judgment_limits

log = logging.getLogger("rrs.service")
judgments = Blueprint("judgments", __name__)


def client_identity(headers, remote_addr: str | None, auth_on: bool) -> str:
    """Who marked: ``key:<sha256 prefix>`` of the API key the auth layer accepted (never the key),
    else the client address."""
    key = presented_key(headers) if auth_on else None
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return remote_addr or "unknown"


def parse_marks(raw: bytes) -> tuple[list[JudgmentRequest], bool]:
    """The marks of a body and whether it was a batch; a 400 naming the field otherwise."""
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        data = None  # let the model say what is wrong with it (json_invalid)
    model = JudgmentBatch if isinstance(data, dict) and "judgments" in data else JudgmentRequest
    try:
        parsed = model.model_validate_json(raw or b"", strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    return (parsed.judgments, True) if isinstance(parsed, JudgmentBatch) else ([parsed], False)


@judgments.post("/judgments")
def post_judgments():
    state = current_app.extensions["rrs"]
    settings = state["settings"]
    marks, batch = parse_marks(request.get_data())
    with answered_as_api_errors(settings.retry_after_s):
        check_judgment_limits(marks, settings, batch=batch)
    aliases = {mark.index or settings.index_alias for mark in marks}
    for number, mark in enumerate(marks):
        if mark.index is not None and mark.index not in state["allowed_indexes"]:
            raise ApiError(
                404,
                "index_not_found",
                f"unknown index {mark.index!r}",
                f"judgments.{number}.index" if batch else "index",
            )
    if len(aliases) > 1:
        raise ApiError(400, "invalid_request", "a batch judges one index: send one request per index", "judgments")
    alias = aliases.pop()
    client = client_identity(request.headers, request.remote_addr, bool(state["keys"]))
    with answered_as_api_errors(settings.retry_after_s):
        try:
            stored = state["judgments"].record(
                [Mark(query=m.query, grade=m.grade, id=m.id, paragraph=m.paragraph) for m in marks],
                alias=alias,
                client=client,
                request_id=g.request_id,
                batch=batch,
            )
        except UnknownDocuments as exc:
            raise ApiError(404, "document_not_found", str(exc), exc.field) from exc
    log.info("judgments: stored %d mark(s) on %s from %s (request %s)", len(stored), alias, client, g.request_id)
    body = JudgmentsResponse(stored=len(stored), judgments=stored)
    return jsonify(body.model_dump()), 200
