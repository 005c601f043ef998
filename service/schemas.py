"""Request and response models of the search API (pydantic).

These classes validate every request (unknown fields, wrong types and out-of-range
values are errors naming the field) and are the source of ``/openapi.json``, so the
documentation cannot drift from what the server accepts. Limits that depend on the
settings (``top_k``, ``candidates``, query length) are checked by :func:`check_limits`.

Example::

    >>> req = SearchRequest.model_validate({"query": "vitamin d", "mode": "bm25"})
    >>> req.top_k, req.fusion.method
    (10, 'rrf')
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rrsearch.core.errors import LimitError

Scalar = str | int | float | bool


class RangeFilter(BaseModel):
    """A range on a numeric or date field; at least one bound."""

    model_config = ConfigDict(extra="forbid")
    gte: int | float | str | None = None
    gt: int | float | str | None = None
    lte: int | float | str | None = None
    lt: int | float | str | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> RangeFilter:
        if all(v is None for v in (self.gte, self.gt, self.lte, self.lt)):
            raise ValueError("a range needs at least one of gte, gt, lte, lt")
        return self


FilterValue = Scalar | Annotated[list[Scalar], Field(min_length=1)] | RangeFilter


# A character that is not space as Python's str.strip() sees it. JSON Schema's (ECMAScript's) \s
# leaves out the information separators U+001C..U+001F and U+0085, which Python strips: the
# pattern names them, so a schema-valid query is never refused as blank.
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"


def query_not_blank(value: str) -> str:
    """A query of spaces finds nothing: refuse it with a message that says so."""
    if not value.strip():
        raise ValueError("query must contain non-space characters")
    return value


def integral_floats(data: Any, names: tuple[str, ...]) -> Any:
    """``248.0`` is the integer 248 (JSON Schema says so); ``248.5`` and ``"248"`` stay refused."""
    if isinstance(data, dict):
        data = {k: int(v) if k in names and isinstance(v, float) and v.is_integer() else v for k, v in data.items()}
    return data


class Fusion(BaseModel):
    """How BM25 and kNN rankings are combined (see service/fusion.py)."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["rrf", "linear"] = "rrf"
    k: int | None = Field(default=None, ge=1, le=10_000, description="RRF constant; default from settings (60).")
    normalization: Literal["minmax", "zscore"] = "minmax"
    weight: float = Field(default=0.5, ge=0.0, le=1.0, description="linear: kNN's share (0 = BM25 only).")

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        return integral_floats(data, ("k",))


