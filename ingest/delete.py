"""Delete documents by id: every passage whose ``parent_id`` is one of the ids.

Example::

    deleted = delete_documents(es, "docs", ["doc-1", "doc-2"])   # passages removed
"""

from __future__ import annotations

from collections.abc import Iterable

from elasticsearch import Elasticsearch

from service.indexes import IndexMissing, current_index

IDS_PER_REQUEST = 1000  # well under index.max_terms_count (65,536)


def delete_documents(es: Elasticsearch, alias: str, doc_ids: Iterable[str]) -> int:
    """Remove the passages of ``doc_ids`` from the alias's index; returns how many went.

    One refresh at the end so a search right after no longer finds them.
    """
    index = current_index(es, alias)
    if index is None:
        raise IndexMissing(f"no index behind alias {alias!r}")
    ids = list(dict.fromkeys(str(i) for i in doc_ids))
    deleted = 0
    for start in range(0, len(ids), IDS_PER_REQUEST):
        chunk = ids[start : start + IDS_PER_REQUEST]
        response = es.delete_by_query(index=index, query={"terms": {"parent_id": chunk}},
                                      conflicts="proceed", refresh=False, slices="auto")
        deleted += int(response.get("deleted", 0))
    es.indices.refresh(index=index)
    return deleted
