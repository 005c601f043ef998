"""Which index an ingest run writes to, and how it is opened and closed.

Two modes:

- **upsert** (the alias exists, no ``--reindex``): write into the alias's current index;
  deterministic ids make a re-run update rather than duplicate.
- **build** (``--reindex``, or the alias does not exist yet): write into a new versioned
  index; the alias moves to it in one atomic call only when the run completed, so searches
  never see a half-built index. The index's ``_meta.ingest`` records ``state: building``
  and a fingerprint of the run; an interrupted build with the same fingerprint is resumed
  instead of starting over.

While bulk indexing, the refresh interval is relaxed; ``close_target`` restores it (and
refreshes once, so the documents are searchable when the command returns).

Example::

    target = open_target(es, alias, body, reindex=True, fingerprint="...", refresh="-1")
    ... bulk into target.index ...
    close_target(es, target, completed=True, keep_old=1)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from elasticsearch import Elasticsearch

from rrsearch.core.encoders import encoder_mismatch
from rrsearch.core.errors import IndexModelMismatch, OperationFailed
from rrsearch.core.indexes import (
    create_versioned_index,
    current_index,
    drop_old_versions,
    list_versions,
    point_alias,
)

BUILDING = "building"
COMPLETE = "complete"


@dataclass
class Target:
    alias: str
    index: str
    mode: str  # "upsert" or "build"
    resumed: bool = False
    restore_refresh: str | None = None
    dropped: list[str] = field(default_factory=list)


def _meta(es: Elasticsearch, index: str) -> dict:
    return es.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {}) or {}


def _set_ingest_meta(es: Elasticsearch, index: str, **values) -> None:
    """Update ``_meta.ingest`` (``_meta`` is replaced as a whole, so merge first)."""
    meta = _meta(es, index)
    meta["ingest"] = {**meta.get("ingest", {}), **values}
    es.indices.put_mapping(index=index, meta=meta)


def find_resumable(es: Elasticsearch, alias: str, fingerprint: str, model: str) -> str | None:
    """The newest unfinished build of ``alias`` made by a run with this fingerprint and model."""
    live = current_index(es, alias)
    for name in reversed(list_versions(es, alias)):
        if name == live:
            return None  # only versions newer than the live one are candidates
        meta = _meta(es, name)
        ingest = meta.get("ingest", {})
        if (
            ingest.get("state") == BUILDING
            and ingest.get("fingerprint") == fingerprint
            and meta.get("bi_encoder") == model
        ):
            return name
    return None


def _relax_refresh(es: Elasticsearch, index: str, interval: str, default: str) -> str:
    """Set the bulk-time refresh interval; return the one to restore afterwards."""
    current = es.indices.get_settings(index=index, name="index.refresh_interval", include_defaults=True)[index]
    value = (
        current.get("settings", {}).get("index", {}).get("refresh_interval")
        or current.get("defaults", {}).get("index", {}).get("refresh_interval")
        or default
    )
    if value == interval:  # left relaxed by a run that was killed: restore the template's value
        value = default
    if value != interval:
        es.indices.put_settings(index=index, settings={"index": {"refresh_interval": interval}})
    return value


def open_target(
    es: Elasticsearch,
    alias: str,
    body: dict,
    *,
    reindex: bool,
    fingerprint: str,
    model: str,
    refresh: str,
    tolerance: float = 0.95,
) -> Target:
    """The index to write to (created or resumed as needed), with refresh relaxed.

    Adding to the live index needs an encoder whose vectors agree with the ones it holds
    (``body``'s ``_meta`` describes ours): otherwise :class:`IndexModelMismatch`."""
    default_refresh = body.get("settings", {}).get("index", {}).get("refresh_interval", "1s")
    live = current_index(es, alias)
    if live is None and es.indices.exists(index=alias):
        raise RuntimeError(f"{alias!r} is a concrete index, not an alias; rename it or pick another alias")
    if live and not reindex:
        why = encoder_mismatch(_meta(es, live), body.get("mappings", {}).get("_meta", {}), tolerance)
        if why:
            raise IndexModelMismatch(f"cannot add to {alias!r}: {why}; ingest with --reindex to rebuild it")
        target = Target(alias, live, "upsert")
    else:
        resumable = find_resumable(es, alias, fingerprint, model)
        if resumable:
            target = Target(alias, resumable, "build", resumed=True)
        else:
            build_body = copy.deepcopy(body)
            meta = build_body.setdefault("mappings", {}).setdefault("_meta", {})
            meta["ingest"] = {"state": BUILDING, "fingerprint": fingerprint}
            build_body.setdefault("settings", {}).setdefault("index", {})["refresh_interval"] = refresh
            target = Target(alias, create_versioned_index(es, alias, build_body), "build")
    target.restore_refresh = _relax_refresh(es, target.index, refresh, default_refresh)
    return target


def close_target(es: Elasticsearch, target: Target, *, completed: bool, keep_old: int = 1) -> None:
    """Restore refresh and refresh once; for a completed build, move the alias, drop old versions."""
    if target.restore_refresh is not None:
        es.indices.put_settings(index=target.index, settings={"index": {"refresh_interval": target.restore_refresh}})
    es.indices.refresh(index=target.index)
    if target.mode == "build" and completed:
        if _meta(es, target.index).get("ingest", {}).get("state") != BUILDING:  # not the index this run created
            raise OperationFailed(
                f"the new version of {target.alias!r} was deleted or replaced while this run wrote to it; "
                "the alias was not moved; run the command again"
            )
        _set_ingest_meta(es, target.index, state=COMPLETE)
        point_alias(es, target.alias, target.index)
        target.dropped = drop_superseded(es, target.alias, target.index, keep=keep_old)


def drop_superseded(es: Elasticsearch, alias: str, live: str, *, keep: int) -> list[str]:
    """After a swap: delete builds older than ``live`` that never completed (abandoned runs),
    then all but the newest ``keep`` complete versions that are no longer live."""
    doomed = []
    for name in list_versions(es, alias):
        if name < live and _meta(es, name).get("ingest", {}).get("state") == BUILDING:
            es.indices.delete(index=name, ignore_unavailable=True)
            doomed.append(name)
    return doomed + drop_old_versions(es, alias, keep=keep)
