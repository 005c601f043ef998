"""``POST /embed``: the bi-encoder on its own, as text-embeddings-inference serves it.

The request is TEI's: ``inputs`` (a string or a list of strings), ``normalize`` (default true),
``truncate`` (default false, as ``/rerank``), ``truncation_direction`` (``Right`` keeps a long
text's start, ``Left`` its end), ``prompt_name`` (``query`` or ``passage``: our query and passage
prompts, see service/embed.py) and ``dimensions`` (only the model's own). The answer is TEI's:
a JSON array of vectors, one per input in input order -- ``[[...]]`` for a single string too.

``POST /`` is TEI's root route, where TEI serves its model's task and where the clients that
take a TEI URL send their requests (huggingface_hub's ``InferenceClient(url).feature_extraction``,
so Haystack's ``HuggingFaceAPITextEmbedder`` and ``HuggingFaceAPIDocumentEmbedder`` with
``api_type="text_embeddings_inference"``): a body with ``inputs`` is embedded, one with
``query`` (TEI's rerank request) is ranked as ``/rerank`` ranks it.

Limits and statuses are TEI's (up to 1.8, where validation errors were 413; 1.9 made them 422)
and the ones ``/rerank`` keeps: at most ``RRS_RERANK_API_MAX_TEXTS`` inputs (413), a body of at
most ``RRS_RERANK_API_MAX_BYTES`` (413), an input longer than the model takes without
``truncate`` (413 ``input_too_long``), an empty input or list (400). Errors are the service's
one shape (``{"error", "message", "field"}``) plus TEI's ``error_type`` (``empty``,
``validation``, ...), and the message again in ``X-Error-Message``, the header huggingface_hub
shows in its exceptions. Every answer carries ``Server-Timing: embed;dur=<ms>``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from werkzeug.exceptions import RequestEntityTooLarge

from rrsearch.service.http.errors import ApiError, answered_as_api_errors, validation_error
from rrsearch.service.http.ranking import rerank
from rrsearch.service.http.served import require_served

embedding = Blueprint("embedding", __name__)

# TEI's ErrorType for our statuses (router/src/http/server.rs maps them the other way round).
TEI_ERROR_TYPES = {400: "validation", 413: "validation", 422: "validation", 429: "overloaded", 503: "unhealthy"}


class TeiError(ApiError):
    """An :class:`ApiError` whose TEI ``error_type`` is not the one its status implies."""

    def __init__(self, *args, error_type: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.error_type = error_type


class EmbedRequest(BaseModel):
    """``POST /embed``: text-embeddings-inference's request."""

    model_config = ConfigDict(extra="forbid")

    inputs: str | list[str] = Field(
        description="A text, or a list of texts (at most RRS_RERANK_API_MAX_TEXTS); each embedded as given."
    )
    normalize: bool = Field(
        default=True,
        description="Unit-length vectors. False: the model's own output (a model ending in a Normalize "
        "module, as all-MiniLM-L6-v2 does, gives unit vectors either way).",
    )
    truncate: bool | None = Field(
        default=None,
        description="Cut inputs longer than the model takes; default false (as /rerank, and TEI up to 1.8). "
        "False and too long: 413.",
    )
    truncation_direction: Literal["Right", "Left", "right", "left"] = Field(
        default="Right", description="Which end of a long input is cut (with truncate): Right keeps its start."
    )
    prompt_name: Literal["query", "passage"] | None = Field(
        default=None,
        description="query: prefix RRS_QUERY_PROMPT (what /search embeds a query with); passage: "
        "RRS_PASSAGE_PROMPT (what rrs ingest embeds a passage with); null: the text as given.",
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Only the model's own dimension (or null): vectors are not cut."
    )

    @field_validator("inputs", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        """Clear words for what TEI refuses too: an empty text or list, token ids, other types."""
        if isinstance(value, list):
            if not value:
                raise PydanticCustomError("empty_input", "the list is empty: give at least one text")
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise PydanticCustomError("inputs_type", f"item {index} is not a string (token ids are not taken)")
                if not item:
                    raise PydanticCustomError("empty_input", f"item {index} is an empty text")
        elif not isinstance(value, str):
            raise PydanticCustomError("inputs_type", "give a string or a list of strings (token ids are not taken)")
        elif not value:
            raise PydanticCustomError("empty_input", "the text is empty")
        return value

    @property
    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else self.inputs


def _body() -> bytes:
    """The body, within the ranking routes' size limit (texts are big)."""
    limit = current_app.extensions["rrs"]["settings"].rerank_api_max_bytes
    request.max_content_length = limit
    try:
        return request.get_data() or b""
    except RequestEntityTooLarge as exc:
        raise ApiError(413, "body_too_large", f"request body is larger than {limit} bytes", "body") from exc


def _parse() -> EmbedRequest:
    try:
        return EmbedRequest.model_validate_json(_body(), strict=True)
    except ValidationError as exc:
        error = validation_error(exc)
        if exc.errors()[0]["type"] == "empty_input":
            raise TeiError(error.status, error.error, error.message, error.field, error_type="empty") from exc
        raise error from exc


@embedding.post("/embed")
def embed():
    require_served("embed")
    body = _parse()
    state = current_app.extensions["rrs"]
    settings, embedder = state["settings"], state["embedder"]
    texts = body.texts
    started = time.perf_counter()
    with answered_as_api_errors(settings.retry_after_s):
        if len(texts) > settings.rerank_api_max_texts:
            raise ApiError(
                413,
                "batch_too_large",
                f"batch size {len(texts)} > maximum allowed batch size {settings.rerank_api_max_texts} "
                f"(RRS_RERANK_API_MAX_TEXTS)",
                "inputs",
            )
        if body.dimensions is not None and body.dimensions != embedder.dims:
            raise ApiError(
                400,
                "invalid_request",
                f"dimensions: {embedder.name!r} makes {embedder.dims}-dimensional vectors and this server "
                f"does not cut them; send {embedder.dims} or leave dimensions out",
                "dimensions",
            )
        vectors = embedder.embed(
            texts,
            normalize=body.normalize,
            truncate=bool(body.truncate),
            direction=body.truncation_direction.lower(),
            prompt_name=body.prompt_name,
        )
    seconds = time.perf_counter() - started
    state["metrics"].stage_seconds.labels(stage="embed").observe(seconds)
    return jsonify(vectors.tolist()), {"Server-Timing": f"embed;dur={seconds * 1000:.2f}"}


@embedding.post("/")
def tei_root():
    """TEI's root route: an embed request (``inputs``) or a rerank request (``query``)."""
    try:
        data = json.loads(_body())
    except ValueError:
        data = None  # /embed's parser says what is wrong with it
    if isinstance(data, dict) and "inputs" not in data and "query" in data:
        require_served("rerank")
        return rerank()
    return embed()


@embedding.errorhandler(ApiError)
def _tei_error(exc: ApiError):
    """The service's error body plus TEI's ``error_type``; the message also in ``X-Error-Message``."""
    body: dict[str, Any] = {"error": exc.error, "message": exc.message, "field": exc.field}
    error_type = getattr(exc, "error_type", None) or TEI_ERROR_TYPES.get(exc.status)
    if error_type:
        body["error_type"] = error_type
    response = jsonify(body)
    response.status_code = exc.status
    response.headers.update(exc.headers)
    response.headers["X-Error-Message"] = " ".join(exc.message.encode("ascii", "replace").decode().split())
    return response
