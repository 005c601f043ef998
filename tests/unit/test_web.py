"""The search page's blueprint and files, without a node or a browser (those are in
tests/integration/test_search_page.py): headers, same-origin assets, no HTML sinks."""

import re

import pytest
from flask import Flask

from rrsearch.service.http.web import PAGE_FILES, PAGE_PATHS, STATIC_DIR, web


@pytest.fixture
def client():
    app = Flask(__name__)
    app.register_blueprint(web)
    return app.test_client()


@pytest.mark.parametrize("path", sorted(PAGE_PATHS))
def test_each_page_file_is_served_with_its_type_and_a_strict_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == PAGE_FILES[path][1].split(";")[0]
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "unsafe" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == (STATIC_DIR / PAGE_FILES[path][0]).read_bytes()


def test_only_the_listed_paths_are_served(client):
    assert client.get("/ui/../web.py").status_code == 404
    assert client.get("/ui/search.html").status_code == 404


def test_the_page_loads_only_its_own_assets():
    html = (STATIC_DIR / "search.html").read_text()
    referenced = set(re.findall(r'(?:src|href)="([^"]+)"', html))
    assert referenced == {"/ui/search.css", "/ui/search.js", "data:,"}
    for name in ("search.html", "search.js", "search.css"):
        assert not re.search(r"https?://|//cdn|@import", (STATIC_DIR / name).read_text()), name
    assert "<script>" not in html and not re.search(r"\son[a-z]+\s*=", html)  # no inline script or handlers


def test_the_script_never_parses_response_text_as_html():
    script = (STATIC_DIR / "search.js").read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "createContextualFragment",
        "DOMParser",
    ):
        assert sink not in script, sink
    assert "textContent" in script
