"""The one settings object, grouped by concern: one model per area, composed into ``Settings``.

Values come from environment variables prefixed ``RRS_`` (``RRS_INDEX_ALIAS=docs``), or
from a ``.env`` file. A few well-known names are accepted too because users expect them:
``ES_URL``, ``ES_API_KEY``, ``ES_USERNAME``, ``ES_PASSWORD``. Nothing else in the project
reads the environment. Secrets are ``SecretStr`` so they never show in logs or reprs.

Example::

    >>> from core.settings import Settings
    >>> Settings(index_alias="docs").index_alias
    'docs'
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Root can't run Elasticsearch; the node then runs as an unprivileged user, which can't
# read /root, so root's default home is a shared cache directory instead.
DEFAULT_HOME = Path("/var/cache/rrs") if os.geteuid() == 0 else Path.home() / ".cache" / "rrs"


def _http_url(value: str) -> str:
    """An http(s) URL without its trailing slash (callers map an empty value to unset)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


def _both_or_neither(first, second, names: str) -> None:
    if (first is None) != (second is None):
        raise ValueError(f"{names} must be set together")


def _env(name: str) -> AliasChoices:
    """Accept both ``RRS_<NAME>`` and a bare well-known ``<NAME>`` (e.g. ``ES_URL``)."""
    return AliasChoices(f"RRS_{name}", name)


class ElasticsearchSettings(BaseModel):
    """Where the cluster is and how to authenticate (every command and the service)."""

    es_url: str | None = Field(
        default=None,
        validation_alias=_env("ES_URL"),
        description="URL of an existing cluster, or several nodes' URLs separated by commas (the client "
        "moves on when one dies). When unset, the local node or cluster (rrs es start) is used.",
    )
    es_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("ES_API_KEY"),
        description="Encoded API key (wins over user/password); for a local --secure node, over its elastic password too.",
    )
    es_username: str | None = Field(
        default=None,
        validation_alias=_env("ES_USERNAME"),
        description="Basic-auth user (with ES_PASSWORD); default for a local --secure node: elastic.",
    )
    es_password: SecretStr | None = Field(
        default=None, validation_alias=_env("ES_PASSWORD"), description="Basic-auth password (with ES_USERNAME)."
    )
    es_ca_certs: str | None = Field(
        default=None,
        validation_alias=_env("ES_CA_CERTS"),
        description="CA bundle (PEM file) to verify the cluster's TLS certificate; default for a local --secure node: its own CA.",
    )
    es_request_timeout_s: float = Field(
        default=10.0, gt=0, description="Client timeout of one Elasticsearch request (ingest allows at least 120 s)."
    )

    @field_validator("es_url")
    @classmethod
    def _url_has_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        return ",".join(_http_url(part.strip()) for part in value.split(",") if part.strip()) or None

    @model_validator(mode="after")
    def _auth_is_complete(self):
        _both_or_neither(self.es_username, self.es_password, "ES_USERNAME and ES_PASSWORD")
        return self


class LocalNodeSettings(BaseModel):
    """The local node of ``rrs es start`` (rrs/local_node.py); unused when ``es_url`` is set."""

    home: Path = Field(
        default=DEFAULT_HOME,
        description="Cache for the downloaded distribution, the ONNX exports made on first use and, by default, the node's data.",
    )
    es_node_dir: Path | None = Field(default=None, description="Data, logs, config and pid file of the local node.")
    es_port: int = Field(
        default=9200, ge=1, le=65535, description="HTTP port of the first local node (the next free one if taken)."
    )
    es_heap: str = Field(default="2g", pattern=r"^\d+[mg]$", description="JVM heap of each local node.")
    es_start_timeout_s: float = Field(
        default=180.0, gt=0, description="How long rrs es start waits for a yellow cluster."
    )
    es_nodes: int = Field(default=1, ge=1, le=9, description="Nodes of the local cluster (each with RRS_ES_HEAP).")
    es_english_plugin: bool = Field(
        default=True, description="Build (Maven, once) and install the english analysis plugin before the node starts."
    )
    es_secure: bool = Field(
        default=False,
        description="Start the local node (or cluster) with security on: TLS on HTTP and transport, a CA, "
        "node certificates and the elastic user's password made once in its directory (rrs es start --secure). "
        "Default: what the node directory was last started with, else off.",
    )
    es_version: str | None = Field(
        default=None,
        description="Run this Elasticsearch version instead of the newest the JDK allows: 8.19.x or 9.x, from "
        "Maven Central (pinned: 8.19.21, 9.5.4). An 8.x node gets the english analyzer but not the rrs_* retrievers.",
    )
    es_java_home: Path | None = Field(
        default=None,
        validation_alias=_env("ES_JAVA_HOME"),
        description="JDK for the local node; default: the newest JDK found on the machine.",
    )

    @property
    def node_dir(self) -> Path:
        """Where the local node keeps data, logs, config and its pid file."""
        return self.es_node_dir or self.home / "node"


