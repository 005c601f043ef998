"""Build the BM25 and kNN searches and send them to Elasticsearch in one ``_msearch`` (or, with
``RRS_RETRIEVAL_PATH=retrievers``, in one ``_search`` that the plugin's retrievers fuse).

Both searches carry the same filters (inside the query, so each returns its own top
``size`` among matching documents, not a post-filtered remainder). User text only ever
goes into ``multi_match`` (analysed as plain text), never into ``query_string`` syntax,
so it cannot inject operators, field names or wildcards.

Example::

    bodies = [bm25_body("vitamin d", ["title^2", "text"], [], size=100)]
    [hits] = msearch(es, "passages", bodies, timeout_s=5)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from rrsearch.core.errors import FilterError, IndexMissing, RetrieversMissing, SearchFailed, SearchRejected
from rrsearch.core.es_errors import raise_if_refused
from rrsearch.core.passage import SOURCE_FIELDS, VECTOR_FIELD

# Top-level passage fields a filter may name as they are; any other name means metadata.<name>.
TOP_LEVEL_FILTER_FIELDS = {"parent_id", "source", "chunk", "chunk_count", "model", "indexed_at"}
HIGHLIGHT_FRAGMENT_CHARS = 180
HIGHLIGHT_MAX_ANALYZED_OFFSET = 999_999


def search_preference(query: str) -> str:
    """The ``preference`` a search for ``query`` carries: the same query reads the same shard copies,
    so a replicated index answers it alike each time (a primary and its replica build their HNSW graphs
    and segments apart, so approximate kNN and score ties can differ between copies), while different
    queries still spread over all copies."""
    return "rrs-" + hashlib.sha1(query.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


@dataclass
class Candidate:
    """One passage returned by a search, with what the hit will show."""

    id: str
    score: float
    source: dict[str, Any]
    highlight: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SearchResult:
    hits: list[Candidate]
    took_ms: float
    shards_failed: int = 0  # shards that did not answer: the hits come from the others


def parse_fields(spec: str) -> list[str]:
    """``"title^2,text"`` -> ``["title^2", "text"]`` (boosts kept for ``multi_match``)."""
    fields = [part.strip() for part in spec.split(",") if part.strip()]
    if not fields:
        raise ValueError("bm25_fields names no field")
    return fields


def filterable_fields(mapping_properties: dict[str, Any]) -> dict[str, str]:
    """Full names of the fields a filter may use, each with its Elasticsearch type, from the mapping."""
    fields = {
        name: mapping_properties[name].get("type", "object")
        for name in TOP_LEVEL_FILTER_FIELDS
        if name in mapping_properties
    }

    def walk(prefix: str, props: dict[str, Any]) -> None:
        for name, spec in props.items():
            full = f"{prefix}.{name}"
            if "properties" in spec:
                walk(full, spec["properties"])
            else:
                fields[full] = spec.get("type", "keyword")

    walk("metadata", mapping_properties.get("metadata", {}).get("properties", {}))
    return fields


# The values each integer type holds (a term outside them is refused by Elasticsearch).
INTEGER_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsigned_long": (0, 2**64 - 1),
}
NUMBER_TYPES = {"double", "float", "half_float", "scaled_float"}


def value_kind(es_type: str) -> str:
    """What a filter value on a field of ``es_type`` must be: integer, number, boolean, date or string."""
    if es_type in INTEGER_RANGES:
        return "integer"
    if es_type in NUMBER_TYPES:
        return "number"
    if es_type in ("boolean", "date", "date_nanos"):
        return "boolean" if es_type == "boolean" else "date"
    return "string"


def _fits(value: Any, kind: str, es_type: str) -> bool:
    if kind == "integer":
        low, high = INTEGER_RANGES[es_type]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        return isinstance(value, str) and _is_date(value)
    return isinstance(value, str)


def _is_date(text: str) -> bool:
    from datetime import date, datetime

    try:
        (date if len(text) == 10 else datetime).fromisoformat(text)
        return True
    except ValueError:
        return False


KIND_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "date": "a date (YYYY-MM-DD or ISO 8601)",
    "string": "a string",
}


def full_field_name(name: str) -> str:
    """The mapping name of a filter key: top-level fields as is, else under ``metadata``."""
    if name in TOP_LEVEL_FILTER_FIELDS or name.startswith("metadata."):
        return name
    return f"metadata.{name}"


def checked_filter_value(name: str, value: Any, es_type: str) -> Any:
    """``value`` as the filter on ``name`` (of Elasticsearch type ``es_type``) sends it, or a
    FilterError in the caller's words when the field cannot hold it."""
    kind = value_kind(es_type)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # 2000.0 is the integer 2000 (as JSON Schema says)
    if not _fits(value, kind, es_type):
        within = f" from {INTEGER_RANGES[es_type][0]} to {INTEGER_RANGES[es_type][1]}" if kind == "integer" else ""
        raise FilterError(f"filters.{name}", f"{name!r} holds {kind} values: give {KIND_WORDS[kind]}{within}")
    return value


