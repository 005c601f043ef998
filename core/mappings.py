"""Render index definitions from the JSON files in ``es_mappings/`` (pure functions).

The JSON files are the source of truth a user can read; the code only fills in what
depends on the model and settings (vector dims, similarity, analyzer, HNSW options).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files

from rrsearch.core.passage import VECTOR_FIELD

MAPPINGS_DIR = files("rrsearch.es_mappings")  # package data: a checkout and an installed wheel alike
QUANTIZED_TYPES = {"int8_hnsw", "int4_hnsw", "bbq_hnsw"}
# First server version that accepts each index_options type (from the ES reference).
MIN_VERSION_FOR_TYPE = {"int8_hnsw": (8, 12), "int4_hnsw": (8, 15), "bbq_hnsw": (8, 18)}


@cache
def load_template(name: str) -> dict:
    """A definition from ``es_mappings/<name>.json`` without its ``_comment``."""
    body = json.loads(MAPPINGS_DIR.joinpath(f"{name}.json").read_text(encoding="utf-8"))
    body.pop("_comment", None)
    return body


def parse_version(version: str) -> tuple[int, int]:
    major, minor, *_ = version.split(".")
    return int(major), int(minor)


def supported_index_type(wanted: str, server_version: str | None) -> str:
    """``wanted``, or plain ``hnsw`` when the server is too old for that quantization."""
    needed = MIN_VERSION_FOR_TYPE.get(wanted)
    if needed and server_version and parse_version(server_version) < needed:
        return "hnsw"
    return wanted


def render_passage_index(
    *,
    dims: int,
    model: str,
    similarity: str = "cosine",
    analyzer: str = "standard",
    index_type: str = "int8_hnsw",
    m: int = 16,
    ef_construction: int = 100,
    shards: int = 1,
    replicas: int = 0,
    server_version: str | None = None,
    encoder_meta: dict | None = None,
) -> dict:
    """The passage index body for ``indices.create`` (settings + mappings); ``encoder_meta``
    (backend, precision, probe vector) goes into ``_meta`` beside the model name."""
    if dims <= 0:
        raise ValueError(f"dims must be positive, got {dims}")
    if similarity not in ("cosine", "dot_product"):
        raise ValueError(f"similarity must be cosine or dot_product, got {similarity!r}")
    body = copy.deepcopy(load_template("passages"))
    body["settings"]["index"].update(number_of_shards=shards, number_of_replicas=replicas)
    mappings = body["mappings"]
    mappings["_meta"].update(encoder_meta or {})
    mappings["_meta"].update(bi_encoder=model, dims=dims, similarity=similarity, analyzer=analyzer)
    props = mappings["properties"]
    props["title"]["analyzer"] = analyzer
    props["text"]["analyzer"] = analyzer
    index_type = supported_index_type(index_type, server_version)
    options: dict = {"type": index_type}
    if index_type != "flat" and not index_type.endswith("_flat"):
        options.update(m=m, ef_construction=ef_construction)
    props[VECTOR_FIELD].update(dims=dims, similarity=similarity, index_options=options)
    return body


def render_search_log_index(*, shards: int = 1, replicas: int = 0) -> dict:
    """The search-log index body (one document per search, for Kibana)."""
    body = copy.deepcopy(load_template("search_logs"))
    body["settings"]["index"].update(number_of_shards=shards, number_of_replicas=replicas)
    return body
