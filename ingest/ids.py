"""Stable identifiers and content hashes (pure functions).

Passage ids are always ``<document id>#<chunk>`` (``doc-7#0`` for a short document), so a
document that grows or shrinks keeps predictable passage ids and its stale tail can be
deleted by id. ``parent_id`` is always the document id; search collapses on it.
The content hash covers everything a stored passage depends on (title, passage text,
metadata, position, prompt): equal hash and model means the stored passage is current
and need not be encoded again.
"""

from __future__ import annotations

import hashlib
import json

# Elasticsearch caps _id at 512 bytes; leave room for "#<chunk>".
MAX_DOC_ID_BYTES = 480


def derive_doc_id(title: str, text: str) -> str:
    """An id for a record that has none, derived from its content (same content, same id)."""
    digest = hashlib.sha256(json.dumps([title, text], ensure_ascii=False).encode()).hexdigest()
    return f"doc-{digest[:24]}"


def passage_id(doc_id: str, chunk: int) -> str:
    """The Elasticsearch ``_id`` of passage ``chunk`` of document ``doc_id``."""
    return f"{doc_id}#{chunk}"


def content_hash(*, title: str, text: str, metadata: dict, chunk: int, chunk_count: int, prompt: str = "") -> str:
    """A hash of what a stored passage (fields and embedding) is made from."""
    payload = json.dumps(
        [title, text, metadata, chunk, chunk_count, prompt], ensure_ascii=False, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]