class IndexSettings(BaseModel):
    """Shape of the passage and search-log indexes (core/indexes.py, core/mappings.py)."""

    index_alias: str = Field(
        default="passages", pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="The alias searches and ingest use."
    )
    search_log_index: str = Field(
        default="rrs-search-logs", pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Index the search log is written to."
    )
    analyzer: str = Field(
        default="auto",
        description="Text analyzer; 'auto' = 'english' when the node has it, else 'standard'.",
    )
    vector_similarity: Literal["cosine", "dot_product"] = Field(
        default="cosine", description="Similarity of the dense_vector field."
    )
    vector_index_type: Literal["hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "flat"] = Field(
        default="int8_hnsw", description="Vector index (quantization); hnsw where the server lacks the quantization."
    )
    hnsw_m: int = Field(default=16, ge=2, le=512, description="HNSW graph links per node (m).")
    hnsw_ef_construction: int = Field(
        default=100, ge=2, le=3200, description="HNSW candidates while building (ef_construction)."
    )
    number_of_shards: int = Field(
        default=1, ge=1, description="Passage index shards (at index create and every new version)."
    )
    number_of_replicas: int = Field(
        default=0, ge=0, description="Passage index replicas; 1+ on a cluster survives a node loss."
    )
    search_log_shards: int = Field(default=1, ge=1, description="Search-log index shards.")
    search_log_replicas: int = Field(default=0, ge=0, description="Search-log index replicas.")


class ModelSettings(BaseModel):
    """The bi-encoder every side shares: ingest embeds passages, search embeds queries."""

    bi_encoder: str = Field(
        default="all-MiniLM-L6-v2",
        description="Name or path; 'all-MiniLM-L6-v2' resolves to the packaged offline copy.",
    )
    query_prompt: str = Field(default="", description="Prefix of every query before encoding (e.g. 'query: ').")
    passage_prompt: str = Field(default="", description="Prefix of every passage before encoding (e.g. 'passage: ').")
    device: str | None = Field(default=None, description="'cuda', 'cpu'; default: cuda if present.")
    encode_batch_size: int = Field(default=64, ge=1, le=4096, description="Texts per encode batch (CPU).")
    encode_token_budget: int | None = Field(
        default=None,
        ge=256,
        description="Tokens per encode batch: batch = budget / max_seq_length. Default: 65,536 on CUDA, unused on CPU.",
    )
    bi_encoder_backend: Literal["auto", "torch", "onnx", "openvino"] = Field(
        default="auto",
        description="auto: torch fp16 on CUDA, on a CPU its engine (cpu_engine); onnx: serve the folder made by "
        "`rrs encoder export-onnx` (no torch loaded); openvino: the OpenVINO int8 export, made on first use and cached.",
    )
    cpu_engine: Literal["torch-bf16", "openvino-int8", "onnx-int8"] | None = Field(
        default=None,
        description="What the auto backends (bi-encoder and reranker) serve on a CPU; default by its features: "
        "torch-bf16 with AMX, openvino-int8 with AVX-512 VNNI, else onnx-int8 (int8 exports made on first use, cached).",
    )
    bi_encoder_onnx_file: str = Field(
        default="onnx/model_qint8.onnx",
        description="ONNX file inside that folder: model.onnx (fp32) or model_qint8.onnx.",
    )
    bi_encoder_tolerance: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Least cosine between the index's probe vector and this encoder's (another backend or precision).",
    )


