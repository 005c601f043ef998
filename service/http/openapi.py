"""``/openapi.json``, generated from the pydantic models that validate requests."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from rrsearch.service.http.embedding import EmbedRequest
from rrsearch.service.http.ranking import CohereV2RerankRequest, CohereV2RerankResponse
from rrsearch.service.http.served import MODELS
from rrsearch.service.retrieval import INTEGER_RANGES, value_kind
from rrsearch.service.schemas import (
    CohereRerankResponse,
    ErrorResponse,
    JudgmentBatch,
    JudgmentRequest,
    JudgmentsResponse,
    Rank,
    Readiness,
    RerankRequest,
    SearchRequest,
    SearchResponse,
)

# GET /search takes the scalar fields of SearchRequest as query parameters (q is `query`).
GET_PARAMS = [
    ("q", "query", True),
    ("top_k", "top_k", False),
    ("candidates", "candidates", False),
    ("mode", "mode", False),
    ("rerank", "rerank", False),
    ("fusion", "fusion", False),
    ("from", "from", False),
    ("collapse", "collapse", False),
    ("highlight", "highlight", False),
    ("index", "index", False),
    ("rerank_weight", "rerank_weight", False),
    ("rerank_depth", "rerank_depth", False),
    ("rerank_normalization", "rerank_normalization", False),
]
SCALAR_SCHEMAS: dict[str, dict[str, Any]] = {
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "string": {"type": "string"},
}
RANGE_BOUNDS = ("gte", "gt", "lte", "lt")


def filter_value_schema(es_type: str) -> dict:
    """A term (scalar), terms (non-empty list) or range (at least one non-null bound) on one field."""
    kind = value_kind(es_type)
    scalar = dict(SCALAR_SCHEMAS[kind])
    if kind == "integer":
        scalar["minimum"], scalar["maximum"] = INTEGER_RANGES[es_type]
    shapes = [scalar, {"type": "array", "items": scalar, "minItems": 1}]
    if kind != "boolean":
        shapes.append(
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {bound: {"anyOf": [scalar, {"type": "null"}]} for bound in RANGE_BOUNDS},
                "anyOf": [{"required": [bound], "properties": {bound: scalar}} for bound in RANGE_BOUNDS],
            }
        )
    return {"anyOf": shapes}


def filters_schema(fields: dict[str, str] | None) -> dict:
    """The filters the default index can apply, each with the values its type takes; a field
    under ``metadata`` may be named with or without that prefix."""
    if fields is None:  # the index is missing or unreachable: no filter can be checked
        return {"type": "object", "maxProperties": 0}
    properties = {}
    for full, es_type in sorted(fields.items()):
        schema = filter_value_schema(es_type)
        properties[full] = schema
        properties[full.removeprefix("metadata.")] = schema
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "description": "field -> value (term), non-empty list (any of), or {gte,gt,lte,lt} (range); "
        "applied inside both BM25 and kNN.",
    }


def _search_request_schema(schema: dict, settings, fields: dict[str, str] | None, indexes: list[str]) -> dict:
    """SearchRequest's schema with the limits this server enforces from its settings."""
    props = schema["properties"]
    props["query"]["maxLength"] = settings.max_query_chars
    props["top_k"]["maximum"] = settings.max_top_k
    props["candidates"]["anyOf"][0]["maximum"] = settings.max_candidates
    props["index"] = {
        "anyOf": [{"type": "string", "enum": indexes}, {"type": "null"}],
        "default": None,
        "description": props["index"].get("description", ""),
    }
    props["filters"] = filters_schema(fields)
    return schema


def _get_parameter(props: dict, param: str, field: str, required: bool) -> dict:
    schema = dict(props[field])
    if "anyOf" in schema:  # a query parameter cannot be null: the non-null branch
        schema = next(branch for branch in schema["anyOf"] if branch.get("type") != "null")
    if field == "fusion":
        schema = {"type": "string", "enum": ["rrf", "linear"]}
    schema.pop("default", None)
    return {
        "name": param,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": props[field].get("description", ""),
    }


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _rerank_request_schema(schema: dict, settings) -> dict:
    """RerankRequest's schema: exactly one of texts/documents (a list, never null), and the limits."""
    props = schema["properties"]
    props["query"]["maxLength"] = settings.max_query_chars
    for name in ("texts", "documents"):
        listed = next(branch for branch in props[name]["anyOf"] if branch.get("type") == "array")
        props[name] = {
            **listed,
            "maxItems": settings.rerank_api_max_texts,
            "description": props[name].get("description", ""),
        }
    schema["oneOf"] = [{"required": ["texts"]}, {"required": ["documents"]}]
    return schema