class SearchRequest(BaseModel):
    """``POST /search`` body (``GET /search`` takes the scalar fields as query parameters)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    query: str = Field(
        min_length=1, description="Plain text; never parsed as query syntax.", json_schema_extra={"pattern": NOT_BLANK}
    )  # not blank (checked below, with a clearer message)
    top_k: int = Field(default=10, ge=1, description="Hits to return (at most RRS_MAX_TOP_K).")
    candidates: int | None = Field(
        default=None, ge=1, description="Fused candidates sent to the reranker; default RRS_DEFAULT_CANDIDATES."
    )
    mode: Literal["hybrid", "bm25", "knn"] = Field(
        default="hybrid", description="Which first stage: BM25 and kNN fused, or one of them alone."
    )
    rerank: bool = Field(
        default=True, description="Rerank the candidates with the cross-encoder (false: the fused order)."
    )
    fusion: Fusion = Field(default_factory=Fusion)
    filters: dict[str, FilterValue] = Field(
        default_factory=dict,
        description="metadata field -> value (term), list (any of), or {gte,lte,...} (range); "
        "applied inside both BM25 and kNN.",
    )
    from_: int = Field(
        default=0,
        ge=0,
        alias="from",
        description="Offset into the reranked window (paging); a page past its end is short or empty.",
    )
    collapse: bool = Field(default=True, description="One hit per parent document (its best passage).")
    highlight: bool = Field(default=True, description="Mark the query's terms in each hit's title and text.")
    index: str | None = Field(default=None, description="An alias the server allows; default RRS_INDEX_ALIAS.")
    rerank_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="The cross-encoder's share of a reranked candidate's final score (1 = plain rerank, 0 = the "
        "first stage's order); default: the serving policy's (a judged calibration, else this index's "
        "corpus calibration, else RRS_RERANK_DEFAULT_WEIGHT; `blend.source` says which).",
    )
    rerank_depth: int | None = Field(
        default=None,
        ge=1,
        description="Fused candidates the cross-encoder scores (at most `candidates`); "
        "default: the serving policy's, as for rerank_weight.",
    )
    rerank_normalization: Literal["minmax", "rank"] | None = Field(
        default=None,
        description="How both scores are put on one scale before blending (default: the serving policy's).",
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return query_not_blank(value)

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        return integral_floats(data, ("top_k", "candidates", "from", "from_", "rerank_depth"))

    @field_validator("fusion", mode="before")
    @classmethod
    def _fusion_shorthand(cls, value: Any) -> Any:
        """``"fusion": "linear"`` is shorthand for ``{"method": "linear"}``."""
        return {"method": value} if isinstance(value, str) else value


class StageScore(BaseModel):
    rank: int = Field(description="1-based rank within the stage.")
    score: float


class Stages(BaseModel):
    """Where a hit stood after each stage (null: the stage did not see it or did not run)."""

    bm25: StageScore | None = None
    knn: StageScore | None = None
    fused: StageScore | None = None
    rerank: StageScore | None = None
    blended: StageScore | None = Field(
        default=None, description="Cross-encoder and fused scores mixed (rerank_weight < 1)."
    )


class Hit(BaseModel):
    id: str
    parent_id: str
    chunk: int | None = None
    title: str | None = None
    text: str
    snippet: str | None = Field(default=None, description="Highlighted fragment(s) when highlight is on.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    score: float = Field(description="Final score: rerank score when reranked, else the fused score.")
    stages: Stages


class Timings(BaseModel):
    embed_query: float = 0.0
    search: float = Field(0.0, description="The one _msearch (or fused _search) round trip.")
    bm25: float = Field(0.0, description="BM25 search as timed by Elasticsearch (took).")
    knn: float = Field(0.0, description="kNN search as timed by Elasticsearch (took).")
    fuse: float = 0.0
    rerank: float = 0.0
    total: float = 0.0


class Models(BaseModel):
    bi_encoder: str
    cross_encoder: str | None


class Blend(BaseModel):
    weight: float = Field(description="The cross-encoder's share of the final score (0: not run, 1: plain rerank).")
    depth: int = Field(description="Candidates the cross-encoder reordered.")
    normalization: Literal["minmax", "rank"]
    source: Literal["request", "judgments", "corpus", "default"] = Field(
        description="Who chose this blend: the request; a calibration confirmed on judged queries "
        "(rrs_rerank.json); one confirmed on this index's pseudo-queries (rrs calibrate); or the "
        "conservative default for a model nothing confirmed."
    )
    detail: str = Field(description="The source in words.")


class SearchResponse(BaseModel):
    query: str
    index: str
    mode: str
    hits: list[Hit]
    from_: int = Field(alias="from", serialization_alias="from")
    top_k: int
    window: int = Field(description="Hits in the ranked window that `from` pages through.")
    reranked: bool
    reranked_count: int = Field(description="Candidates the cross-encoder scored.")
    degraded: str | None = Field(
        description="Why a stage was skipped or shortened (comma-separated reasons, e.g. partial_results, "
        "rerank_timeout), else null."
    )
    partial: bool = Field(default=False, description="Some shards did not answer: the hits come from the others.")
    cached: bool = Field(description="Served from the reranked-window cache (paging).")
    blend: Blend | None = Field(default=None, description="How reranked scores were used (null: not reranked).")
    timings_ms: Timings
    models: Models
    fusion: Fusion | None = Field(
        default=None,
        description="How the two lists were fused (hybrid only): the request's, else the index's tuned choice "
        "(`rrs eval --tune-fusion`), else RRF.",
    )

    model_config = ConfigDict(populate_by_name=True)


class ErrorResponse(BaseModel):
    error: str = Field(description="Machine-readable kind, e.g. invalid_request, index_not_found.")
    message: str
    field: str | None = Field(default=None, description="The request field at fault, if any.")


class Readiness(BaseModel):
    ready: bool
    elasticsearch: bool
    index: str
    index_present: bool
    bi_encoder: str | None
    cross_encoder: str | None
    reranker_loaded: bool
    rerank_enabled: bool
    problems: list[str]


def check_limits(request: SearchRequest, settings) -> None:
    """Limits that come from the settings (the schema holds only the fixed ones)."""
    if len(request.query) > settings.max_query_chars:
        raise LimitError("query", f"query is longer than {settings.max_query_chars} characters")
    if request.top_k > settings.max_top_k:
        raise LimitError("top_k", f"top_k must be <= {settings.max_top_k}")
    if request.candidates is not None and request.candidates > settings.max_candidates:
        raise LimitError("candidates", f"candidates must be <= {settings.max_candidates}")


# --- POST /rerank: text-embeddings-inference's request, and Cohere's ------------------------


class CohereDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class RerankRequest(BaseModel):
    """``POST /rerank``: rank ``texts`` (TEI) or ``documents`` (Cohere) for ``query``; no retrieval."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1, json_schema_extra={"pattern": NOT_BLANK}, description="The query to rank the texts for."
    )
    texts: list[str] | None = Field(default=None, min_length=1, description="TEI: the texts to rank.")
    documents: list[str | CohereDocument] | None = Field(
        default=None, min_length=1, description='Cohere: the texts to rank (strings or {"text": ...}).'
    )
    raw_scores: bool = Field(default=False, description="Logits instead of the model's activation (sigmoid).")
    return_text: bool = Field(default=False, description="TEI: include each text in its rank.")
    truncate: bool | None = Field(
        default=None,
        description="Cut pairs longer than the model takes; default false for texts (as TEI), "
        "true for documents (as Cohere). False and too long: 413.",
    )
    truncation_direction: Literal["Right", "Left", "right", "left"] = Field(
        default="Right", description="Which end of a pair too long for the model is cut (with truncate)."
    )
    top_n: int | None = Field(default=None, ge=1, description="Only the best n (Cohere; TEI answers all).")
    return_documents: bool = Field(default=False, description="Cohere: include each document in its result.")
    model: str | None = Field(default=None, description="Cohere clients name a model; the served one answers.")

    @model_validator(mode="before")
    @classmethod
    def _one_list(cls, data: Any) -> Any:
        data = integral_floats(data, ("top_n",))
        if isinstance(data, dict):
            given = [name for name in ("texts", "documents") if name in data]
            if len(given) != 1:
                raise ValueError("give either texts (TEI) or documents (Cohere)")
            if data[given[0]] is None:
                raise ValueError(f"{given[0]} must be a list")
        return data

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return query_not_blank(value)

    @property
    def items(self) -> list[str]:
        if self.texts is not None:
            return self.texts
        return [d if isinstance(d, str) else d.text for d in self.documents or []]

    @property
    def cohere(self) -> bool:
        return self.documents is not None

    @property
    def should_truncate(self) -> bool:
        return self.truncate if self.truncate is not None else self.cohere


