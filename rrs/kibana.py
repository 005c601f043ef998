"""Kibana saved objects: the ``rrs kibana`` commands.

    rrs kibana import [--url URL] [--api-key KEY] [--space ID]

loads the data views, saved searches, Lens visualisations and the search-logs and judgments dashboards
from ``es_mappings/kibana/*.ndjson`` through Kibana's saved-objects import API
(``POST /api/saved_objects/_import?overwrite=true``, multipart ``file`` part, ``kbn-xsrf``
header) and prints one line per object. Building the request and reading the response
are pure functions; only :func:`send_import` talks to the network.

Example::

    >>> objects = load_objects(OBJECTS_DIR)
    >>> request = build_import_request("http://localhost:5601", ndjson_body(objects))
    >>> request.url
    'http://localhost:5601/api/saved_objects/_import?overwrite=true'
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import click

from rrsearch.core.console import fail, load_settings
from rrsearch.core.errors import KibanaError

OBJECTS_DIR = Path(str(files("rrsearch.es_mappings") / "kibana"))  # package data (es_mappings/kibana/)
IMPORT_PATH = "/api/saved_objects/_import"
UPLOAD_NAME = "rrsearch.ndjson"  # Kibana rejects a file part whose name does not end in .ndjson
SPACE_ID = re.compile(r"^[a-z0-9_-]+$")
RETRY_INTERVAL_S = 2.0  # between attempts while --wait allows
# Data views shipped in 10-data-views.ndjson whose index name is a setting.
PASSAGES_DATA_VIEW = "rrs-passages"
SEARCH_LOGS_DATA_VIEW = "rrs-search-logs"
JUDGMENTS_DATA_VIEW = "rrs-judgments"  # 40-judgments.ndjson: marks made on the search page


# --- reading the objects (pure) ---------------------------------------------------------


def load_objects(directory: Path = OBJECTS_DIR) -> list[dict]:
    """Every saved object in ``directory/*.ndjson`` (files in name order).

    A line that is not a JSON object with ``type``, ``id`` and ``attributes`` stops with
    the file and line, so a broken file is never half-imported.
    """
    files = sorted(Path(directory).glob("*.ndjson"))
    if not files:
        raise KibanaError(f"no *.ndjson files in {directory}")
    objects: list[dict] = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KibanaError(f"{where}: not JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise KibanaError(f"{where}: expected a JSON object")
            missing = [key for key in ("type", "id", "attributes") if key not in obj]
            if missing:
                raise KibanaError(f"{where}: saved object lacks {', '.join(missing)}")
            objects.append(obj)
    return objects


def retitle_data_views(objects: Iterable[dict], titles: dict[str, str]) -> list[dict]:
    """Copies of ``objects`` whose data views (by id) point at the given index names.

    The files name the defaults (``passages``, ``rrs-search-logs``); a deployment with
    another ``RRS_INDEX_ALIAS`` gets data views over its own alias.
    """
    result = []
    for obj in objects:
        if obj.get("type") == "index-pattern" and obj.get("id") in titles and titles[obj["id"]]:
            obj = {**obj, "attributes": {**obj["attributes"], "title": titles[obj["id"]]}}
        result.append(obj)
    return result


def ndjson_body(objects: Iterable[dict]) -> bytes:
    """The export format: one JSON object per line."""
    return "".join(json.dumps(obj, separators=(",", ":")) + "\n" for obj in objects).encode()


# --- the request (pure) -----------------------------------------------------------------


@dataclass(frozen=True)
class ImportRequest:
    """Everything :func:`send_import` sends: a multipart POST with one ``file`` part."""

    url: str
    headers: dict[str, str] = field(repr=False)  # may hold credentials
    body: bytes = field(repr=False)
    filename: str = UPLOAD_NAME
    content_type: str = "application/ndjson"


def import_url(base_url: str, space: str | None = None) -> str:
    """``<kibana>[/s/<space>]/api/saved_objects/_import?overwrite=true``."""
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise KibanaError(f"Kibana URL must start with http:// or https://: {base_url!r}")
    if space:
        if not SPACE_ID.match(space):
            raise KibanaError(f"invalid Kibana space id {space!r} (lowercase letters, digits, _ and -)")
        base += f"/s/{space}"
    return f"{base}{IMPORT_PATH}?overwrite=true"


def auth_headers(
    api_key: str | None = None, username: str | None = None, password: str | None = None
) -> dict[str, str]:
    """``Authorization`` for an API key (preferred) or basic auth; nothing when neither is set."""
    if api_key:
        return {"Authorization": f"ApiKey {api_key}"}
    if username is not None and password is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def build_import_request(
    base_url: str,
    body: bytes,
    *,
    space: str | None = None,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> ImportRequest:
    """The import call as Kibana documents it: overwrite=true, kbn-xsrf, multipart ``file``."""
    headers = {"kbn-xsrf": "rrsearch", "Accept": "application/json"}
    headers.update(auth_headers(api_key, username, password))
    return ImportRequest(url=import_url(base_url, space), headers=headers, body=body)


# --- the response (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class ObjectResult:
    """What Kibana said about one object."""

    type: str
    id: str
    title: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.type:<13} {self.id}  {self.title!r}"
        return f"{text}: {self.detail}" if self.detail else text


def http_error_message(status: int, payload: Any, url: str) -> str:
    """A clear line for a refused request, with Kibana's own message when it sent one."""
    said = ""
    if isinstance(payload, dict):
        said = str(payload.get("message") or payload.get("error") or "")
    elif isinstance(payload, str):
        said = payload.strip()[:300]
    said = f": {said}" if said else ""
    if status == 401:
        hint = "Kibana refused the credentials; set KIBANA_API_KEY (or --api-key) or KIBANA_USERNAME/KIBANA_PASSWORD"
    elif status == 403:
        hint = "the user or API key may not manage saved objects in this space"
    elif status == 404:
        hint = "no saved-objects import API there; is the URL Kibana's base URL, and does the space exist?"
    elif status == 503:
        hint = "Kibana is not ready yet (retry, or use --wait)"
    elif status >= 500:
        hint = "Kibana failed while importing"
    else:
        hint = "Kibana rejected the import request"
    return f"{hint} (HTTP {status} from {url}){said}"


def _error_detail(error: dict) -> str:
    kind = error.get("type", "unknown")
    if kind == "missing_references":
        refs = ", ".join(f"{r.get('type')}/{r.get('id')}" for r in error.get("references", []))
        return f"missing_references: {refs}"
    if kind in ("conflict", "ambiguous_conflict"):
        return f"{kind} (an object with this id exists and was not overwritten)"
    message = error.get("message") or error.get("reason") or ""
    return f"{kind}: {message}" if message else kind


def summarise_import(payload: object, sent: Iterable[dict]) -> list[ObjectResult]:
    """One result per object sent, from ``successResults`` and ``errors``.

    An object Kibana mentions in neither list is reported as a failure, so nothing that
    was sent goes unaccounted for.
    """
    if not isinstance(payload, dict) or "success" not in payload:
        raise KibanaError(f"unexpected answer from Kibana's import API: {str(payload)[:300]}")
    results: dict[tuple[str, str], ObjectResult] = {}
    for item in payload.get("successResults") or []:
        key = (item.get("type", "?"), item.get("id", "?"))
        title = (item.get("meta") or {}).get("title", "")
        detail = "overwritten" if item.get("overwrite") else "created"
        if item.get("destinationId") and item["destinationId"] != key[1]:
            detail += f" as {item['destinationId']}"
        results[key] = ObjectResult(*key, title=title, ok=True, detail=detail)
    for item in payload.get("errors") or []:
        key = (item.get("type", "?"), item.get("id", "?"))
        title = item.get("title") or (item.get("meta") or {}).get("title", "")
        results[key] = ObjectResult(*key, title=title, ok=False, detail=_error_detail(item.get("error") or {}))
    ordered = []
    for obj in sent:
        key = (obj["type"], obj["id"])
        title = obj.get("attributes", {}).get("title", "")
        ordered.append(
            results.pop(key)
            if key in results
            else ObjectResult(*key, title=title, ok=False, detail="not reported by Kibana")
        )
    return ordered + list(results.values())


# --- the HTTP call ----------------------------------------------------------------------


def _network_reason(exc: Exception) -> str:
    """The useful tail of a requests exception ("Connection refused", "timed out")."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return f"{type(exc).__name__} ({found[-1].strip()})" if found else f"{type(exc).__name__}: {text[:200]}"


def send_import(request: ImportRequest, *, timeout_s: float = 30.0, wait_s: float = 0.0) -> dict:
    """POST the request; the parsed JSON answer, or :class:`KibanaError` saying why not.

    With ``wait_s`` > 0, an unreachable or still-starting Kibana (503) is retried until
    that many seconds have passed.
    """
    import requests

    deadline = time.monotonic() + wait_s
    while True:
        try:
            response = requests.post(
                request.url,
                headers=request.headers,
                files={"file": (request.filename, request.body, request.content_type)},
                timeout=timeout_s,
            )
        except requests.RequestException as exc:
            if time.monotonic() < deadline:
                time.sleep(RETRY_INTERVAL_S)
                continue
            raise KibanaError(f"cannot reach Kibana at {request.url.split('?')[0]}: {_network_reason(exc)}") from None
        if response.status_code == 503 and time.monotonic() < deadline:
            time.sleep(RETRY_INTERVAL_S)
            continue
        break
    try:
        payload: Any = response.json()
    except ValueError:
        payload = response.text
    if response.status_code >= 400:
        raise KibanaError(http_error_message(response.status_code, payload, request.url))
    if not isinstance(payload, dict):
        raise KibanaError(f"Kibana answered {response.status_code} without JSON: {str(payload)[:300]}")
    return payload


# --- commands ---------------------------------------------------------------------------


@click.group()
def kibana() -> None:
    """Kibana data views, saved searches and the search-logs dashboard."""


@kibana.command("import")
@click.option("--url", help="Kibana base URL (default RRS_KIBANA_URL / KIBANA_URL, else http://localhost:5601).")
@click.option(
    "--api-key", help="Encoded API key (default KIBANA_API_KEY). Basic auth: KIBANA_USERNAME/KIBANA_PASSWORD."
)
@click.option("--space", help="Kibana space id (default RRS_KIBANA_SPACE; unset = default space).")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=OBJECTS_DIR,
    show_default=True,
    help="Folder of *.ndjson saved objects.",
)
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to keep retrying while Kibana is unreachable or starting (503).",
)
def import_command(url: str | None, api_key: str | None, space: str | None, directory: Path, wait_s: float) -> None:
    """Import the saved objects (overwriting ours), one result line per object.

    Data views point at RRS_INDEX_ALIAS, RRS_SEARCH_LOG_INDEX and RRS_JUDGMENTS_INDEX. Exits 1 when Kibana
    is unreachable, refuses the request, or rejects any object.
    """
    settings = load_settings()
    secret = settings.kibana_api_key.get_secret_value() if settings.kibana_api_key else None
    username, password = settings.kibana_username, settings.kibana_password
    if username is None and settings.es_username is not None:
        username, password = settings.es_username, settings.es_password
    try:
        objects = retitle_data_views(
            load_objects(directory),
            {
                PASSAGES_DATA_VIEW: settings.index_alias,
                SEARCH_LOGS_DATA_VIEW: settings.search_log_index,
                JUDGMENTS_DATA_VIEW: settings.judgments_index,
            },
        )
        request = build_import_request(
            url or settings.kibana_url,
            ndjson_body(objects),
            space=space or settings.kibana_space,
            api_key=api_key or secret,
            username=username,
            password=password.get_secret_value() if password else None,
        )
        click.echo(f"importing {len(objects)} saved objects into {request.url.split('?')[0]}", err=True)
        payload = send_import(request, timeout_s=settings.kibana_request_timeout_s, wait_s=wait_s)
        results = summarise_import(payload, objects)
    except KibanaError as exc:
        fail(str(exc))
        return
    for result in results:
        click.echo(result.line())
    failed = sum(not r.ok for r in results)
    for warning in payload.get("warnings") or []:
        click.echo(f"warning: {warning.get('message', warning)}", err=True)
    if failed:
        fail(f"{failed} of {len(results)} saved objects were not imported")
    click.echo(f"imported {len(results)} saved objects", err=True)


commands: list = [kibana]
