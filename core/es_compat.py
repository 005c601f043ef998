"""One client line (elasticsearch-py 9) for Elasticsearch 8.19.x and 9.x servers.

The 9.x client sends ``Accept`` and ``Content-Type`` as
``application/vnd.elasticsearch+json; compatible-with=9`` (``+x-ndjson`` for ``_bulk``). A
9.x server accepts ``compatible-with=9`` and ``8``; an 8.x server only ``8`` and ``7``, and
refuses everything else with 400 ``media_type_header_exception``: "Accept version must be
either version 8 or 7, but found 9". The client writes these headers itself (per-API
headers override any default we could set), so the answer belongs under it, at the
transport: :func:`negotiate` wraps ``client.transport.perform_request``. When a server
refuses the client's version and names the ones it accepts, the client switches every
later request to the highest of them it speaks (kept per transport: ``client.options()``
copies share it), and sends the refused request once more. A server that accepts neither
8 nor 9 (7.x) raises :class:`~rrsearch.core.errors.UnsupportedServer` with one line
naming its version and the supported ones. A server that never refuses costs nothing.

Example::

    es = negotiate(Elasticsearch("http://127.0.0.1:9200"))
    es.cluster.health()          # on 8.19: refused once, then sent again as compatible-with=8
    compat_version(es)           # 8 (9 against a 9.x server)
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from elasticsearch import Elasticsearch, __versionstr__

from rrsearch.core.errors import UnsupportedServer

CLIENT_MAJOR = int(__versionstr__.split(".")[0])
SUPPORTED_MAJORS = (9, 8)  # the compatible-with values this project speaks, preferred first
SUPPORTED_SERVERS = "Elasticsearch 8.19.x and 9.x"

_ACCEPTS = re.compile(r"(?:Accept|Content-Type) version must be either version (\d+) or (\d+)")
_COMPAT = re.compile(r"(compatible-with=)\d+")
_COMPAT_HEADERS = ("accept", "content-type")


def accepted_versions(body: Any) -> tuple[int, ...] | None:
    """The ``compatible-with`` versions a refusal says the server accepts, highest first, or
    None when ``body`` is not a ``media_type_header_exception`` that names them.

    >>> accepted_versions({"error": {"type": "media_type_header_exception", "caused_by": {
    ...     "reason": "Accept version must be either version 8 or 7, but found 9. Accept=..."}}})
    (8, 7)
    """
    if not isinstance(body, (dict, str)):
        return None
    text = body if isinstance(body, str) else json.dumps(body)
    if "media_type_header_exception" not in text:
        return None
    match = _ACCEPTS.search(text)
    if match is None:
        return None
    return tuple(sorted({int(match.group(1)), int(match.group(2))}, reverse=True))


def choose_major(accepted: tuple[int, ...]) -> int | None:
    """The highest version both sides speak, or None (a 7.x server accepts 7 and 6)."""
    return next((major for major in SUPPORTED_MAJORS if major in accepted), None)


def compat_headers(headers: Mapping[str, str] | None, major: int) -> dict[str, str]:
    """``headers`` with ``compatible-with=<major>`` in Accept and Content-Type (json and ndjson
    alike, so a ``_bulk`` body keeps matching its Accept); other headers untouched."""
    rewritten: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if name.lower() in _COMPAT_HEADERS and isinstance(value, str):
            value = _COMPAT.sub(rf"\g<1>{major}", value)
        rewritten[name] = value
    return rewritten


def unsupported_message(server_version: str | None, accepted: tuple[int, ...], where: str | None) -> str:
    """The one line a user reads when the server is of another major."""
    server = f"Elasticsearch {server_version}" if server_version else f"An Elasticsearch {accepted[0]}.x server"
    at = f" at {where}" if where else ""
    listed = " and ".join(str(v) for v in accepted)
    return (
        f"{server}{at} is not supported (it accepts API versions {listed} only): "
        f"this project works with {SUPPORTED_SERVERS}; point ES_URL at such a cluster."
    )


class VersionNegotiator:
    """Stands in for ``transport.perform_request``; ``major`` is the ``compatible-with`` sent
    (the client's own until a server refuses it)."""

    def __init__(self, perform_request: Callable[..., Any]):
        self._perform = perform_request
        self._lock = threading.Lock()
        self.major = CLIENT_MAJOR

    def __call__(self, method: str, target: str, *, headers: Any = None, body: Any = None, **kwargs: Any) -> Any:
        if isinstance(body, Iterator):  # a generator is consumed by the first try: keep it for a second
            body = list(body)
        sent = self.major
        response = self._perform(method, target, headers=self._headers(headers, sent), body=body, **kwargs)
        if response.meta.status != 400:
            return response
        refusal = response.body
        if method == "HEAD":  # no body to read the reason from: ask the same thing with GET
            refusal = self._perform("GET", target, headers=self._headers(headers, sent), **kwargs).body
        accepted = accepted_versions(refusal)
        if accepted is None or sent in accepted:
            return response
        chosen = choose_major(accepted)
        if chosen is None:
            where = getattr(getattr(response.meta, "node", None), "base_url", None)
            raise UnsupportedServer(unsupported_message(self._server_version(), accepted, where))
        with self._lock:
            if self.major == sent:
                self.major = chosen
        return self._perform(method, target, headers=self._headers(headers, chosen), body=body, **kwargs)

    def _headers(self, headers: Any, major: int) -> Any:
        return headers if major == CLIENT_MAJOR or headers is None else compat_headers(headers, major)

    def _server_version(self) -> str | None:
        """The refusing server's version from ``GET /`` asked as plain JSON (any major takes it)."""
        try:
            answer = self._perform("GET", "/", headers={"accept": "application/json"})
            return str(answer.body["version"]["number"]) if answer.meta.status == 200 else None
        except Exception:  # noqa: BLE001 -- only for the message; the major is known anyway
            return None


def negotiate(client: Elasticsearch) -> Elasticsearch:
    """``client``, speaking whichever of ``compatible-with=9``/``8`` its server accepts (once per
    transport; calling it again is harmless)."""
    transport = client.transport
    if not isinstance(transport.perform_request, VersionNegotiator):
        transport.perform_request = VersionNegotiator(transport.perform_request)  # type: ignore[method-assign]
    return client


def compat_version(client: Elasticsearch) -> int:
    """The ``compatible-with`` version ``client`` sends now."""
    negotiator = client.transport.perform_request
    return negotiator.major if isinstance(negotiator, VersionNegotiator) else CLIENT_MAJOR
