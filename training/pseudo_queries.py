"""Extra training queries from the corpus itself: a document's title asks for its text.

A few hundred judged queries are too few to teach a cross-encoder with a fresh head what
relevance looks like in a domain. Every titled document in the index is one more (query,
positive) pair of the same domain, for free: the title is the query, the document's own
text the positive, and what hybrid retrieval finds for the title (other documents) the
negatives. Titles are left out of every passage of these rows, positives and negatives
alike: with them the model would learn to spot the query copied into the passage.

Documents are drawn seeded, judged documents of the training split first excluded (their
judged queries already speak for them). These queries only ever train: held-out
evaluation and blend tuning stay on the judged queries.

Example::

    extra = pseudo_queries(pipeline, es, "scifact", count=2000, config=MiningConfig(negatives=4),
                           exclude={"4983"})
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from elasticsearch import Elasticsearch

from rrsearch.training.mining import MinedQuery, MiningConfig, first_sources, mine_one_query, pick_negatives

MIN_TITLE_WORDS = 2  # a one-word title ("Introduction", "Abstract") asks for nothing in particular


def titled_documents(es: Elasticsearch, alias: str) -> dict[str, str]:
    """Parent id -> title, for every document with a title of at least ``MIN_TITLE_WORDS``
    words (titles only: the texts of the few drawn are fetched afterwards)."""
    from elasticsearch import helpers

    titles: dict[str, str] = {}
    query = {"query": {"bool": {"filter": [{"exists": {"field": "title"}}]}}, "_source": ["parent_id", "title"]}
    for hit in helpers.scan(es, index=alias, query=query, size=1000):
        title = (hit["_source"].get("title") or "").strip()
        if len(title.split()) >= MIN_TITLE_WORDS:
            titles[hit["_source"].get("parent_id") or hit["_id"]] = title
    return titles


def draw(documents: dict[str, str], count: int, exclude: Iterable[str], seed: int) -> list[str]:
    """``count`` document ids (fewer when fewer are left), seeded, sorted ids first so the
    draw does not depend on the order Elasticsearch returned them in."""
    banned = set(exclude)
    ids = sorted(doc for doc in documents if doc not in banned)
    return random.Random(seed).sample(ids, min(count, len(ids)))


def pseudo_queries(
    pipeline,
    es: Elasticsearch,
    alias: str,
    *,
    count: int,
    config: MiningConfig,
    exclude: Iterable[str] = (),
    progress: bool = True,
) -> list[MinedQuery]:
    """Up to ``count`` title queries with their text as positive and mined negatives (seeded
    by ``config.seed``)."""
    from tqdm import tqdm

    titles = titled_documents(es, alias)
    drawn = draw(titles, count, exclude, config.seed)
    texts = {doc: source.get("text") or "" for doc, source in first_sources(es, alias, drawn).items()}
    rng = random.Random(config.seed)
    out: list[MinedQuery] = []
    for doc in tqdm(drawn, desc="title queries", unit=" queries", disable=not progress, dynamic_ncols=True):
        title, text = titles[doc], texts.get(doc, "")
        hits = mine_one_query(pipeline, title, depth=config.max_rank)
        bodies = {hit.parent_id: hit.text for hit in hits}
        picked = pick_negatives(
            [hit.parent_id for hit in hits],
            {doc},
            min_rank=config.min_rank,
            max_rank=config.max_rank,
            count=config.negatives,
            sampling=config.sampling,
            rng=rng,
        )
        negatives = [bodies[other] for other in picked if bodies[other] != text]
        if text and negatives:
            out.append(
                MinedQuery(id=f"title:{doc}", query=title, positives=[text], negatives=negatives, mined=len(negatives))
            )
    return out