class IngestSettings(BaseModel):
    """How ``rrs ingest`` chunks, batches and bulk-indexes (ingest/)."""

    ingest_chunk_tokens: int | None = Field(
        default=None,
        ge=16,
        description="Passage size in word pieces; default: the bi-encoder's max_seq_length minus special tokens.",
    )
    ingest_chunk_overlap: int = Field(default=32, ge=0, description="Word pieces shared by neighbouring passages.")
    ingest_batch_size: int = Field(
        default=512,
        ge=1,
        le=65536,
        description="Passages per pipeline batch (one encode call, one bulk request).",
    )
    ingest_max_text_chars: int = Field(default=2_000_000, ge=1, description="Records with a longer text are rejected.")
    ingest_max_title_chars: int = Field(
        default=2_000, ge=1, description="Records with a longer title are rejected (every passage repeats the title)."
    )
    ingest_max_metadata_bytes: int = Field(
        default=65_536, ge=2, description="Records whose metadata is larger as JSON (UTF-8 bytes) are rejected."
    )
    ingest_max_line_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="JSONL/CSV lines longer than this are rejected unread."
    )
    ingest_max_passage_chars: int = Field(
        default=5_000,
        ge=100,
        description="No passage is longer: a run of characters the tokenizer sees as one token is cut into pieces.",
    )
    ingest_bulk_retries: int = Field(default=5, ge=0, description="Retries of 429-rejected bulk items, with back-off.")
    ingest_refresh_interval: str = Field(
        default="-1", description="Refresh interval while bulk indexing; the previous one is restored after."
    )
    # `rrs ingest --engine ray` (ingest/ray_engine.py)
    ingest_ray_address: str | None = Field(
        default=None, description="Ray cluster to run on ('auto', HOST:PORT); default: a local Ray of this machine."
    )
    ingest_encoders: int = Field(
        default=1, ge=1, le=4096, description="Encoder actors (each loads the bi-encoder once)."
    )
    ingest_encoder_gpus: float = Field(
        default=0.0, ge=0, description="GPUs shared by the encoder actors (fp16 on CUDA)."
    )
    ingest_shard_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="JSONL/CSV shard size: a file is cut into ranges about this long."
    )
    ingest_ray_max_restarts: int = Field(
        default=-1,
        ge=-1,
        description="Restarts of a dead Ray actor (-1: unlimited; ids are deterministic, so a retry is idempotent).",
    )


class RetrievalSettings(BaseModel):
    """First stage and request limits of a search (service/pipeline.py, retrieval.py, schemas.py)."""

    bm25_fields: str = Field(
        default="title,text",
        description="Comma-separated fields with optional ^boost for BM25. Equal weights: on "
        "SciFact's train split title^2 lost 0.08 nDCG@10 (best_fields takes the max).",
    )
    bm25_tie_breaker: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="multi_match best_fields tie_breaker: share of the other fields' scores added "
        "to the best field's (0.3 was best of 0/0.3/0.5/1 on SciFact train).",
    )
    knn_num_candidates: int = Field(
        default=200, ge=1, le=10000, description="HNSW candidates per shard (at least `candidates`)."
    )
    default_candidates: int = Field(
        default=100, ge=1, le=1000, description="Fused candidates reranked when a request does not say."
    )
    max_candidates: int = Field(default=500, ge=1, le=10000, description="Most `candidates` a request may ask for.")
    max_top_k: int = Field(default=100, ge=1, le=1000, description="Most hits (`top_k`) a request may ask for.")
    max_query_chars: int = Field(default=1000, ge=1, le=100_000, description="Longest query (characters).")
    max_request_bytes: int = Field(default=65_536, ge=1024, description="Request bodies larger than this get 413.")
    rrf_k: int = Field(default=60, ge=1, description="Default RRF constant.")
    retrieval_path: Literal["msearch", "retrievers"] = Field(
        default="msearch",
        description="Hybrid first stage: `msearch` (BM25 + kNN in one _msearch, fused here) or `retrievers` "
        "(one _search fused on the node by the plugin's rrs_rrf/rrs_linear: the same hits, fewer bytes; "
        "hits carry no per-stage BM25/kNN ranks). bench/README.md says when it is faster.",
    )
    search_timeout_s: float = Field(default=5.0, gt=0, description="Per-request Elasticsearch timeout of the service.")
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with 503 when Elasticsearch is down.")
    allowed_indexes: str = Field(
        default="",
        description="Comma-separated extra aliases a request may name in `index` (the default alias is always allowed).",
    )
    alias_cache_s: float = Field(default=5.0, ge=0, description="How long an alias->index resolution is reused.")
    query_embedding_cache: int = Field(default=4096, ge=0, description="LRU size of query embeddings.")
    window_cache_size: int = Field(default=512, ge=0, description="Reranked windows kept for paging (per process).")
    window_cache_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, description="Memory the kept windows may take (per process); oldest go first."
    )
    window_cache_ttl_s: float = Field(default=600.0, ge=0, description="How long a kept window serves later pages.")


