"""Delete documents by id: every passage whose ``parent_id`` is one of the ids.

Uses a scan (scroll) plus bulk deletes rather than ``_delete_by_query``, which lives in
the reindex module that minimal clusters (like the integ-test distribution) lack.

Example::

    deleted = delete_documents(es, "docs", ["doc-1", "doc-2"])   # passages removed
"""

from __future__ import annotations

from collections.abc import Iterable

from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk, scan

from rrsearch.core.errors import IndexMissing
from rrsearch.core.indexes import current_index

IDS_PER_QUERY = 1000  # well under index.max_terms_count (65,536)


def delete_documents(es: Elasticsearch, alias: str, doc_ids: Iterable[str]) -> int:
    """Remove the passages of ``doc_ids`` from the alias's index; returns how many went."""
    index = current_index(es, alias)
    if index is None:
        raise IndexMissing(f"no index behind alias {alias!r}")
    return delete_parents(es, index, doc_ids)


def delete_parents(es: Elasticsearch, index: str, doc_ids: Iterable[str]) -> int:
    """Remove every passage of ``doc_ids`` from ``index``; returns how many went.

    Refreshes before (to see passages a running ingest has not made visible yet) and
    after (so a search right after no longer finds them).
    """
    ids = list(dict.fromkeys(str(i) for i in doc_ids))
    if not ids:
        return 0
    es.indices.refresh(index=index)
    deleted = 0
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start : start + IDS_PER_QUERY]
        hits = scan(es, index=index, query={"query": {"terms": {"parent_id": chunk}}, "_source": False})
        actions = ({"_op_type": "delete", "_index": index, "_id": hit["_id"]} for hit in hits)
        done, _ = bulk(es, actions, raise_on_error=False, stats_only=True)
        deleted += done
    es.indices.refresh(index=index)
    return deleted