class Rank(BaseModel):
    """TEI's answer: one per text, best first."""

    index: int
    score: float
    text: str | None = None


class CohereResult(BaseModel):
    index: int
    relevance_score: float
    document: CohereDocument | None = None


class CohereRerankResponse(BaseModel):
    """Cohere's answer: ``results`` best first (``top_n`` of them)."""

    id: str
    results: list[CohereResult]
    meta: dict[str, Any] = Field(default_factory=dict)


def check_rerank_limits(request: RerankRequest, settings) -> None:
    """Limits that come from the settings."""
    if len(request.query) > settings.max_query_chars:
        raise LimitError("query", f"query is longer than {settings.max_query_chars} characters")
    if len(request.items) > settings.rerank_api_max_texts:
        field = "documents" if request.cohere else "texts"
        raise LimitError(field, f"{field} holds more than {settings.rerank_api_max_texts} items")


# --- POST /judgments: marks made on the search page ----------------------------------------


class JudgmentRequest(BaseModel):
    """One mark: how well document ``id`` (or a pasted ``paragraph``) answers ``query``."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, json_schema_extra={"pattern": NOT_BLANK}, description="The query as searched.")
    grade: Literal[0, 1, 2] = Field(description="2 relevant, 1 partly, 0 not relevant.")
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="A document id of the index (a hit's parent_id); 404 if the index lacks it.",
    )
    paragraph: str | None = Field(
        default=None,
        min_length=1,
        json_schema_extra={"pattern": NOT_BLANK},
        description="Instead of id: a pasted paragraph's text (the rerank tab); its id is derived from the text.",
    )
    index: str | None = Field(default=None, description="An alias the server allows; default RRS_INDEX_ALIAS.")

    @model_validator(mode="before")
    @classmethod
    def _one_target(cls, data: Any) -> Any:
        data = integral_floats(data, ("grade",))
        if isinstance(data, dict):
            given = [name for name in ("id", "paragraph") if name in data]
            if len(given) != 1:
                raise ValueError("give either id (a document of the index) or paragraph (a pasted paragraph's text)")
            if data[given[0]] is None:
                raise ValueError(f"{given[0]} must be a string")
        return data

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return query_not_blank(value)

    @field_validator("grade", mode="before")
    @classmethod
    def _grade_not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # JSON true is not the grade 1
            raise ValueError("grade must be 0, 1 or 2 (a number)")
        return value

    @field_validator("paragraph")
    @classmethod
    def _paragraph_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("paragraph must contain non-space characters")
        return value


class JudgmentBatch(BaseModel):
    """Several marks in one request, stored all or none."""

    model_config = ConfigDict(extra="forbid")

    judgments: list[JudgmentRequest] = Field(min_length=1, description="At most RRS_JUDGMENTS_MAX_BATCH marks.")


class StoredJudgment(BaseModel):
    judgment_id: str = Field(description="The judgments index _id: one per (index, query, id, client).")
    query: str
    query_id: str
    id: str = Field(description="The judged document id, or the paragraph's derived id.")
    kind: Literal["document", "paragraph"]
    grade: int
    client: str = Field(description="Who marked: a fingerprint of the API key, else the client address.")
    index: str
    index_version: str | None = Field(description="The concrete index the alias pointed to for this document.")


class JudgmentsResponse(BaseModel):
    stored: int
    judgments: list[StoredJudgment]


def check_judgment_limits(marks: list[JudgmentRequest], settings, *, batch: bool) -> None:
    """Limits that come from the settings; ``field`` names the mark at fault in a batch."""
    if len(marks) > settings.judgments_max_batch:
        raise LimitError("judgments", f"judgments holds more than {settings.judgments_max_batch} marks")
    for number, mark in enumerate(marks):
        where = f"judgments.{number}." if batch else ""
        if len(mark.query) > settings.max_query_chars:
            raise LimitError(f"{where}query", f"query is longer than {settings.max_query_chars} characters")
        if mark.paragraph is not None and len(mark.paragraph) > settings.judgments_max_paragraph_chars:
            raise LimitError(
                f"{where}paragraph", f"paragraph is longer than {settings.judgments_max_paragraph_chars} characters"
            )