class RerankSettings(BaseModel):
    """The cross-encoder stage (service/rerank.py, batching.py)."""

    cross_encoder: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L6-v2", description="Hub name or local folder of the reranker."
    )
    rerank_enabled: bool = Field(default=True, description="False: serve fused order; responses say so.")
    allow_missing_reranker: bool = Field(
        default=False, description="Serve without the reranker when it cannot be loaded (else start-up stops)."
    )
    rerank_backend: Literal["auto", "torch", "onnx", "openvino"] = Field(
        default="auto",
        description="auto: torch fp16 on CUDA, on a CPU its engine (RRS_CPU_ENGINE); onnx: the folder's own export "
        "(`rrs rerank export-onnx`); openvino: the OpenVINO int8 export, made on first use and cached.",
    )
    rerank_onnx_file: str = Field(
        default="onnx/model_qint8.onnx", description="ONNX file inside the model folder (see `rrs rerank export-onnx`)."
    )
    rerank_dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        default="auto",
        description="torch only; auto: fp16 on CUDA, bf16 on a CPU the auto backend serves in bf16, else fp32.",
    )
    rerank_max_length: int | None = Field(
        default=None,
        ge=8,
        description="Token cap per (query, passage) pair, never above the model's; default 512 on "
        "CUDA, 256 on a CPU (within 0.005 nDCG@10 of 512 on SciFact train queries, bench/README.md).",
    )
    rerank_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Rows per forward pass; default 32 on CUDA, 8 on a CPU (where 4 to 32 "
        "score at the same pairs/s, bench/README.md, and shorter passes let a late request stop sooner).",
    )
    rerank_default_weight: float = Field(
        default=0.03,
        ge=0.0,
        le=1.0,
        description="The blend served when nothing confirmed the model (no rrs_rerank.json, no corpus "
        "calibration): the cross-encoder's share. 0.03 at depth 10 is the largest blend that cost at most 0.005 "
        "nDCG@10 on every collection, fusion and model measured, a random one included (bench/default_blend_bench.py).",
    )
    rerank_default_depth: int = Field(
        default=10, ge=1, description="How many fused candidates the default blend lets the cross-encoder reorder."
    )
    rerank_default_normalization: Literal["minmax", "rank"] = Field(
        default="minmax",
        description="How the default blend puts both scores on one scale (minmax keeps the fused order's "
        "own gaps; rank makes every neighbour swappable and cost 3x more with a noisy model, bench/README.md).",
    )
    rerank_corpus_calibration: bool = Field(
        default=True,
        description="Serve the blend `rrs calibrate` chose on this index's pseudo-queries when the model "
        "has no rrs_rerank.json (false: the default blend).",
    )
    rerank_auto_calibrate: bool = Field(
        default=True,
        description="The service makes the corpus calibration itself: the first search of an index version "
        "that a model has none for starts `rrs calibrate` once, in the background (service/auto_calibration.py); "
        "the default blend serves until it is written.",
    )
    rerank_timeout_ms: float = Field(
        default=3000.0, gt=0, description="Per-request rerank budget; past it the fused order is returned."
    )
    rerank_min_candidates: int = Field(
        default=10,
        ge=1,
        description="Fewest candidates worth reranking (the page of 10 a user sees): under load the "
        "depth shrinks to this before the stage is skipped.",
    )
    rerank_max_wait_ms: float | None = Field(
        default=None, ge=0, description="Micro-batch gathering wait; default 2 ms on CUDA, 0 on CPU."
    )
    rerank_max_batch_pairs: int = Field(default=512, ge=1, description="Most pairs merged into one micro-batch round.")
    rerank_max_batch_tokens: int = Field(
        default=16384,
        ge=1,
        description="Most tokens (pairs after truncation) in one micro-batch, and padded tokens in one "
        "forward pass, as TEI's max_batch_tokens; a longer request is served a batch at a time, taking turns with others.",
    )
    rerank_max_queue_pairs: int = Field(
        default=4096, ge=1, description="Pairs waiting beyond this are not queued (stage skipped)."
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="torch/ONNX Runtime CPU threads; default: all cores."
    )
    reranker_url: str | None = Field(
        default=None,
        description="A text-embeddings-inference-compatible /rerank server (`rrs serve --role reranker`, "
        "or TEI) to send pairs to instead of loading RRS_CROSS_ENCODER here.",
    )
    reranker_api_key: SecretStr | None = Field(
        default=None, description="Bearer key for RRS_RERANKER_URL, if it wants one."
    )
    rerank_api_max_texts: int = Field(
        default=1000, ge=1, description="Most texts one POST /rerank may rank (or /embed embed)."
    )
    rerank_api_max_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest POST /rerank (or /embed) body."
    )

    @field_validator("reranker_url")
    @classmethod
    def _reranker_url_has_scheme(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None


class ServeSettings(BaseModel):
    """The HTTP process: auth, search log, gunicorn (service/http/, service/cli.py)."""

    api_keys: SecretStr | None = Field(
        default=None, validation_alias=_env("API_KEYS"), description="Comma-separated API keys; unset = no auth."
    )
    search_log_enabled: bool = Field(default=True, description="Log every search to RRS_SEARCH_LOG_INDEX.")
    search_log_queue_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Search-log records waiting to be written (kept while Elasticsearch is down); past it new ones are dropped.",
    )
    serve_role: Literal["search", "reranker"] = Field(
        default="search",
        description="search: the whole API; reranker: a model pool, only the models RRS_POOL_MODELS names "
        "(no Elasticsearch).",
    )
    pool_models: str = Field(
        default="rerank,embed",
        description="What a pool (RRS_SERVE_ROLE=reranker) loads and serves: rerank (the cross-encoder: "
        "/rerank, /v1/rerank, /v2/rerank), embed (the bi-encoder: /embed), or both, comma-separated; "
        "the other's routes answer 404. The search role serves both.",
    )
    serve_host: str = Field(
        default="127.0.0.1", description="Address gunicorn binds (keep loopback behind a reverse proxy)."
    )
    serve_port: int = Field(default=8000, ge=1, le=65535, description="Port gunicorn binds.")
    serve_workers: int = Field(
        default=1, ge=1, description="Gunicorn workers; each holds one model copy (one per GPU)."
    )
    serve_threads: int = Field(
        default=8, ge=1, description="Threads per worker (requests share the worker's rerank queue)."
    )
    serve_timeout_s: int = Field(default=120, ge=1, description="Gunicorn worker timeout (includes model loading).")
    serve_gpus: str = Field(
        default="", description="Comma-separated GPU ids; worker i gets CUDA_VISIBLE_DEVICES=gpus[i % n]."
    )

    @field_validator("pool_models")
    @classmethod
    def _known_models(cls, value: str) -> str:
        wanted = {part.strip().lower() for part in value.split(",") if part.strip()}
        if not wanted or wanted - {"rerank", "embed"}:
            raise ValueError("must name rerank, embed or both (comma-separated)")
        return ",".join(model for model in ("rerank", "embed") if model in wanted)

    @field_validator("api_keys")
    @classmethod
    def _keys_fail_closed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not any(k.strip() for k in value.get_secret_value().split(",")):
            raise ValueError("is set but holds no key; unset RRS_API_KEYS to turn auth off")
        return value


