"""Where a local reranker pool listens, so that the local node's ``rrs_rerank`` can call it.

``rrs serve --role reranker`` writes ``RRS_HOME/run/reranker-pool.json`` (its URL and pid) once
it listens, and removes it when it exits. ``rrs es start`` reads it when ``RRS_RERANKER_URL`` is
unset; a pool that comes up beside a running local node also sets the node's dynamic
``rrs.reranker.url``, and clears it again on exit. A file whose process is gone is stale and
ignored. Only the local node is wired this way: a cluster elsewhere is told its pool by
``RRS_RERANKER_URL`` or ``PUT _cluster/settings``, never by a process that happens to start.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from rrsearch.core.processes import pid_alive

RERANKER_URL_SETTING = "rrs.reranker.url"  # the plugin's node setting (elasticsearch.yml, or dynamic)
RERANKER_KEY_SETTING = "rrs.reranker.api_key"  # the keystore only: never in a file or a request


def pool_file(home: Path) -> Path:
    return Path(home) / "run" / "reranker-pool.json"


def local_url(listen_url: str) -> str:
    """A URL this machine can call: a wildcard bind address becomes loopback."""
    parts = urlsplit(listen_url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme or 'http'}://{host}:{parts.port}"


def announce(home: Path, url: str, pid: int) -> None:
    path = pool_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{pid}.tmp")
    partial.write_text(json.dumps({"url": url, "pid": pid}))
    partial.replace(path)  # readers never see half a file


def withdraw(home: Path, pid: int) -> str | None:
    """Remove the announcement if it is still this process's (a newer pool may have replaced it);
    the URL it announced, or None."""
    path = pool_file(home)
    record = _read(path)
    if record.get("pid") != pid:
        return None
    path.unlink(missing_ok=True)
    return record.get("url")


def announced_url(home: Path) -> str | None:
    """The URL of the pool announced under ``home``, or None (no file, garbled, or its process is gone)."""
    record = _read(pool_file(home))
    pid, url = record.get("pid"), record.get("url")
    if not isinstance(pid, int) or not isinstance(url, str) or not pid_alive(pid):
        return None
    return url


def _read(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def wire_local_node(settings, url: str, log, *, clear: bool = False) -> bool:
    """Set the running local node's ``rrs.reranker.url`` to ``url`` (or, with ``clear``, remove it
    if it still says ``url``); False when there is no local node, it is down, or its plugin lacks
    the retrievers (logged, not fatal: the pool serves ``/rerank`` either way)."""
    if settings.es_url:  # a node elsewhere: wired by its operator, never by us
        return False
    from rrsearch.core.es_client import make_client

    try:
        with make_client(settings, request_timeout=5) as es:
            if clear:
                current = es.cluster.get_settings(flat_settings=True)["persistent"].get(RERANKER_URL_SETTING)
                if current != url:
                    return False
            es.cluster.put_settings(persistent={RERANKER_URL_SETTING: None if clear else url})
    except Exception as exc:  # noqa: BLE001
        log(f"the local Elasticsearch node was not told about the pool: {exc}")
        return False
    log(f"local Elasticsearch node: {RERANKER_URL_SETTING} = {None if clear else url}")
    return True