def _rerank_v2_request_schema(schema: dict, settings) -> dict:
    """Cohere's v2 request with the limits of this server."""
    props = schema["properties"]
    props["query"]["maxLength"] = settings.max_query_chars
    props["documents"]["maxItems"] = settings.rerank_api_max_texts
    return schema


def _embed_request_schema(schema: dict, settings, dims: int | None) -> dict:
    """EmbedRequest's schema: a non-empty string or a non-empty list of them (at most
    RRS_RERANK_API_MAX_TEXTS), and the one ``dimensions`` the model makes."""
    props = schema["properties"]
    text = {"type": "string", "minLength": 1}
    props["inputs"] = {
        "oneOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": settings.rerank_api_max_texts}],
        "description": props["inputs"].get("description", ""),
    }
    if dims is not None:
        props["dimensions"] = {
            "anyOf": [{"const": dims}, {"type": "null"}],
            "default": None,
            "description": props["dimensions"].get("description", ""),
        }
    return schema


def _judgment_request_schemas(schemas: dict, settings, indexes: list[str]) -> None:
    """A mark has exactly one of id/paragraph (a string, never null), the limits of this server,
    and the indexes it allows; a batch holds at most RRS_JUDGMENTS_MAX_BATCH marks."""
    props = schemas["JudgmentRequest"]["properties"]
    props["query"]["maxLength"] = settings.max_query_chars
    for name in ("id", "paragraph"):
        text = next(branch for branch in props[name]["anyOf"] if branch.get("type") == "string")
        props[name] = {**text, **{k: v for k, v in props[name].items() if k not in ("anyOf", "default", "title")}}
    props["paragraph"]["maxLength"] = settings.judgments_max_paragraph_chars
    props["index"] = {
        "anyOf": [{"type": "string", "enum": indexes}, {"type": "null"}],
        "default": None,
        "description": props["index"].get("description", ""),
    }
    schemas["JudgmentRequest"]["oneOf"] = [{"required": ["id"]}, {"required": ["paragraph"]}]
    schemas["JudgmentBatch"]["properties"]["judgments"]["maxItems"] = settings.judgments_max_batch


