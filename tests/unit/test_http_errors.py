"""Every error a search can raise has an HTTP answer, and only the caller's mistakes are 4xx."""

from __future__ import annotations

import pytest
from elastic_transport import ApiResponseMeta, ConnectionError, HttpHeaders

import rrsearch.core.errors as errors

# Importing the modules that raise them registers every subclass there is.
import rrsearch.service.pipeline
import rrsearch.service.rerank  # noqa: F401
from rrsearch.service.http.errors import HTTP_ERRORS, SEARCH_ERRORS, mapping_for, to_api_error

SEARCH_ERROR_CLASSES = sorted({c for root in SEARCH_ERRORS for c in errors.subclasses(root)}, key=lambda c: c.__name__)


@pytest.mark.parametrize("error_class", SEARCH_ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_search_error_has_an_answer(error_class):
    entry = mapping_for(error_class)
    assert entry is not None, f"{error_class.__name__} has no HTTP mapping"
    caller_fault = issubclass(error_class, (errors.InvalidRequest, errors.IndexMissing))
    assert (400 <= entry.status < 500) == caller_fault
    if not caller_fault:  # the service's own trouble: 503 and when to come back, never a 500
        assert entry.status == 503 and entry.retry


def test_the_walk_covers_the_whole_search_tree():
    names = {c.__name__ for c in SEARCH_ERROR_CLASSES}
    assert {
        "LimitError",
        "FilterError",
        "SearchRejected",
        "SearchFailed",
        "ClusterUnavailable",
        "RerankTimeout",
        "QueueFull",
        "IndexModelMismatch",
    } <= names


def test_command_errors_are_not_search_errors():
    """Ingest and training errors never reach HTTP; mapping them would hide a bug."""
    for error_class in errors.subclasses(errors.InputError) + errors.subclasses(errors.OperationFailed):
        assert mapping_for(error_class) is None, error_class.__name__
    assert set(HTTP_ERRORS) <= set(SEARCH_ERROR_CLASSES)


def test_answers_carry_field_message_and_retry_after():
    answer = to_api_error(errors.FilterError("filters.year", "bad year"), retry_after_s=7)
    assert (answer.status, answer.error, answer.field, answer.message) == (
        400,
        "invalid_request",
        "filters.year",
        "bad year",
    )
    assert "Retry-After" not in answer.headers
    rejected = to_api_error(
        errors.SearchRejected("failed to parse field [year] in index [docs-v2026]"), retry_after_s=7
    )
    assert rejected.message.startswith("the search was refused: a filter value") and rejected.field == "filters"
    assert "docs-v2026" not in rejected.message  # never a concrete index or Elasticsearch's own words
    failed = to_api_error(errors.SearchFailed("Elasticsearch error 503: all shards failed"), retry_after_s=7)
    assert failed.status == 503 and failed.headers == {"Retry-After": "7"}
    assert "shards" not in failed.message  # internals stay in the log


def test_elasticsearch_client_errors_are_503():
    refused = to_api_error(ConnectionError("refused"), retry_after_s=3)
    assert (refused.status, refused.headers) == (503, {"Retry-After": "3"})
    from elasticsearch import ApiError

    meta = ApiResponseMeta(status=429, http_version="1.1", headers=HttpHeaders(), duration=0.0, node=None)
    busy = to_api_error(ApiError("too many requests", meta, {}), retry_after_s=3)
    assert busy.status == 503


def test_unexpected_errors_are_not_answered_here():
    assert to_api_error(KeyError("x"), retry_after_s=1) is None
