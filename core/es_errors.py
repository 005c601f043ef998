"""What an Elasticsearch failure means to the person who has to fix it, in one line.

Every command and the service meet the same few failures of a real cluster: wrong or
missing credentials (401), a key without a privilege (403), a CA the client does not
trust, an ``http://`` URL for a TLS node (or the reverse), a server of another major,
and a node that does not answer. :func:`describe` turns the client's exception into a
:class:`EsProblem` whose message names the setting or privilege to change. It is pure
(no I/O), so the CLI's handler (``rrs/cli.py``), the service's error table
(``service/http/errors.py``) and the search log share one wording.

Example::

    try:
        es.search(index="passages", query={"match_all": {}})
    except Exception as exc:
        problem = describe(exc, url="https://127.0.0.1:9200")
        print(problem.message if problem else exc)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TlsError
from elasticsearch import ApiError

from rrsearch.core.errors import BackendMisconfigured
from rrsearch.core.es_compat import SUPPORTED_SERVERS

SECURITY_DOCS = "docs/operations/security.md"

_ACTION = re.compile(r"action \[(.+?)\] is unauthorized")
_INDICES = re.compile(r"on indices \[([^\]]+)\]")
_GRANTED_BY = re.compile(r"granted by the (index|cluster) privileges \[([^\]]+)\]")
_OS_ERROR = re.compile(r"\[Errno -?\d+\] [^)(\]]+|timed out|Connection reset by peer|Remote end closed[^)(]*")
_PRINCIPAL = re.compile(r"(?:for|of) (API key id \[[^\]]+\]|user \[[^\]]+\])")


@dataclass(frozen=True)
class EsProblem:
    """One failure as a user meets it: ``kind`` for code to branch on, ``message`` for people.

    ``kind`` is one of ``unauthenticated``, ``forbidden``, ``tls``, ``scheme``, ``version``
    and ``unreachable``. ``permanent`` is true where retrying cannot help until someone
    changes a setting or a privilege.
    """

    kind: str
    message: str
    status: int | None = None

    @property
    def permanent(self) -> bool:
        return self.kind != "unreachable"


@dataclass(frozen=True)
class Forbidden:
    """What a 403's reason names: the action refused, on which indices, to whom, and the
    privileges that would grant it (any one of them)."""

    action: str | None
    indices: str | None
    principal: str | None
    privilege_kind: str | None  # "index" or "cluster"
    privileges: tuple[str, ...]


def parse_forbidden(reason: str) -> Forbidden:
    """The parts of Elasticsearch's "action [...] is unauthorized for ..." reason."""
    granted = _GRANTED_BY.search(reason)
    return Forbidden(
        action=_first(_ACTION, reason),
        indices=_first(_INDICES, reason),
        principal=_first(_PRINCIPAL, reason),
        privilege_kind=granted.group(1) if granted else None,
        privileges=tuple(p.strip() for p in granted.group(2).split(",")) if granted else (),
    )


