"""Hard negatives from the user's own index, found by the service's own hybrid retrieval.

For each training query the :class:`~service.pipeline.SearchPipeline` runs exactly as in
production (hybrid BM25 + kNN, fused, one hit per document, no rerank); the documents it
ranks within ``[min_rank, max_rank]`` that are not judged positive become negatives. The
reranker so learns to fix the mistakes our first stage makes, on the passages the
service will actually hand it (``title. text`` of the document's best passage).

Before any query runs, :func:`check_index` fails early when the alias is missing or
empty, or when judged documents are not in it.

Example::

    check_index(es, "scifact", queries)
    mined = mine(pipeline, queries, alias="scifact", config=MiningConfig(negatives=8))
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from elasticsearch import Elasticsearch

from rrsearch.core.errors import MiningError
from rrsearch.core.indexes import current_index
from rrsearch.core.passage import passage_text
from rrsearch.core.settings import TrainingSettings
from rrsearch.service.schemas import SearchRequest
from rrsearch.training.judgments import TrainingQuery

DEFAULTS = TrainingSettings()  # the one home of every training default (``RRS_TRAIN_*``)
ID_BATCH = 1000  # ids per terms query when checking or fetching documents


@dataclass(frozen=True)
class MiningConfig:
    """Which first-stage results become negatives (ranks are 1-based, inclusive)."""

    negatives: int = DEFAULTS.train_negatives
    min_rank: int = DEFAULTS.train_min_rank
    max_rank: int = DEFAULTS.train_max_rank
    sampling: Literal["top", "random"] = DEFAULTS.train_negative_sampling
    seed: int = DEFAULTS.train_seed
    title_queries: int = DEFAULTS.train_title_queries  # queries made of document titles (training/pseudo_queries.py)

    def __post_init__(self) -> None:
        if self.min_rank < 1 or self.max_rank < self.min_rank:
            raise ValueError(f"rank range {self.min_rank}..{self.max_rank} is empty (need 1 <= min_rank <= max_rank)")
        if self.negatives < 0:
            raise ValueError("negatives must be >= 0")
        if self.title_queries < 0:
            raise ValueError("title_queries must be >= 0")


@dataclass
class MinedQuery:
    """A training query ready for the trainer: passage texts, not ids."""

    id: str
    query: str
    positives: list[str]
    negatives: list[str]
    ranked: list[str] = field(default_factory=list)  # first-stage order, for held-out evaluation
    mined: int = 0  # how many of ``negatives`` came from the index (the rest were judged)


def normalize_text(text: str) -> str:
    """Whitespace- and case-insensitive form, to recognise a given positive among hits."""
    return " ".join(text.split()).casefold()


def pick_negatives(
    ranked_ids: Sequence[str],
    excluded: set[str],
    *,
    min_rank: int,
    max_rank: int,
    count: int,
    sampling: str,
    rng: random.Random,
) -> list[str]:
    """Ids ranked within ``[min_rank, max_rank]`` that are not ``excluded``, first-stage order kept.

    ``top`` keeps the ``count`` best-ranked; ``random`` a seeded sample of the range (less
    exposed to the unjudged relevant documents that crowd the very top).
    """
    window = [doc for doc in ranked_ids[min_rank - 1 : max_rank] if doc not in excluded]
    if count >= len(window):
        return window
    if sampling == "top":
        return window[:count]
    if sampling == "random":
        chosen = set(rng.sample(range(len(window)), count))
        return [doc for i, doc in enumerate(window) if i in chosen]
    raise ValueError(f"unknown sampling {sampling!r} (top or random)")


def _batches(items: Sequence[str], size: int = ID_BATCH) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def present_parent_ids(es: Elasticsearch, alias: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` have at least one passage in the alias (a terms aggregation)."""
    found: set[str] = set()
    for batch in _batches(sorted(set(ids))):
        response = es.search(
            index=alias,
            size=0,
            query={"terms": {"parent_id": batch}},
            aggs={"ids": {"terms": {"field": "parent_id", "include": batch, "size": len(batch)}}},
        )
        found.update(bucket["key"] for bucket in response["aggregations"]["ids"]["buckets"])
    return found


def first_passages(es: Elasticsearch, alias: str, ids: Iterable[str]) -> dict[str, str]:
    """Parent id -> the text the reranker reads for its first passage (lowest chunk)."""
    return {parent: passage_text(source) for parent, source in first_sources(es, alias, ids).items()}


def first_sources(es: Elasticsearch, alias: str, ids: Iterable[str]) -> dict[str, dict]:
    """Parent id -> title and text of its first passage (lowest chunk)."""
    sources: dict[str, dict] = {}
    for batch in _batches(sorted(set(ids))):
        response = es.search(
            index=alias,
            size=len(batch),
            query={"terms": {"parent_id": batch}},
            collapse={"field": "parent_id"},
            sort=[{"chunk": {"order": "asc", "unmapped_type": "integer"}}],
            source={"includes": ["parent_id", "title", "text"]},
        )
        for hit in response["hits"]["hits"]:
            sources[hit["_source"].get("parent_id") or hit["_id"]] = hit["_source"]
    return sources