def filter_clauses(filters: dict[str, Any], known: dict[str, str]) -> list[dict]:
    """Elasticsearch filter clauses for the request's ``filters`` (term / terms / range).

    Values are checked against the field's type here, so a wrong one is the caller's 400
    with our own words, never a search Elasticsearch refuses."""
    clauses: list[dict] = []
    for name, value in filters.items():
        full = full_field_name(name)
        if full not in known:
            raise FilterError(f"filters.{name}", f"unknown filter field {name!r}; the index has no field {full!r}")
        es_type = known[full]
        if hasattr(value, "model_dump"):
            bounds = {
                bound: checked_filter_value(name, v, es_type)
                for bound, v in value.model_dump(exclude_none=True).items()
            }
            clauses.append({"range": {full: bounds}})
        elif isinstance(value, list):
            if not value:
                raise FilterError(f"filters.{name}", "an empty list matches nothing")
            clauses.append({"terms": {full: [checked_filter_value(name, v, es_type) for v in value]}})
        else:
            clauses.append({"term": {full: checked_filter_value(name, value, es_type)}})
    return clauses


def text_query(query: str, fields: list[str], tie_breaker: float = 0.0) -> dict:
    """The BM25 query: ``multi_match`` treats the text as words, never as syntax."""
    return {"multi_match": {"query": query, "fields": fields, "type": "best_fields", "tie_breaker": tie_breaker}}


def _highlight(query: str, fields: list[str]) -> dict:
    return {
        "highlight_query": text_query(query, fields),
        "encoder": "html",
        # Analyse at most this much of a field instead of failing the search on a longer one
        # (the index's own index.highlight.max_analyzed_offset is 1,000,000 by default).
        "max_analyzed_offset": HIGHLIGHT_MAX_ANALYZED_OFFSET,
        "fields": {
            "text": {"fragment_size": HIGHLIGHT_FRAGMENT_CHARS, "number_of_fragments": 2},
            "title": {"number_of_fragments": 0},
        },
    }


def bm25_body(
    query: str,
    fields: list[str],
    filters: list[dict],
    *,
    size: int,
    highlight: bool = False,
    tie_breaker: float = 0.0,
) -> dict:
    body: dict = {
        "size": size,
        "_source": SOURCE_FIELDS,
        "query": {"bool": {"must": [text_query(query, fields, tie_breaker)], "filter": filters}},
    }
    if highlight:
        body["highlight"] = _highlight(query, fields)
    return body


def knn_body(
    vector: list[float],
    filters: list[dict],
    *,
    size: int,
    num_candidates: int,
    highlight_text: str | None = None,
    highlight_fields: list[str] | None = None,
) -> dict:
    body: dict = {
        "size": size,
        "_source": SOURCE_FIELDS,
        "knn": {
            "field": VECTOR_FIELD,
            "query_vector": vector,
            "k": size,
            "num_candidates": max(num_candidates, size),
            "filter": filters,
        },
    }
    if highlight_text is not None:
        body["highlight"] = _highlight(highlight_text, highlight_fields or ["title", "text"])
    return body


