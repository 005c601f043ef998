"""``/openapi.json``, generated from the pydantic models that validate requests."""

from __future__ import annotations

from pydantic.json_schema import models_json_schema

from service.schemas import ErrorResponse, Readiness, SearchRequest, SearchResponse

GET_PARAMS = [
    ("q", "string", True, "The query text (same as `query` in the POST body)."),
    ("top_k", "integer", False, "Hits to return."),
    ("candidates", "integer", False, "Fused candidates sent to the reranker."),
    ("mode", "string", False, "hybrid | bm25 | knn"),
    ("rerank", "boolean", False, "Rerank with the cross-encoder."),
    ("fusion", "string", False, "rrf | linear"),
    ("from", "integer", False, "Offset into the ranked window."),
    ("collapse", "boolean", False, "One hit per parent document."),
    ("highlight", "boolean", False, "Return highlighted snippets."),
    ("index", "string", False, "An alias the server allows."),
]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def build_openapi(*, auth: bool, max_body_bytes: int) -> dict:
    """The OpenAPI 3.1 document of the API."""
    _, defs = models_json_schema(
        [(SearchRequest, "validation"), (SearchResponse, "serialization"), (ErrorResponse, "serialization"),
         (Readiness, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    errors = {
        "400": _json("ErrorResponse", "Invalid request; `field` names the culprit."),
        "404": _json("ErrorResponse", "Unknown index or alias."),
        "413": _json("ErrorResponse", f"Body larger than {max_body_bytes} bytes."),
        "503": _json("ErrorResponse", "Elasticsearch unreachable or timing out; see Retry-After."),
    }
    if auth:
        errors["401"] = _json("ErrorResponse", "Missing or invalid API key.")
    ok = _json("SearchResponse", "Ranked hits with per-stage ranks, scores and timings.")
    spec: dict = {
        "openapi": "3.1.0",
        "info": {"title": "rrsearch", "version": "1", "description": "Retrieve & Re-Rank search on Elasticsearch."},
        "paths": {
            "/search": {
                "post": {
                    "summary": "Search (all options)",
                    "operationId": "searchPost",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("SearchRequest")}}},
                    "responses": {"200": ok, **errors},
                },
                "get": {
                    "summary": "Search (quick use; filters need POST)",
                    "operationId": "searchGet",
                    "parameters": [
                        {"name": name, "in": "query", "required": required, "description": text, "schema": {"type": kind}}
                        for name, kind, required, text in GET_PARAMS
                    ],
                    "responses": {"200": ok, **errors},
                },
            },
            "/healthz": {"get": {"summary": "The process is up", "operationId": "healthz", "security": [],
                                 "responses": {"200": {"description": "Up"}}}},
            "/readyz": {"get": {"summary": "Elasticsearch reachable, index present, models loaded",
                                "operationId": "readyz",
                                "responses": {"200": _json("Readiness", "Ready"), "503": _json("Readiness", "Not ready")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                                 "responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                      "responses": {"200": {"description": "OpenAPI 3.1",
                                                            "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": defs["$defs"]},
    }
    if auth:
        spec["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
    return spec