class JudgmentsSettings(BaseModel):
    """Marks made on the search page (``POST /judgments``) and ``rrs judgments export``."""

    judgments_index: str = Field(
        default="rrs-judgments",
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="Index the marks are stored in (one document per query, id and client).",
    )
    judgments_shards: int = Field(default=1, ge=1, description="Judgments index shards.")
    judgments_replicas: int = Field(default=0, ge=0, description="Judgments index replicas.")
    judgments_max_batch: int = Field(
        default=100, ge=1, le=1000, description="Most marks one POST /judgments may carry."
    )
    judgments_max_paragraph_chars: int = Field(
        default=20_000, ge=1, description="Longest pasted paragraph a mark may carry (the rerank tab's paragraphs)."
    )
    judgments_test_share: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of judged queries the export puts in qrels/test.tsv (by query hash).",
    )


class KibanaSettings(BaseModel):
    """``rrs kibana import`` (rrs/kibana.py)."""

    kibana_url: str = Field(
        default="http://localhost:5601",
        validation_alias=_env("KIBANA_URL"),
        description="Kibana base URL for importing the saved objects in es_mappings/kibana/.",
    )
    kibana_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("KIBANA_API_KEY"),
        description="Encoded API key (sent as 'Authorization: ApiKey ...'); wins over user/password.",
    )
    kibana_username: str | None = Field(
        default=None,
        validation_alias=_env("KIBANA_USERNAME"),
        description="Basic-auth user; default: ES_USERNAME (Kibana authenticates against Elasticsearch).",
    )
    kibana_password: SecretStr | None = Field(
        default=None,
        validation_alias=_env("KIBANA_PASSWORD"),
        description="Basic-auth password (with KIBANA_USERNAME; both unset: ES_USERNAME/ES_PASSWORD).",
    )
    kibana_space: str | None = Field(
        default=None, pattern=r"^[a-z0-9_-]+$", description="Kibana space id; unset = the default space."
    )
    kibana_request_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one Kibana request.")

    @field_validator("kibana_url")
    @classmethod
    def _kibana_url_has_scheme(cls, value: str) -> str:
        if not value:
            raise ValueError("must start with http:// or https://")
        return _http_url(value)

    @model_validator(mode="after")
    def _kibana_auth_is_complete(self):
        _both_or_neither(self.kibana_username, self.kibana_password, "KIBANA_USERNAME and KIBANA_PASSWORD")
        return self