def fused_body(
    bm25: dict, knn: dict, *, method: str, size: int, rrf_k: int, weight: float = 0.5, normalization: str = "minmax"
) -> dict:
    """One ``_search`` that fuses ``bm25_body`` and ``knn_body`` on the node with the plugin's
    ``rrs_rrf`` or ``rrs_linear`` (the math of service/fusion.py; ``weight`` is kNN's share)."""
    children = [{"standard": {"query": bm25["query"]}}, {"knn": knn["knn"]}]
    if method == "linear":
        retriever = {
            "rrs_linear": {
                "retrievers": children,
                "weights": [1.0 - weight, weight],
                "normalizer": normalization,
                "rank_window_size": size,
            }
        }
    else:
        retriever = {"rrs_rrf": {"retrievers": children, "rank_constant": rrf_k, "rank_window_size": size}}
    body = {"size": size, "_source": bm25["_source"], "retriever": retriever}
    if "highlight" in bm25:
        body["highlight"] = bm25["highlight"]
    return body


def search(
    es: Elasticsearch, index: str, body: dict, *, timeout_s: float, preference: str | None = None
) -> SearchResult:
    """One ``_search``, its failures mapped as ``msearch`` maps an item's."""
    from elasticsearch import ApiError

    try:
        response = es.options(request_timeout=timeout_s).search(index=index, body=body, preference=preference)
    except ApiError as exc:
        error = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else str(exc.body)
        said = json.dumps(error)
        if "unknown retriever [rrs_" in said or "unknown field [rrs_" in said:
            raise RetrieversMissing(
                "the node does not know the rrs_rrf / rrs_linear retrievers: "
                "RRS_RETRIEVAL_PATH=retrievers needs our plugin on every node of Elasticsearch 9.x "
                "(rrs es start installs it locally; docs/plugin.md; 8.x has no retrievers build), or set it to msearch"
            ) from exc
        _raise_item_error(index, {"error": error, "status": exc.meta.status})
    return _result(response.body)


def _result(item: dict) -> SearchResult:
    hits = [
        Candidate(id=h["_id"], score=float(h["_score"] or 0.0), source=h["_source"], highlight=h.get("highlight", {}))
        for h in item["hits"]["hits"]
    ]
    failed = int(item.get("_shards", {}).get("failed", 0) or 0) + int(bool(item.get("timed_out")))
    return SearchResult(hits=hits, took_ms=float(item.get("took", 0)), shards_failed=failed)


def msearch(
    es: Elasticsearch, index: str, bodies: list[dict], *, timeout_s: float, preference: str | None = None
) -> list[SearchResult]:
    """Run ``bodies`` against ``index`` in one round trip; one result per body, in order."""
    header = {} if preference is None else {"preference": preference}
    searches: list[dict] = []
    for body in bodies:
        searches.extend([dict(header), body])
    response = es.options(request_timeout=timeout_s).msearch(index=index, searches=searches)
    results = []
    for item in response["responses"]:
        if "error" in item:
            _raise_item_error(index, item)
        results.append(_result(item))
    return results


def _raise_item_error(index: str, item: dict) -> None:
    error = item["error"]
    kind = error.get("type", "") if isinstance(error, dict) else str(error)
    if kind == "index_not_found_exception":
        raise IndexMissing(f"no index or alias named {index!r}")
    status = item.get("status", 500)
    reason = _root_reason(error)
    raise_if_refused(status, error)  # this index refuses our key: no retry will change that
    if status == 400:
        raise SearchRejected(reason)
    raise SearchFailed(f"Elasticsearch error {status}: {reason}")


def _root_reason(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    causes = error.get("root_cause") or []
    first = causes[0] if causes else error
    caused = error.get("caused_by", {})
    return caused.get("reason") or first.get("reason") or error.get("reason") or "search failed"
