"""The search page: ``GET /`` serves one static HTML page that calls ``POST /search``.

It exists so a person can type a query and see *why* each hit is where it is: the hit's
rank and score after BM25, kNN, fusion and rerank, the per-stage timings, and whether
the response was reranked or degraded. There is no server-side rendering of results and
no build step: ``static/search.html`` + ``search.js`` + ``search.css``, plain files.

The page and its two assets are public (listed in :data:`PAGE_PATHS`, which the app's
API-key check leaves open); the ``/search``, ``/rerank`` and ``/judgments`` (marks on hits
and paragraphs) calls the page makes carry the key a user pastes into it. Everything the page shows is put in the DOM as text, never as HTML, and
a strict Content-Security-Policy (no inline script, no other origins) backs that up.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Exact paths, not a prefix: only these are served without an API key.
PAGE_FILES = {
    "/": ("search.html", "text/html; charset=utf-8"),
    "/ui/search.js": ("search.js", "text/javascript; charset=utf-8"),
    "/ui/search.css": ("search.css", "text/css; charset=utf-8"),
}
PAGE_PATHS = frozenset(PAGE_FILES)

# The page needs its own script, style and /search (same origin); nothing else, ever.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

web = Blueprint("web", __name__)


def _serve(path: str) -> Response:
    filename, mimetype = PAGE_FILES[path]
    response = send_from_directory(STATIC_DIR, filename, mimetype=mimetype, max_age=0)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@web.get("/")
def page():
    return _serve("/")


@web.get("/ui/search.js")
def script():
    return _serve("/ui/search.js")


@web.get("/ui/search.css")
def style():
    return _serve("/ui/search.css")
