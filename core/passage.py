"""The passage document: the one place that says what an indexed passage holds.

A source record becomes one or more passages (``ingest/chunking.py``); each is stored as
one Elasticsearch document whose fields match ``es_mappings/passages.json``. Ingest
builds it with :func:`passage_document`, retrieval asks for :data:`SOURCE_FIELDS`, kNN
searches :data:`VECTOR_FIELD`, and the reranker (and reranker training) read
:func:`passage_text`, so the cross-encoder sees the same text at training and at serving.

    >>> passage_text({"title": "Vitamin D", "text": "Deficiency is common."})
    'Vitamin D. Deficiency is common.'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

VECTOR_FIELD = "embedding"  # dense_vector of the bi-encoder's passage embedding
# What a search returns per hit: everything a response shows, nothing it does not (no vector).
SOURCE_FIELDS = ["id", "parent_id", "chunk", "chunk_count", "title", "text", "metadata"]


def passage_text(source: dict) -> str:
    """What the cross-encoder reads for a passage: its title (if any) then its text."""
    title, text = source.get("title") or "", source.get("text") or ""
    return f"{title}. {text}" if title else text


def passage_document(
    *,
    passage_id: str,
    parent_id: str,
    chunk: int,
    chunk_count: int,
    title: str | None,
    text: str,
    metadata: dict[str, Any],
    content_hash: str,
    model: str,
    source: str,
    indexed_at: str,
    vector: Sequence[float],
) -> dict:
    """The ``_source`` of one indexed passage (every field of the passage mapping)."""
    return {
        "id": passage_id,
        "parent_id": parent_id,
        "chunk": chunk,
        "chunk_count": chunk_count,
        "title": title,
        "text": text,
        "metadata": metadata,
        "content_hash": content_hash,
        "model": model,
        "source": source,
        "indexed_at": indexed_at,
        VECTOR_FIELD: list(vector),
    }
