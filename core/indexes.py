"""Versioned indexes behind an alias: create, find, swap atomically, drop.

Searches always go to the alias; a new index version is built beside the old one and the
alias moves in one ``_aliases`` call, so readers never see a half-built index.

Example::

    name = create_versioned_index(es, "docs", body)   # docs-v20261126-193000-123456
    point_alias(es, "docs", name)                      # atomic; old versions kept
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from elasticsearch import Elasticsearch, NotFoundError

from rrsearch.core.errors import IndexMissing
from rrsearch.core.es_client import server_version
from rrsearch.core.mappings import render_passage_index
from rrsearch.core.settings import Settings

VERSION_SUFFIX = re.compile(r"-v\d{8}-\d{6}-\d{6}$")


def version_name(alias: str, now: datetime | None = None) -> str:
    """A new, sortable index name for ``alias`` (``<alias>-vYYYYMMDD-HHMMSS-micro``)."""
    now = now or datetime.now(UTC)
    return f"{alias}-v{now:%Y%m%d-%H%M%S-%f}"


def is_version_of(alias: str, index: str) -> bool:
    return index.startswith(f"{alias}-v") and bool(VERSION_SUFFIX.search(index))


def detect_analyzer(es: Elasticsearch, wanted: str) -> str:
    """``wanted``, resolving 'auto' to 'english' when the node has it, else 'standard'."""
    if wanted != "auto":
        return wanted
    try:
        es.indices.analyze(analyzer="english", text="probe")
        return "english"
    except Exception:  # noqa: BLE001 -- the node lacks analysis-common
        return "standard"


def passage_index_body(
    es: Elasticsearch, settings: Settings, *, dims: int, model: str, encoder_meta: dict | None = None
) -> dict:
    """The passage index body for this cluster and these settings."""
    return render_passage_index(
        dims=dims,
        model=model,
        similarity=settings.vector_similarity,
        analyzer=detect_analyzer(es, settings.analyzer),
        index_type=settings.vector_index_type,
        m=settings.hnsw_m,
        ef_construction=settings.hnsw_ef_construction,
        shards=settings.number_of_shards,
        replicas=settings.number_of_replicas,
        server_version=server_version(es),
        encoder_meta=encoder_meta,
    )


def create_versioned_index(es: Elasticsearch, alias: str, body: dict) -> str:
    """Create a new version of ``alias``'s index (not yet behind the alias)."""
    name = version_name(alias)
    es.indices.create(index=name, settings=body.get("settings"), mappings=body.get("mappings"))
    return name


def current_index(es: Elasticsearch, alias: str) -> str | None:
    """The index the alias points at, or None when the alias doesn't exist."""
    try:
        indices = list(es.indices.get_alias(name=alias).keys())
    except NotFoundError:
        return None
    if len(indices) != 1:
        raise RuntimeError(f"alias {alias!r} points at {len(indices)} indexes: {sorted(indices)}")
    return indices[0]


def point_alias(es: Elasticsearch, alias: str, index: str) -> None:
    """Move ``alias`` to ``index`` in one atomic call (removing it from any other index)."""
    actions: list[dict] = []
    try:
        for old in es.indices.get_alias(name=alias):
            if old != index:
                actions.append({"remove": {"index": old, "alias": alias}})
    except NotFoundError:
        pass
    actions.append({"add": {"index": index, "alias": alias, "is_write_index": True}})
    es.indices.update_aliases(actions=actions)


def list_versions(es: Elasticsearch, alias: str) -> list[str]:
    """All versioned indexes of ``alias``, oldest first."""
    try:
        names = es.indices.get(index=f"{alias}-v*", expand_wildcards="open,closed")
    except NotFoundError:
        return []
    return sorted(name for name in names if is_version_of(alias, name))


def drop_old_versions(es: Elasticsearch, alias: str, keep: int = 1) -> list[str]:
    """Delete versions not behind the alias, keeping the newest ``keep`` of them."""
    live = current_index(es, alias)
    old = [name for name in list_versions(es, alias) if name != live]
    doomed = old[: max(len(old) - keep, 0)]
    for name in doomed:
        es.indices.delete(index=name)
    return doomed


def ensure_alias(es: Elasticsearch, alias: str, body: dict) -> str:
    """The alias's index, creating a first version and the alias when there is none."""
    existing = current_index(es, alias)
    if existing:
        return existing
    if es.indices.exists(index=alias):
        raise RuntimeError(f"{alias!r} is a concrete index, not an alias; rename it or pick another alias")
    name = create_versioned_index(es, alias, body)
    point_alias(es, alias, name)
    return name


def delete_alias_and_versions(es: Elasticsearch, alias: str) -> list[str]:
    """Remove every version of ``alias`` (and so the alias). Safe when nothing exists."""
    doomed = list_versions(es, alias)
    for name in doomed:
        es.indices.delete(index=name, ignore_unavailable=True)
    return doomed


def index_meta(es: Elasticsearch, alias: str) -> dict:
    """The ``_meta`` of the alias's index (model name, dims, similarity)."""
    index = current_index(es, alias)
    if index is None:
        raise IndexMissing(f"no index behind alias {alias!r}: ingest documents first")
    return es.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {})