def check_index(
    es: Elasticsearch, alias: str, queries: Sequence[TrainingQuery], *, skip_missing: bool = False
) -> set[str]:
    """Fail early unless the alias exists, holds passages and holds every judged document.

    With ``skip_missing`` the ids that are absent are returned instead of raising (the
    caller drops those judgments and says how many).
    """
    if current_index(es, alias) is None:
        if es.indices.exists(index=alias):
            raise MiningError(f"{alias!r} is a concrete index, not an alias of `rrs ingest`; pass the alias")
        raise MiningError(f"no index behind alias {alias!r}: ingest the corpus first (rrs ingest ... --index {alias})")
    count = es.count(index=alias)["count"]
    if count == 0:
        raise MiningError(f"alias {alias!r} is empty: ingest the corpus first (rrs ingest ... --index {alias})")
    judged = {doc for query in queries for doc in (*query.positive_ids, *query.negative_ids)}
    missing = judged - present_parent_ids(es, alias, judged)
    if missing and not skip_missing:
        examples = ", ".join(sorted(missing)[:5])
        raise MiningError(
            f"{len(missing)} of {len(judged)} judged document id(s) are not in alias {alias!r} "
            f"(e.g. {examples}); ingest the same corpus the judgments refer to, or pass --skip-missing"
        )
    return missing


def drop_missing(queries: Sequence[TrainingQuery], missing: set[str]) -> list[TrainingQuery]:
    """The queries with absent documents removed; queries left without a positive go."""
    kept = []
    for query in queries:
        positives = [doc for doc in query.positive_ids if doc not in missing]
        negatives = [doc for doc in query.negative_ids if doc not in missing]
        trimmed = TrainingQuery(query.id, query.text, positives, negatives, query.positive_texts, query.negative_texts)
        if trimmed.has_positive:
            kept.append(trimmed)
    return kept


def search_request(query: str, *, depth: int, candidates: int) -> SearchRequest:
    """The first stage as the service runs it: hybrid, fused, one hit per document, no rerank."""
    return SearchRequest(
        query=query, top_k=depth, candidates=candidates, mode="hybrid", rerank=False, collapse=True, highlight=False
    )


def mine_one_query(pipeline, text: str, *, depth: int) -> list:
    """The first stage's hits for ``text``, ``depth`` deep (one per document)."""
    candidates = max(pipeline.settings.default_candidates, depth)
    return pipeline.search(search_request(text, depth=depth, candidates=candidates)).hits


def mine(
    pipeline,
    queries: Sequence[TrainingQuery],
    *,
    config: MiningConfig,
    depth: int | None = None,
    es: Elasticsearch | None = None,
    progress: bool = True,
) -> list[MinedQuery]:
    """Positives and hard negatives (as passage texts) for every query.

    ``pipeline`` is a :class:`~service.pipeline.SearchPipeline` whose settings name the
    alias; ``depth`` (>= ``max_rank``) is how far each first-stage list is kept, for the
    held-out evaluation. Judged negatives come first, then mined ones up to ``negatives``.
    """
    from tqdm import tqdm

    es = es or pipeline.es
    alias = pipeline.settings.index_alias
    depth = max(depth or 0, config.max_rank)
    rng = random.Random(config.seed)
    judged_ids = {doc for query in queries for doc in (*query.positive_ids, *query.negative_ids)}
    texts = first_passages(es, alias, judged_ids) if judged_ids else {}
    mined: list[MinedQuery] = []
    for query in tqdm(queries, desc="mine negatives", unit=" queries", disable=not progress, dynamic_ncols=True):
        hits = mine_one_query(pipeline, query.text, depth=depth)
        hit_texts = {hit.parent_id: passage_text({"title": hit.title, "text": hit.text}) for hit in hits}
        ranked_ids = [hit.parent_id for hit in hits]
        given = {normalize_text(text) for text in query.positive_texts}
        excluded = set(query.positive_ids) | set(query.negative_ids)
        excluded |= {hit.parent_id for hit in hits if given and _matches(hit.text, given)}
        picked = pick_negatives(
            ranked_ids,
            excluded,
            min_rank=config.min_rank,
            max_rank=config.max_rank,
            count=config.negatives,
            sampling=config.sampling,
            rng=rng,
        )
        # Given texts are the positives (their ids only keep them out of the negatives); a
        # positive known by id reads as the first stage found it (its best passage), else
        # as its first passage.
        positives = list(query.positive_texts) or [hit_texts.get(doc) or texts[doc] for doc in query.positive_ids]
        judged_negatives = [hit_texts.get(doc) or texts[doc] for doc in query.negative_ids] + list(query.negative_texts)
        mined.append(
            MinedQuery(
                id=query.id,
                query=query.text,
                positives=_unique(positives),
                negatives=_unique(judged_negatives + [hit_texts[doc] for doc in picked]),
                ranked=[hit_texts[doc] for doc in ranked_ids],
                mined=len(picked),
            )
        )
    return mined


def _matches(hit_body: str, given: set[str]) -> bool:
    """A hit is a given positive when one text contains the other (a passage of the
    positive document, or the positive quoted inside a longer passage)."""
    body = normalize_text(hit_body)
    return bool(body) and any(text in body or body in text for text in given)


def _unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))  # first occurrences, in order