def _first(pattern: re.Pattern, text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None


def describe(exc: BaseException, url: str | None = None) -> EsProblem | None:
    """The problem ``exc`` stands for, or None when it is not one of the failures above."""
    where = f" at {url}" if url else ""
    if isinstance(exc, ApiError):
        return _describe_api_error(exc, where)
    if isinstance(exc, TlsError):
        return _describe_tls(_transport_text(exc), where)
    if isinstance(exc, (TransportConnectionError, ConnectionTimeout)):
        said = _transport_text(exc)
        if "TLS" in said or "SSL" in said or "CERTIFICATE" in said:
            return _describe_tls(said, where)
        cause = _OS_ERROR.search(said)
        return EsProblem(
            "unreachable",
            f"cannot reach Elasticsearch{where} ({cause.group(0).strip() if cause else _short(said, 120)}): "
            "is the node up (`rrs es status`) and ES_URL right? A node with TLS needs an https:// URL.",
        )
    if isinstance(exc, ValueError) and "TLS options require scheme" in str(exc):
        return EsProblem(
            "scheme",
            f"ES_CA_CERTS is set but the Elasticsearch URL{where} is not https://: "
            "use an https:// ES_URL for a node with TLS, or unset ES_CA_CERTS for a plain-HTTP node.",
        )
    return None


def _describe_api_error(exc: ApiError, where: str) -> EsProblem | None:
    status = exc.meta.status
    reason = _reason(exc.body) or ("" if exc.body is None else str(exc.message))  # a HEAD's refusal has no body
    if status == 401:
        return EsProblem(
            "unauthenticated",
            f"Elasticsearch{where} refused the credentials (401: {_short(reason)}): set ES_API_KEY, or "
            "ES_USERNAME and ES_PASSWORD, to valid ones (for a node from `rrs es start --secure`, unset them "
            "and the node's own are used; `rrs es status --json` says where they are).",
            401,
        )
    if status == 403 and _is_security(exc.body):  # not a cluster_block_exception: that 403 is an index block
        return EsProblem("forbidden", forbidden_message(reason, where), 403)
    if status == 400 and "media_type_header_exception" in repr(exc.body):
        return EsProblem(
            "version",
            f"Elasticsearch{where} does not accept this client's API version ({_short(reason)}): "
            f"this project works with {SUPPORTED_SERVERS}.",
            400,
        )
    return None


def raise_if_refused(status: int | None, error: object) -> None:
    """A bulk item or search item refused with 401/403 is not that record's or query's fault:
    every other one will be refused alike, so stop with the privilege to grant."""
    if status not in (401, 403) or (status == 403 and not _is_security({"error": error})):
        return
    reason = _reason({"error": error})
    if status == 403:
        raise BackendMisconfigured(forbidden_message(reason))
    raise BackendMisconfigured(
        f"Elasticsearch refused the credentials (401: {_short(reason)}): set ES_API_KEY, or ES_USERNAME and ES_PASSWORD"
    )


def forbidden_message(reason: str, where: str = "") -> str:
    """A 403 as the privilege to grant, on what, to whom."""
    refused = parse_forbidden(reason)
    if not refused.privileges:
        said = f": {_short(reason)}" if reason else ""
        return (
            f"Elasticsearch{where} denied the request (403{said}): "
            f"the API key or user lacks a privilege; see the roles in {SECURITY_DOCS}."
        )
    on = f" on {refused.indices}" if refused.indices else ""
    who = f" to {refused.principal}" if refused.principal else ""
    return (
        f"Elasticsearch{where} denied {refused.action or 'the request'}{on} (403): grant {refused.privilege_kind} "
        f"privilege {' or '.join(refused.privileges[:2])}{on}{who}, or use a key with the role "
        f"{SECURITY_DOCS} lists for this command."
    )


def _describe_tls(said: str, where: str) -> EsProblem:
    if "WRONG_VERSION_NUMBER" in said or "wrong version number" in said:
        return EsProblem(
            "scheme",
            f"Elasticsearch{where} does not speak TLS: use an http:// ES_URL for it (and unset ES_CA_CERTS).",
        )
    return EsProblem(
        "tls",
        f"TLS verification of Elasticsearch{where} failed ({_short(said)}): set ES_CA_CERTS to the PEM file of the "
        "CA that signed the node's certificate (for `rrs es start --secure`, `rrs es status --json` names it).",
    )


def _is_security(body: object) -> bool:
    """A 403 about privileges (``security_exception``), not an index block (``cluster_block_exception``,
    also 403, which an operator lifts and a retry then passes). A HEAD's refusal has no body: privileges."""
    if body is None:
        return True
    return "security_exception" in repr(body) or "is unauthorized" in repr(body)


def _transport_text(exc: TransportConnectionError | ConnectionTimeout) -> str:
    """Everything a connection failure says: its own words and those of what it wraps."""
    return " ".join(dict.fromkeys([str(exc), str(exc.message), *map(str, exc.errors)]))


def _reason(body: object) -> str:
    """The root reason Elasticsearch gave, from an error body."""
    if not isinstance(body, dict):
        return str(body) if body else ""
    error = body.get("error", body)
    if isinstance(error, str):
        return error
    if not isinstance(error, dict):
        return ""
    causes = error.get("root_cause") or []
    first = causes[0] if causes and isinstance(causes[0], dict) else error
    return str(first.get("reason") or error.get("reason") or error.get("type") or "")


def _short(text: str, limit: int = 240) -> str:
    """One line, at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
