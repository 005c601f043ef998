"""One search, stage by stage: the Retrieve & Re-Rank flow in the order it runs.

    validate limits -> resolve index (alias -> version, filterable fields)
      -> [embed query] -> BM25 + kNN in one _msearch -> fuse (RRF | linear)
         (or, RRS_RETRIEVAL_PATH=retrievers: one _search that the plugin fuses on the node)
      -> rerank the top `candidates` (cross-encoder, time budget, a depth shared among the searches in flight)
      -> collapse to one hit per parent (MaxP) -> page through the cached window

Usable without Flask (the evaluation command drives it directly)::

    pipeline = SearchPipeline(settings, es, bi_encoder, reranker)
    response = pipeline.search(SearchRequest(query="vitamin d deficiency", top_k=10))
    [hit.id for hit in response.hits]
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from elasticsearch import Elasticsearch, NotFoundError

from rrsearch.core.encoders import embedding_dims, encode_query, encoder_identity, encoder_mismatch, model_label
from rrsearch.core.errors import IndexMissing, IndexModelMismatch, RerankOverloaded, RerankTimeout
from rrsearch.core.passage import passage_text
from rrsearch.core.settings import Settings
from rrsearch.service import fusion
from rrsearch.service.blend import BlendConfig, blend
from rrsearch.service.blend_policy import BlendPolicy, ServedBlend, for_request
from rrsearch.service.retrieval import (
    Candidate,
    bm25_body,
    filter_clauses,
    filterable_fields,
    fused_body,
    knn_body,
    msearch,
    parse_fields,
    search,
    search_preference,
)
from rrsearch.service.schemas import (
    Blend,
    Fusion,
    Hit,
    Models,
    SearchRequest,
    SearchResponse,
    Stages,
    StageScore,
    Timings,
    check_limits,
)
from rrsearch.service.window_cache import WindowCache, window_key

log = logging.getLogger("rrs.search")


@dataclass
class IndexInfo:
    """What one alias resolves to right now (cached for ``alias_cache_s``)."""

    version: str  # the concrete index name(s): part of the window-cache key
    filter_fields: dict[str, str]  # full field name -> Elasticsearch type
    meta: dict
    expires: float


@dataclass
class Window:
    """The ranked, collapsed hits that ``from``/``top_k`` page through."""

    hits: list[Hit]
    reranked: bool
    reranked_count: int
    degraded: str | None
    timings: Timings = field(default_factory=Timings)
    partial: bool = False


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class InFlight:
    """How many searches are between arrival and the end of their rerank right now: the
    concurrency the rerank stage splits its budget among (see ``adaptive_depth``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> InFlight:
        with self._lock:
            self.count += 1
        return self

    def __exit__(self, *_exc) -> None:
        with self._lock:
            self.count -= 1


FUSION_META_KEY = "fusion"  # the index _meta entry `rrs eval --tune-fusion` writes (evaluation/fusion_tuning.py)


def index_fusion(meta: dict) -> Fusion | None:
    """The fusion an index's ``_meta`` was tuned to, or None (a malformed entry is ignored)."""
    entry = meta.get(FUSION_META_KEY)
    chosen = entry.get("chosen") if isinstance(entry, dict) else None
    if not isinstance(chosen, dict):
        return None
    try:
        return Fusion(**chosen)
    except ValueError:
        return None


class SearchPipeline:
    """The stages of a search over one Elasticsearch client and the loaded models."""

    def __init__(self, settings: Settings, es: Elasticsearch, bi_encoder, reranker=None, *, metrics=None):
        self.settings = settings
        self.es = es
        self.bi_encoder = bi_encoder
        self.reranker = reranker
        self.metrics = metrics
        self.fields = parse_fields(settings.bm25_fields)
        self.bi_encoder_label = model_label(settings.bi_encoder)
        self.encoder_identity = encoder_identity(bi_encoder, self.bi_encoder_label)
        self.dims = embedding_dims(bi_encoder)
        self.windows = WindowCache(settings.window_cache_size, settings.window_cache_ttl_s, settings.window_cache_bytes)
        self._indexes: dict[str, IndexInfo] = {}
        self._embed = lru_cache(maxsize=settings.query_embedding_cache)(self._embed_uncached)
        self.reranking = InFlight()  # searches that will want the reranker
        self.policy = BlendPolicy(reranker, settings)  # which blend each index is served with

    # --- public -----------------------------------------------------------------------
    @property
    def models(self) -> Models:
        return Models(
            bi_encoder=self.bi_encoder_label,
            cross_encoder=self.reranker.name if self.reranker is not None else None,
        )

    def search(self, request: SearchRequest) -> SearchResponse:
        """Run one search; raises IndexMissing, FilterError, LimitError, SearchRejected,
        IndexModelMismatch, or an Elasticsearch connection error (the app maps them)."""
        started = time.perf_counter()
        check_limits(request, self.settings)
        index = request.index or self.settings.index_alias
        info = self.index_info(index)
        clauses = filter_clauses(request.filters, info.filter_fields)
        depth = request.candidates or self.settings.default_candidates
        if "fusion" not in request.model_fields_set and (tuned := index_fusion(info.meta)) is not None:
            request = request.model_copy(update={"fusion": tuned})  # the index's own choice, unless asked
        served = self.served_blend(request, info.version, index)
        blending = served.config
        key = window_key(
            query=request.query,
            mode=request.mode,
            fusion=request.fusion.model_dump(),
            filters=clauses,
            depth=depth,
            collapse=request.collapse,
            highlight=request.highlight,
            rerank=request.rerank,
            version=info.version,
            models=self.models.model_dump(),
            rerank_enabled=self.settings.rerank_enabled,
            blend=asdict(blending),
        )
        window = self.windows.get(key)
        if window is not None and window.degraded and request.from_ == 0:
            window = None  # a first page retries a degraded window; later pages keep it (stable paging)
        cached = window is not None
        if window is None:
            with self.reranking if request.rerank else nullcontext():
                window = self._compute_window(request, index, clauses, depth, blending)
            self.windows.put(key, window, size=window_bytes(window.hits))
        timings = Timings() if cached else window.timings.model_copy()
        timings.total = _ms(started)
        return SearchResponse(
            query=request.query,
            index=index,
            mode=request.mode,
            hits=window.hits[request.from_ : request.from_ + request.top_k],
            from_=request.from_,
            top_k=request.top_k,
            window=len(window.hits),
            reranked=window.reranked,
            reranked_count=window.reranked_count,
            degraded=window.degraded,
            partial=window.partial,
            cached=cached,
            blend=Blend(
                weight=blending.weight,
                depth=window.reranked_count,
                normalization=blending.normalization,
                source=served.source,
                detail=served.detail,
            )
            if request.rerank and (window.reranked or blending.weight == 0)
            else None,
            timings_ms=timings,
            models=self.models,
            fusion=request.fusion if request.mode == "hybrid" else None,
        )

    def served_blend(self, request: SearchRequest, index_version: str, alias: str) -> ServedBlend:
        """The serving policy's blend for this index (service/blend_policy.py), with the
        request's own settings on top."""
        return for_request(
            self.policy.served(index_version, alias),
            request.rerank_weight,
            request.rerank_depth,
            request.rerank_normalization,
        )

    def index_info(self, index: str, *, fresh: bool = False) -> IndexInfo:
        """The alias's concrete index, filterable fields and ``_meta`` (checked against the
        loaded bi-encoder), from one ``GET <alias>/_mapping``, reused for a few seconds
        unless ``fresh`` (readiness must see the node as it is now)."""
        now = time.monotonic()
        info = self._indexes.get(index)
        if info is not None and info.expires > now and not fresh:
            return info
        try:
            mappings = self.es.options(request_timeout=self.settings.search_timeout_s).indices.get_mapping(index=index)
        except NotFoundError as exc:
            raise IndexMissing(f"no index or alias named {index!r}") from exc
        fields: dict[str, str] | None = None
        meta: dict = {}
        for name, body in sorted(mappings.items()):
            mapping = body.get("mappings", {})
            meta = mapping.get("_meta", {})
            self._check_model(name, meta)
            found = filterable_fields(mapping.get("properties", {}))
            fields = found if fields is None else {k: v for k, v in fields.items() if found.get(k) == v}
        info = IndexInfo(
            version=",".join(sorted(mappings)),
            filter_fields=fields or {},
            meta=meta,
            expires=now + self.settings.alias_cache_s,
        )
        self._indexes[index] = info
        return info

    # --- stages -----------------------------------------------------------------------
    def _compute_window(
        self, request: SearchRequest, index: str, clauses: list[dict], depth: int, blending: BlendConfig
    ) -> Window:
        timings = Timings()
        lists, candidates, partial = self._retrieve(request, index, clauses, depth, timings)

        started = time.perf_counter()
        fused = self._fuse(request, lists)[:depth]
        timings.fuse = _ms(started)

        started = time.perf_counter()
        rerank_scores, degraded = self._rerank(request, fused, candidates, blending)
        timings.rerank = _ms(started) if request.rerank else 0.0

        ranked = self._order(fused, rerank_scores, blending)
        if request.collapse:
            ranked = self._collapse(ranked, candidates)
        positions = {name: _positions(ranked_list) for name, ranked_list in lists.items()}
        positions["fused"] = _positions(fused)
        hits = [self._hit(candidates[doc], score, positions, rerank, blended) for doc, score, rerank, blended in ranked]
        reasons = [reason for reason in ("partial_results" if partial else None, degraded) if reason]
        if self.metrics is not None:
            for reason in reasons:
                self.metrics.degraded.labels(reason=reason).inc()
        return Window(
            hits=hits,
            reranked=rerank_scores is not None,
            reranked_count=len(rerank_scores or []),
            degraded=",".join(reasons) or None,
            timings=timings,
            partial=partial,
        )

    def _embed_uncached(self, query: str) -> tuple[float, ...]:
        vector = encode_query(self.bi_encoder, query, prompt=self.settings.query_prompt)
        return tuple(float(x) for x in vector)

    def _retrieve(self, request, index, clauses, depth, timings):
        """BM25 and/or kNN in one round trip: ranked (id, score) lists (one ``fused`` list when the
        node fuses them), the passages, and whether some shards did not answer (the lists then
        come from the others)."""
        bodies: dict[str, dict] = {}
        if request.mode in ("bm25", "hybrid"):
            bodies["bm25"] = bm25_body(
                request.query,
                self.fields,
                clauses,
                size=depth,
                highlight=request.highlight,
                tie_breaker=self.settings.bm25_tie_breaker,
            )
        if request.mode in ("knn", "hybrid"):
            started = time.perf_counter()
            vector = list(self._embed(request.query))
            timings.embed_query = _ms(started)
            bodies["knn"] = knn_body(
                vector,
                clauses,
                size=depth,
                num_candidates=self.settings.knn_num_candidates,
                highlight_text=request.query if request.highlight else None,
                highlight_fields=self.fields,
            )
        started = time.perf_counter()
        preference = search_preference(request.query)
        if len(bodies) == 2 and self.settings.retrieval_path == "retrievers":
            method = request.fusion
            body = fused_body(
                bodies["bm25"],
                bodies["knn"],
                method=method.method,
                size=depth,
                rrf_k=method.k or self.settings.rrf_k,
                weight=method.weight,
                normalization=method.normalization,
            )
            bodies = {"fused": body}  # one list, already fused: _fuse passes it through
            results = [search(self.es, index, body, timeout_s=self.settings.search_timeout_s, preference=preference)]
        else:
            results = msearch(
                self.es, index, list(bodies.values()), timeout_s=self.settings.search_timeout_s, preference=preference
            )
        timings.search = _ms(started)
        lists: dict[str, list[tuple[str, float]]] = {}
        candidates: dict[str, Candidate] = {}
        for name, result in zip(bodies, results):
            if name in ("bm25", "knn"):
                setattr(timings, name, result.took_ms)
            lists[name] = [(hit.id, hit.score) for hit in result.hits]
            for hit in result.hits:
                seen = candidates.setdefault(hit.id, hit)
                if not seen.highlight and hit.highlight:
                    seen.highlight = hit.highlight
        return lists, candidates, any(result.shards_failed for result in results)

    def _fuse(self, request: SearchRequest, lists: dict[str, list[tuple[str, float]]]) -> list[tuple[str, float]]:
        if len(lists) == 1:
            return next(iter(lists.values()))
        return fusion.fuse(lists, request.fusion, default_k=self.settings.rrf_k)

    def _rerank(self, request, fused, candidates, blending: BlendConfig) -> tuple[list[float] | None, str | None]:
        """Cross-encoder scores of the first ``blending.depth`` fused candidates, or None and why not.
        A blend weight of 0 gives the cross-encoder no say: it is not run."""
        if not request.rerank or blending.weight == 0:
            return None, None
        wanted = blending.depth
        if not self.settings.rerank_enabled:
            return None, "rerank_disabled"
        if self.reranker is None:
            return None, "reranker_unavailable"
        if not fused:
            return [], None
        budget_s = self.settings.rerank_timeout_ms / 1000.0
        asked = min(wanted or len(fused), len(fused))
        passages = [passage_text(candidates[doc].source) for doc, _ in fused[:asked]]
        try:
            scores = self.reranker.rerank_top(
                request.query, passages, budget_s=budget_s, concurrent=self.reranking.count
            )
        except RerankTimeout:
            return None, "rerank_timeout"
        except RerankOverloaded:
            return None, "rerank_overloaded"
        except Exception:  # any other failure of the model (or its server): serve the fused order
            log.exception("rerank failed; serving the fused order")
            return None, "rerank_failed"
        return scores, ("rerank_depth_reduced" if len(scores) < asked else None)

    @staticmethod
    def _order(
        fused, rerank_scores, blending: BlendConfig
    ) -> list[tuple[str, float, StageScore | None, StageScore | None]]:
        """Reranked candidates by their final score (ties keep fused order), then the rest fused.

        The final score is the cross-encoder's (weight 1), or its blend with the fused score."""
        if rerank_scores is None:
            return [(doc, score, None, None) for doc, score in fused]
        n = len(rerank_scores)
        ce_rank = {i: rank for rank, i in enumerate(sorted(range(n), key=lambda i: -rerank_scores[i]), start=1)}
        plain = blending.weight >= 1.0
        final = (
            list(rerank_scores)
            if plain
            else blend(
                [score for _, score in fused[:n]],
                rerank_scores,
                weight=blending.weight,
                normalization=blending.normalization,
            )
        )
        head = sorted(range(n), key=lambda i: -final[i])  # stable: ties keep fused order
        ranked = [
            (
                fused[i][0],
                float(final[i]),
                StageScore(rank=ce_rank[i], score=float(rerank_scores[i])),
                None if plain else StageScore(rank=rank, score=float(final[i])),
            )
            for rank, i in enumerate(head, start=1)
        ]
        return ranked + [(doc, score, None, None) for doc, score in fused[n:]]

    @staticmethod
    def _collapse(ranked, candidates):
        """One hit per parent document: its first (= best-scored, MaxP) passage."""
        seen: set[str] = set()
        kept = []
        for item in ranked:
            parent = candidates[item[0]].source.get("parent_id") or item[0]
            if parent not in seen:
                seen.add(parent)
                kept.append(item)
        return kept

    @staticmethod
    def _hit(
        candidate: Candidate, score: float, positions, rerank: StageScore | None, blended: StageScore | None = None
    ) -> Hit:
        stage = {name: positions[name].get(candidate.id) for name in ("bm25", "knn", "fused") if name in positions}
        source = candidate.source
        fragments = candidate.highlight.get("text")
        return Hit(
            id=source.get("id") or candidate.id,
            parent_id=source.get("parent_id") or candidate.id,
            chunk=source.get("chunk"),
            title=source.get("title"),
            text=source.get("text", ""),
            snippet=" … ".join(fragments) if fragments else None,
            metadata=source.get("metadata") or {},
            score=score,
            stages=Stages(
                bm25=stage.get("bm25"), knn=stage.get("knn"), fused=stage.get("fused"), rerank=rerank, blended=blended
            ),
        )

    def _check_model(self, index: str, meta: dict) -> None:
        """Refuse an index built by another bi-encoder (or one whose vectors drift too far from
        ours on another backend or precision): its vectors would not match ours."""
        why = encoder_mismatch(meta, self.encoder_identity, self.settings.bi_encoder_tolerance)
        if why:
            raise IndexModelMismatch(
                f"index {index!r} cannot be searched: {why} (RRS_BI_ENCODER, "
                f"RRS_BI_ENCODER_BACKEND); use the same encoder or reindex"
            )
        dims = meta.get("dims")
        if dims and int(dims) != self.dims:
            raise IndexModelMismatch(
                f"index {index!r} holds {dims}-dimensional vectors, but bi-encoder "
                f"{self.bi_encoder_label!r} makes {self.dims}-dimensional ones"
            )


def window_bytes(hits: list[Hit]) -> int:
    """About what a window holds in memory: its texts (UTF-8 worst case) plus a fixed share per hit."""
    return sum(4 * (len(hit.text) + len(hit.title or "") + len(hit.snippet or "")) + 1024 for hit in hits)


def _positions(ranked: list[tuple[str, float]]) -> dict[str, StageScore]:
    """doc id -> its 1-based rank and score in one stage's list."""
    return {doc: StageScore(rank=rank, score=score) for rank, (doc, score) in enumerate(ranked, start=1)}
