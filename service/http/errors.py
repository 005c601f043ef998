"""Errors at the HTTP edge: the one table that turns an error into a status and a body.

The search pipeline raises errors from ``core/errors.py``; :data:`HTTP_ERRORS` maps each
branch of that tree to a status, an ``error`` code and the message a caller reads. The
caller's mistakes are 4xx; the service's own troubles are 503 with ``Retry-After``.
Elasticsearch client errors that escape the pipeline (a connection refused, a 429, a 5xx)
are the service's trouble too. A test walks every class below :data:`SEARCH_ERRORS` and
checks it resolves to an entry here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from elastic_transport import TransportError
from elasticsearch import ApiError as ElasticsearchApiError
from pydantic import ValidationError

from rrsearch.core.errors import (
    BackendMisconfigured,
    BackendUnavailable,
    IndexMissing,
    IndexModelMismatch,
    InputTooLong,
    InvalidRequest,
    RerankError,
    RetrieversMissing,
    RRSError,
    SearchRejected,
)
from rrsearch.core.es_errors import describe

log = logging.getLogger("rrs.service")

# The branches of the error tree a search can raise (service/pipeline.py, retrieval.py, ...).
SEARCH_ERRORS: tuple[type[RRSError], ...] = (
    InvalidRequest,
    IndexMissing,
    BackendUnavailable,
    IndexModelMismatch,
    RerankError,
)
BACKEND_MESSAGE = "Elasticsearch is unreachable or timed out; retry shortly"
MISCONFIGURED_MESSAGE = (
    "Elasticsearch refuses the service: misconfigured credentials or privileges (or its CA or API version); "
    "retrying will not help until an operator fixes them (the service log names what)"
)
REJECTED_MESSAGE = (
    "the search was refused: a filter value does not fit its field's type (a number or date field given text?)"
)


class ApiError(Exception):
    """An error answered as JSON: ``{"error", "message", "field"}`` with ``status``."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field
        self.headers = headers or {}


@dataclass(frozen=True)
class HttpError:
    """How one branch of the error tree is answered."""

    status: int
    error: str
    message: Callable[[Exception], str] = str
    retry: bool = False  # 503s say when to come back


HTTP_ERRORS: dict[type[RRSError], HttpError] = {
    InvalidRequest: HttpError(400, "invalid_request"),
    # Our words, not Elasticsearch's: its reason names concrete indexes and internals (logged instead).
    SearchRejected: HttpError(400, "invalid_request", lambda _exc: REJECTED_MESSAGE),
    InputTooLong: HttpError(413, "input_too_long"),
    IndexMissing: HttpError(404, "index_not_found"),
    BackendUnavailable: HttpError(503, "search_backend_unavailable", lambda _exc: BACKEND_MESSAGE, retry=True),
    # Ours for good: a 401/403 (or a TLS or version refusal) is not "retry shortly". Details logged.
    BackendMisconfigured: HttpError(
        503, "search_backend_misconfigured", lambda _exc: MISCONFIGURED_MESSAGE, retry=True
    ),
    IndexModelMismatch: HttpError(503, "index_model_mismatch", retry=True),  # ours: serve the right model or reindex
    RetrieversMissing: HttpError(503, "retrievers_missing", retry=True),  # ours: install the plugin or use msearch
    RerankError: HttpError(503, "reranker_unavailable", retry=True),
}


def mapping_for(exc_type: type[BaseException]) -> HttpError | None:
    """The entry of the nearest class in ``exc_type``'s ancestry that has one."""
    for klass in exc_type.__mro__:
        if klass in HTTP_ERRORS:
            return HTTP_ERRORS[klass]
    return None


def to_api_error(exc: Exception, *, retry_after_s: int) -> ApiError | None:
    """The answer to ``exc``, or None when it is not an error the service expects."""
    headers = {"Retry-After": str(retry_after_s)}
    if isinstance(exc, (TransportError, ElasticsearchApiError, ValueError)) and not isinstance(exc, RRSError):
        problem = describe(exc)
        if problem is not None and problem.permanent:
            return ApiError(503, "search_backend_misconfigured", MISCONFIGURED_MESSAGE, headers=headers)
        if isinstance(exc, ValueError):
            return None
        return ApiError(503, "search_backend_unavailable", BACKEND_MESSAGE, headers=headers)
    entry = mapping_for(type(exc))
    if entry is None:
        return None
    return ApiError(
        entry.status,
        entry.error,
        entry.message(exc),
        getattr(exc, "field", None),
        headers=headers if entry.retry else None,
    )


@contextmanager
def answered_as_api_errors(retry_after_s: int):
    """Inside the block, an error this table knows leaves as its ApiError (details logged when
    the caller is not shown them); anything else goes on to the unexpected-error handler."""
    try:
        yield
    except ApiError:
        raise
    except Exception as exc:
        answer = to_api_error(exc, retry_after_s=retry_after_s)
        if answer is None:
            raise
        if answer.status >= 500 or answer.message != str(exc):
            problem = describe(exc)  # what the operator must fix, where it is one of those
            why = problem.message if problem else f"{exc.__class__.__name__}: {exc}"
            log.warning("request failed (%d): %s", answer.status, why)
        raise answer from exc


def validation_error(exc: ValidationError) -> ApiError:
    """A request the models refuse, as a 400 naming the first field at fault."""
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    if loc[:1] == ["filters"]:
        loc = loc[:2]  # filters.<field>; what follows names union members (str, int, RangeFilter, ...)
    field = ".".join(loc) or "body"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = f"unknown field {field!r}"
    elif first["type"] == "json_invalid":
        message = f"body is not valid JSON: {first.get('ctx', {}).get('error', message)}"
    elif first["type"] in ("model_type", "model_attributes_type") and not loc:
        message = "body must be a JSON object"
    elif first["type"] == "missing":
        message = f"{field} is required"
    return ApiError(400, "invalid_request", f"{field}: {message}" if loc else message, field)