# RRS_TRAIN_RECIPE=strong: the reranker recipe whose blend held out of sample on SciFact (cross-fitted
# lower bound +0.0018, +0.022 nDCG@10 on test; bench/README.md, "GPU"). Each value stands in for its
# train_* setting where nobody set that one; the fields' own defaults below are the quick recipe.
STRONG_RERANKER_RECIPE: dict[str, object] = {
    "loss": "bce",
    "negatives": 16,
    "negative_sampling": "random",
    "title_queries": 0,
    "max_length": 256,
    "epochs": 3.0,
    "batch_size": 64,
    "learning_rate": 3e-5,
    "cross_fit": True,
}


# The share of judged queries `rrs train-reranker` holds out when it chooses the blend on them (--tune
# without --cross-fit) and nobody set train_eval_fraction. On SciFact with the quick recipe, under the
# served linear fusion: 81 held-out queries (10 %) left the blend inconclusive (lower bound -0.019), 162
# (20 %) confirmed 0.2 / 30 / minmax (+0.004), which gave +0.013 nDCG@10 on test (bench/README.md).
BLEND_HELDOUT_FRACTION = 0.2


class TrainingSettings(BaseModel):
    """``rrs train-reranker`` (training/): mining, the trainer, the held-out evaluation."""

    train_recipe: Literal["auto", "quick", "strong"] = Field(
        default="auto",
        description="The reranker's recipe for each train_* setting left unset: strong = bce, 16 random negatives "
        "of ranks 1-100, no title queries, 256 tokens, 3 epochs, batch 64, lr 3e-5, cross-fitted blend (the one "
        "confirmed on SciFact; about 4 min on a GPU, hours on 2 CPU cores); quick = the defaults shown here "
        "(about 40 min on 2 CPU cores); auto = strong on a GPU, quick on CPU.",
    )

    train_base_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Cross-encoder or BERT-like checkpoint (name or path) to fine-tune; "
        "'all-MiniLM-L6-v2' is the packaged offline copy, given a fresh one-label head.",
    )
    train_negatives: int = Field(default=6, ge=0, le=200, description="Mined hard negatives per training query.")
    train_min_rank: int = Field(default=1, ge=1, description="Best hybrid rank a mined negative may have (1-based).")
    train_max_rank: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Worst hybrid rank a mined negative may have (100: the whole window the service reranks).",
    )
    train_title_queries: int = Field(
        default=800,
        ge=0,
        description="Extra training queries made of corpus titles (the title asks for its text); "
        "0 = judged queries only.",
    )
    train_negative_sampling: Literal["top", "random"] = Field(
        default="random",
        description="top: the highest-ranked non-positives; random: a seeded sample of the rank range.",
    )
    train_loss: Literal["bce", "mnrl"] = Field(
        default="bce",
        description="bce: binary cross-entropy on (query, passage, label); mnrl: multiple negatives ranking.",
    )
    train_epochs: float = Field(default=2.0, gt=0, description="Training epochs.")
    train_batch_size: int = Field(default=16, ge=1, le=4096, description="Pairs (bce) or queries (mnrl) per step.")
    train_learning_rate: float = Field(default=5e-5, gt=0, lt=1, description="Peak learning rate.")
    train_warmup_ratio: float = Field(
        default=0.1, ge=0, lt=1, description="Share of steps spent warming the learning rate up."
    )
    train_max_length: int = Field(default=128, ge=16, le=8192, description="Token cap per (query, passage) pair.")
    train_eval_fraction: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Share of training queries held out for evaluation; rrs train-reranker holds out 0.2 "
        "when it chooses the blend on them (--tune without --cross-fit) unless this is set.",
    )
    train_eval_depth: int = Field(
        default=30, ge=2, le=1000, description="Hybrid candidates per held-out query the evaluator reranks."
    )
    train_eval_steps: int | None = Field(
        default=None, ge=1, description="Steps between evaluations; default: 4 per epoch."
    )
    train_early_stopping_patience: int = Field(
        default=3, ge=0, description="Evaluations without improvement before stopping (0 = off)."
    )
    train_seed: int = Field(
        default=42, description="Seeds the split, the negative sample, the head's init and the trainer."
    )
    # `rrs train-reranker --cross-fit` (training/crossfit.py): every judged query scores the blend out of sample
    train_cross_fit: bool = Field(
        default=False, description="Choose the blend on out-of-fold scores of every judged query (+folds trainings)."
    )
    train_cross_fit_folds: int = Field(default=2, ge=2, le=10, description="Folds of the cross-fitted blend.")
    # `rrs train-encoder` (training/encoder.py, encoder_run.py): the bi-encoder; the eval/seed settings above are shared
    train_encoder_base_model: str | None = Field(
        default=None, description="Bi-encoder to fine-tune (name or path); default: RRS_BI_ENCODER."
    )
    train_encoder_epochs: float = Field(default=1.0, gt=0, description="Bi-encoder training epochs.")
    train_encoder_batch_size: int = Field(
        default=32, ge=2, le=4096, description="Rows per step; every other row's passages are in-batch negatives."
    )
    train_encoder_learning_rate: float = Field(default=2e-5, gt=0, lt=1, description="Bi-encoder peak learning rate.")
    train_encoder_negatives: int = Field(default=1, ge=0, le=16, description="Mined hard negatives per row.")
    train_encoder_min_rank: int = Field(default=1, ge=1, description="Best hybrid rank a mined negative may have.")
    train_encoder_max_rank: int = Field(
        default=30, ge=1, le=1000, description="Worst hybrid rank a mined negative may have."
    )
    train_encoder_title_queries: int = Field(default=800, ge=0, description="Extra title queries (0 = judged only).")
    train_encoder_max_seq_length: int | None = Field(
        default=None, ge=16, le=8192, description="Token cap per text while training; default: the model's own."
    )
    train_encoder_mini_batch: int = Field(
        default=16,
        ge=0,
        le=4096,
        description="Texts per forward pass (GradCache: memory bounded, same in-batch "
        "negatives); 0 = the whole batch at once (batch 32 x 256 tokens took 7.8 GB and was OOM-killed here).",
    )