def build_openapi(
    settings,
    *,
    auth: bool,
    filter_fields: dict[str, str] | None = None,
    indexes: list[str] | None = None,
    role: str = "search",
    serves: tuple[str, ...] = MODELS,
    embed_dims: int | None = None,
) -> dict:
    """The OpenAPI 3.1 document of this server: the request models with the limits of its
    settings and the filters of its default index, so every request the document allows is
    one the server accepts, and every one it refuses is refused (checked by schemathesis).
    A ``reranker`` role documents only what it serves (no /search; /rerank and /embed as
    ``serves`` says)."""
    max_body_bytes = settings.max_request_bytes
    _, defs = models_json_schema(
        [
            (SearchRequest, "validation"),
            (SearchResponse, "serialization"),
            (ErrorResponse, "serialization"),
            (Readiness, "serialization"),
            (RerankRequest, "validation"),
            (Rank, "serialization"),
            (CohereRerankResponse, "serialization"),
            (CohereV2RerankRequest, "validation"),
            (CohereV2RerankResponse, "serialization"),
            (JudgmentRequest, "validation"),
            (JudgmentBatch, "validation"),
            (JudgmentsResponse, "serialization"),
            (EmbedRequest, "validation"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas = defs["$defs"]
    request_schema = _search_request_schema(
        schemas["SearchRequest"], settings, filter_fields, indexes or [settings.index_alias]
    )
    _rerank_request_schema(schemas["RerankRequest"], settings)
    _rerank_v2_request_schema(schemas["CohereV2RerankRequest"], settings)
    _embed_request_schema(schemas["EmbedRequest"], settings, embed_dims)
    schemas["EmbedResponse"] = {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}},
        "description": "One vector per input, in input order ([[...]] for a single string too).",
    }
    schemas["TEIErrorResponse"] = {
        **schemas["ErrorResponse"],
        "title": "TEIErrorResponse",
        "properties": {
            **schemas["ErrorResponse"]["properties"],
            "error_type": {
                "type": "string",
                "enum": ["empty", "validation", "overloaded", "unhealthy"],
                "description": "TEI's kind of error (what TEI's clients read).",
            },
        },
    }
    _judgment_request_schemas(schemas, settings, indexes or [settings.index_alias])
    errors = {
        "400": _json("ErrorResponse", "Invalid request; `field` names the culprit."),
        "404": _json("ErrorResponse", "Unknown index or alias."),
        "413": _json("ErrorResponse", f"Body larger than {max_body_bytes} bytes."),
        "503": _json("ErrorResponse", "Elasticsearch unreachable or timing out; see Retry-After."),
    }
    if auth:
        errors["401"] = _json("ErrorResponse", "Missing or invalid API key.")
    ok = _json("SearchResponse", "Ranked hits with per-stage ranks, scores and timings.")
    rerank_errors = {
        "400": errors["400"],
        "413": _json(
            "ErrorResponse",
            f"Body larger than {settings.rerank_api_max_bytes} bytes, or a pair longer "
            "than the model takes with truncate false.",
        ),
        "503": _json("ErrorResponse", "No reranker loaded, or it is overloaded or past its time budget."),
        **({"401": errors["401"]} if auth else {}),
    }
    rerank_operation: dict[str, Any] = {
        "summary": "Rank texts for a query (text-embeddings-inference's /rerank; Cohere's documents/top_n)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("RerankRequest")}}},
        "responses": {
            "200": {
                "description": "TEI: [{index, score, text?}] best first; Cohere: {results}",
                "headers": {
                    "Server-Timing": {"description": "rerank;dur=<ms spent scoring>", "schema": {"type": "string"}}
                },
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [{"type": "array", "items": _ref("Rank")}, _ref("CohereRerankResponse")]}
                    }
                },
            },
            **rerank_errors,
        },
    }
    rerank_v2_operation = {
        "summary": "Rank documents for a query (Cohere's v2 rerank: cohere.ClientV2)",
        "operationId": "rerankCohereV2",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CohereV2RerankRequest")}}},
        "responses": {
            "200": {
                "description": "{id, results: [{index, relevance_score}] best first, meta}",
                "headers": rerank_operation["responses"]["200"]["headers"],
                "content": {"application/json": {"schema": _ref("CohereV2RerankResponse")}},
            },
            **{status: answer for status, answer in rerank_errors.items() if status != "413"},
            "413": _json("ErrorResponse", f"Body larger than {settings.rerank_api_max_bytes} bytes."),
        },
    }
    tei_error = {
        **_json("TEIErrorResponse", ""),
        "headers": {
            "X-Error-Message": {
                "description": "the message again, which huggingface_hub's exceptions show",
                "schema": {"type": "string"},
            }
        },
    }
    embed_errors = {
        "400": {**tei_error, "description": "Invalid request (error_type empty: an empty input or list)."},
        "413": {
            **tei_error,
            "description": f"More than {settings.rerank_api_max_texts} inputs, a body larger than "
            f"{settings.rerank_api_max_bytes} bytes, or an input longer than the model takes with truncate false.",
        },
        **({"401": errors["401"]} if auth else {}),
    }
    embed_ok = {
        "description": "One vector per input (TEI's answer)",
        "headers": {"Server-Timing": {"description": "embed;dur=<ms spent embedding>", "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": _ref("EmbedResponse")}},
    }
    embed_operation = {
        "summary": "Embed texts with the bi-encoder (text-embeddings-inference's /embed)",
        "operationId": "embed",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EmbedRequest")}}},
        "responses": {"200": embed_ok, **embed_errors},
    }
    spec: dict = {
        "openapi": "3.1.0",
        "info": {"title": "rrsearch", "version": "1", "description": "Retrieve & Re-Rank search on Elasticsearch."},
        "paths": {
            "/search": {
                "post": {
                    "summary": "Search (all options)",
                    "operationId": "searchPost",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SearchRequest")}},
                    },
                    "responses": {"200": ok, **errors},
                },
                "get": {
                    "summary": "Search (quick use; filters need POST)",
                    "operationId": "searchGet",
                    "parameters": [_get_parameter(request_schema["properties"], *param) for param in GET_PARAMS],
                    "responses": {"200": ok, **errors},
                },
            },
            "/judgments": {
                "post": {
                    "summary": "Mark how well a document (or a pasted paragraph) answers a query: 2, 1 or 0",
                    "operationId": "judgments",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"oneOf": [_ref("JudgmentRequest"), _ref("JudgmentBatch")]}}
                        },
                    },
                    "responses": {
                        "200": _json(
                            "JudgmentsResponse", "The marks as stored (the latest per query, id and client wins)."
                        ),
                        **errors,
                        "404": _json(
                            "ErrorResponse", "Unknown index, or a document id the index lacks (`field` names it)."
                        ),
                    },
                }
            },
            "/rerank": {"post": {**rerank_operation, "operationId": "rerank"}},
            "/v1/rerank": {"post": {**rerank_operation, "operationId": "rerankCohere"}},
            "/v2/rerank": {"post": rerank_v2_operation},
            "/embed": {"post": embed_operation},
            "/": {
                "get": {
                    "summary": "The search page (HTML; the search role only)",
                    "operationId": "searchPage",
                    "security": [],
                    "responses": {
                        "200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}
                    },
                },
                "post": _root_operation(serves, embed_operation, rerank_operation),
            },
            "/healthz": {
                "get": {
                    "summary": "The process is up",
                    "operationId": "healthz",
                    "security": [],
                    "responses": {"200": {"description": "Up"}},
                }
            },
            "/health": {
                "get": {
                    "summary": "The process is up (TEI's name)",
                    "operationId": "health",
                    "security": [],
                    "responses": {"200": {"description": "Up"}},
                }
            },
            "/info": {
                "get": {
                    "summary": "The models this process serves",
                    "operationId": "info",
                    "responses": {
                        "200": {
                            "description": "model_id, model_type, max_input_length, max_client_batch_size (TEI's "
                            "keys); serves (rerank, embed); embedding (the bi-encoder behind /embed)",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Elasticsearch reachable, index present, models loaded",
                    "operationId": "readyz",
                    "responses": {"200": _json("Readiness", "Ready"), "503": _json("Readiness", "Not ready")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }
    if role == "reranker":
        del spec["paths"]["/search"]
        del spec["paths"]["/judgments"]
        for path in ("/rerank", "/v1/rerank", "/v2/rerank") if "rerank" not in serves else ():
            del spec["paths"][path]
        if "embed" not in serves:
            del spec["paths"]["/embed"]
        del spec["paths"]["/"]["get"]  # a pool serves no page
        spec["paths"]["/readyz"] = {
            "get": {
                "summary": "The pool's models are loaded",
                "operationId": "readyz",
                "responses": {
                    "200": {"description": "Ready", "content": {"application/json": {"schema": {"type": "object"}}}}
                },
            }
        }
    if auth:
        spec["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
    return spec


def _root_operation(serves: tuple[str, ...], embed_operation: dict, rerank_operation: dict) -> dict:
    """``POST /``, TEI's root route, where clients given a TEI URL post: an embed request
    (``inputs``) answered as /embed answers it, or a TEI rerank request (``query``) as /rerank."""
    requests, answers = [], []
    if "embed" in serves:
        requests.append(_ref("EmbedRequest"))
        answers.append(_ref("EmbedResponse"))
    if "rerank" in serves:
        requests.append(_ref("RerankRequest"))
        answers.append(rerank_operation["responses"]["200"]["content"]["application/json"]["schema"])
    responses = {
        **embed_operation["responses"],
        "200": {
            "description": "Vectors (an embed request) or ranks (a rerank request)",
            "content": {"application/json": {"schema": answers[0] if len(answers) == 1 else {"oneOf": answers}}},
        },
    }
    if "rerank" in serves:
        responses["503"] = rerank_operation["responses"]["503"]
    if "embed" not in serves:
        responses["404"] = _json("ErrorResponse", "An embed request: this pool does not serve the bi-encoder.")
    return {
        "summary": "TEI's root route: an embed request (inputs) is /embed's, a rerank request (query) /rerank's",
        "operationId": "teiRoot",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": requests[0] if len(requests) == 1 else {"oneOf": requests}}},
        },
        "responses": responses,
    }
