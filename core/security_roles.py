"""The least-privilege roles of rrsearch on a secured cluster, from ``es_mappings/security_roles.json``.

One definition serves the code, the tests and the documentation (docs/operations/security.md):

- ``rrs_reader``: what ``rrs serve`` and ``POST /search`` read (the alias and its versions);
- ``rrs_search_log``: what the search service writes besides (its search-log index);
- ``rrs_writer``: ``rrs ingest`` into an existing alias and ``rrs delete`` (with the ingest lock);
- ``rrs_admin``: ``rrs index create``/``delete``, ``rrs ingest --reindex`` (new versions, the alias
  swap), the ingest-lock, search-log and judgments indexes.

The search service runs with :data:`SEARCH_SERVICE` (reader plus search log) and nothing more.
The JSON names indexes by placeholder; :func:`role_descriptors` fills them in from the settings.

Example::

    descriptors = role_descriptors(Settings(), SEARCH_SERVICE)
    es.security.create_api_key(name="search", role_descriptors=descriptors)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib.resources import files

from rrsearch.core.settings import Settings

ROLES_FILE = "security_roles.json"
READER, SEARCH_LOG, WRITER, ADMIN = "rrs_reader", "rrs_search_log", "rrs_writer", "rrs_admin"
ROLE_NAMES = (READER, SEARCH_LOG, WRITER, ADMIN)
SEARCH_SERVICE = (READER, SEARCH_LOG)  # what `rrs serve` runs with
LOCK_INDEX = "rrs-ingest-locks"  # ingest/lock.py's index (tests/unit/test_security_roles.py keeps them equal)


@cache
def _templates() -> dict:
    body = json.loads(files("rrsearch.es_mappings").joinpath(ROLES_FILE).read_text(encoding="utf-8"))
    body.pop("_comment", None)
    return body


def placeholders(settings: Settings, alias: str | None = None) -> dict[str, str]:
    """The index names the role templates refer to, from the settings."""
    return {
        "alias": alias or settings.index_alias,
        "search_log_index": settings.search_log_index,
        "lock_index": LOCK_INDEX,
        "judgments_index": settings.judgments_index,
    }


def role_descriptors(
    settings: Settings, names: Sequence[str] = ROLE_NAMES, *, alias: str | None = None
) -> dict[str, dict]:
    """Role descriptors keyed by role name, index names filled in (``alias``: another alias
    than ``RRS_INDEX_ALIAS``); ready for ``role_descriptors`` of an API key or a roles file."""
    values = placeholders(settings, alias)
    templates = _templates()
    unknown = [name for name in names if name not in templates]
    if unknown:
        raise KeyError(f"no such role: {', '.join(unknown)} (known: {', '.join(templates)})")
    return {name: _fill(templates[name], values) for name in names}


def _fill(template: dict, values: dict[str, str]) -> dict:
    indices = [
        {**entry, "names": list(dict.fromkeys(name.format(**values) for name in entry["names"]))}
        for entry in template.get("indices", [])
    ]
    return {"cluster": list(template.get("cluster", [])), "indices": indices}