class Settings(
    ElasticsearchSettings,
    LocalNodeSettings,
    IndexSettings,
    ModelSettings,
    IngestSettings,
    RetrievalSettings,
    RerankSettings,
    ServeSettings,
    JudgmentsSettings,
    KibanaSettings,
    TrainingSettings,
    BaseSettings,
):
    """All groups above in one object that reads the environment, validated at start-up;
    a wrong value stops the process with the field's name."""

    model_config = SettingsConfigDict(
        # env_ignore_empty: `RRS_X=` (compose's ${X:-}) means unset; a blank that is not empty fails closed
        env_prefix="RRS_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,
    )

    def group(self, section: type[BaseModel], prefix: str = "") -> dict:
        """The values of one group, keyed by field name less ``prefix``.

        >>> Settings(train_epochs=2).group(TrainingSettings, "train_")["epochs"]
        2.0
        """
        return {name.removeprefix(prefix): getattr(self, name) for name in section.model_fields}


def settings_env(settings: Settings) -> dict[str, str]:
    """The values set on ``settings`` (from the environment or in code) as ``RRS_*`` variables, so a
    child process (``rrs calibrate`` started by the service) reads the same settings (pure)."""
    env = {}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple, dict)):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        env[f"RRS_{name.upper()}"] = text
    return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
