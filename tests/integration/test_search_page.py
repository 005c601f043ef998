"""The search page in a real browser: Debian's chromium driven by Playwright, against the
real service on a free local port with a real Elasticsearch node and real models behind it.

Screenshots go to ``test-artifacts/`` at the repo root (kept by CI as artifacts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from rrsearch.service.http.app import create_app
from rrsearch.service.rerank import load_reranker

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' (Playwright)")
expect = playwright_api.expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
API_KEY = "page-test-key-4f1c"
NO_VALUE = "—"

INJECTION = '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1">'
HOSTILE_TITLE = f"Sourdough {INJECTION} & co"
HOSTILE_TEXT = f"A sourdough injection attempt: {INJECTION} -- bread & 'butter' \"quoted\"."
DOCS = [
    ("astro-1", "Moons of Jupiter", "Galileo saw four moons of Jupiter through his telescope in 1610.", "astronomy"),
    ("astro-2", "Binary stars", "Two stars orbiting a common centre of mass form a binary star system.", "astronomy"),
    (
        "astro-3",
        "Saturn's rings",
        "Saturn's rings are ice and rock; a small telescope shows them clearly.",
        "astronomy",
    ),
    (
        "bake-1",
        "Sourdough starter",
        "A sourdough starter is wild yeast and lactic acid bacteria fed with flour.",
        "cooking",
    ),
    ("bake-2", "Bread crust", "A hot oven and steam give bread a crisp, shiny crust.", "cooking"),
    ("bake-3", "Rye bread", "Rye flour holds less gluten, so rye bread is dense and often sour.", "cooking"),
    ("garden-1", "Tomato blight", "Late blight spreads on tomato leaves in wet, warm weather.", "gardening"),
    ("garden-2", "Compost", "Compost turns kitchen scraps and leaves into soil food within months.", "gardening"),
    ("hostile", HOSTILE_TITLE, HOSTILE_TEXT, "<b>bold</b>"),
]


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page_index(es, es_settings, bi_encoder):
    """A small alias of its own, holding the documents above (one of them hostile)."""
    from elasticsearch import helpers

    from rrsearch.core.encoders import embedding_dims, encode_passages, model_label
    from rrsearch.core.indexes import delete_alias_and_versions, ensure_alias, passage_index_body

    name = f"test-page-{uuid.uuid4().hex[:8]}"
    label = model_label("all-MiniLM-L6-v2")
    ensure_alias(es, name, passage_index_body(es, es_settings, dims=embedding_dims(bi_encoder), model=label))
    vectors = encode_passages(bi_encoder, [f"{title}. {text}" for _, title, text, _ in DOCS])
    actions = (
        {
            "_index": name,
            "_id": doc_id,
            "_source": {
                "id": doc_id,
                "parent_id": doc_id,
                "chunk": 0,
                "chunk_count": 1,
                "title": title,
                "text": text,
                "metadata": {"topic": topic},
                "model": label,
                "embedding": vector.tolist(),
            },
        }
        for (doc_id, title, text, topic), vector in zip(DOCS, vectors)
    )
    helpers.bulk(es, actions, refresh="wait_for")
    yield name
    delete_alias_and_versions(es, name)


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder_dir, es_settings):
    return load_reranker(str(tiny_cross_encoder_dir), es_settings)


@pytest.fixture(scope="module")
def page_settings(es_settings, page_index, tiny_cross_encoder_dir):
    return es_settings.model_copy(
        update={
            "index_alias": page_index,
            "cross_encoder": str(tiny_cross_encoder_dir),
            "search_log_enabled": False,
            "search_timeout_s": 10.0,
            "rerank_timeout_ms": 30_000.0,
            "api_keys": None,
        }
    )


@contextmanager
def serving(app):
    """The app on a free local port (werkzeug, threaded), for as long as the block runs."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def service_url(page_settings, es, bi_encoder, reranker):
    """The service with the reranker on and no API keys."""
    with serving(create_app(page_settings, es=es, bi_encoder=bi_encoder, reranker=reranker)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's chromium (never a downloaded one), fresh profile, no network beyond loopback use."""
    if not Path(CHROMIUM).exists():
        message = "chromium is not installed (./run test installs it: apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1100, "height": 1400},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser):
    """A new tab; fails the test on any script error or console error other than a 401 load."""
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "status of 401" not in msg.text
            else None
        ),
    )
    yield tab
    tab.close()
    assert problems == []


# --- helpers ------------------------------------------------------------------------------


def api_search(url: str, key: str | None = None, **body) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{url}/search", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def search_on_page(page, query: str) -> None:
    page.fill("#query", query)
    page.press("#query", "Enter")


def cells(page, stage: str, field: str) -> list[str]:
    return page.locator(f'#hits td[data-stage="{stage}"][data-field="{field}"]').all_inner_texts()


def timing(page, stage: str) -> float:
    return float(page.locator(f'#timings tr[data-stage="{stage}"] td.ms').inner_text())


def expected_cells(hits: list[dict], stage: str) -> tuple[list[str], list[str]]:
    """What the page must show for ``stage``: '#rank' and the score to 4 places, or a dash."""
    ranks, scores = [], []
    for hit in hits:
        at = hit["stages"][stage]
        ranks.append(f"#{at['rank']}" if at else NO_VALUE)
        scores.append(f"{at['score']:.4f}" if at else NO_VALUE)
    return ranks, scores


def assert_page_matches_api(page, body: dict) -> None:
    """Hits in the API's order, and every stage's rank and score as the API gave them."""
    assert page.locator("#hits > li").evaluate_all("items => items.map(i => i.dataset.id)") == [
        h["id"] for h in body["hits"]
    ]
    for stage in ("bm25", "knn", "fused", "rerank"):
        ranks, scores = expected_cells(body["hits"], stage)
        assert cells(page, stage, "rank") == ranks, stage
        assert cells(page, stage, "score") == scores, stage


# --- tests --------------------------------------------------------------------------------


def test_query_shows_hits_stage_ranks_and_timings_and_mode_switches(page, service_url):
    response = page.goto(service_url + "/")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page).to_have_title("rrsearch")

    query = "telescope moons of jupiter"
    search_on_page(page, query)
    expect(page.locator("#badges")).to_contain_text("mode hybrid")
    expect(page.locator("#badges")).to_contain_text("reranked (")
    expect(page.locator("#badges")).to_contain_text("blend: cross-encoder 100% (default)")
    expect(page.locator("#status")).to_contain_text("Hits 1–")
    assert timing(page, "total") > 0 and timing(page, "search") > 0 and timing(page, "rerank") > 0
    assert timing(page, "embed_query") > 0  # hybrid embeds the query
    status, body = api_search(service_url, query=query, mode="hybrid", rerank=True, fusion="rrf", top_k=10)
    assert status == 200 and body["reranked"] is True and len(body["hits"]) >= 5
    assert body["hits"][0]["stages"]["rerank"] is not None  # so the rerank column is really filled
    assert_page_matches_api(page, body)
    moved = [hit for i, hit in enumerate(body["hits"]) if hit["stages"]["fused"]["rank"] != i + 1]
    changed = page.locator("#badges .changed")  # what the rerank stage changed, from the same stage ranks
    if moved:
        expect(changed).to_contain_text(f"moved {len(moved)} of the {len(body['hits'])} hits shown")
        expect(changed).to_contain_text(f"the first hit was #{body['hits'][0]['stages']['fused']['rank']}")
    else:
        expect(changed).to_contain_text("kept the fused order")
    assert page.locator("#hits mark").count() > 0  # the query's words are highlighted
    page.screenshot(path=str(ARTIFACTS / "search-page-hybrid-reranked.png"), full_page=True)

    page.check('input[name="mode"][value="bm25"]')  # switching mode searches again
    expect(page.locator("#badges")).to_contain_text("mode bm25")
    assert set(cells(page, "knn", "rank")) == {NO_VALUE}
    assert NO_VALUE not in cells(page, "bm25", "rank")
    status, body = api_search(service_url, query=query, mode="bm25", rerank=True, fusion="rrf", top_k=10)
    assert status == 200
    assert_page_matches_api(page, body)

    page.check('input[name="mode"][value="knn"]')
    expect(page.locator("#badges")).to_contain_text("mode knn")
    assert set(cells(page, "bm25", "rank")) == {NO_VALUE}
    assert NO_VALUE not in cells(page, "knn", "rank")
    assert page.locator("#hits > li").first.get_attribute("data-id") == "astro-1"

    page.uncheck("#rerank")
    expect(page.locator("#badges")).to_contain_text("not reranked")
    assert set(cells(page, "rerank", "rank")) == {NO_VALUE}
    assert timing(page, "rerank") == 0
    status, body = api_search(service_url, query=query, mode="knn", rerank=False, fusion="rrf", top_k=10)
    assert status == 200 and body["reranked"] is False
    assert_page_matches_api(page, body)
    assert re.search(r"mode=knn.*rerank=0", page.url)  # the state is in the URL, so it can be shared
    page.screenshot(path=str(ARTIFACTS / "search-page-knn-no-rerank.png"), full_page=True)

    page.fill("#top-k", "4")  # paging through the ranked window
    search_on_page(page, query)
    expect(page.locator("#status")).to_contain_text("Hits 1–4 of 9")
    expect(page.locator("#prev")).to_be_disabled()
    page.click("#next")
    expect(page.locator("#status")).to_contain_text("Hits 5–8 of 9")
    assert page.locator("#hits .position").all_inner_texts() == ["#5", "#6", "#7", "#8"]
    status, body = api_search(service_url, query=query, mode="knn", rerank=False, fusion="rrf", top_k=4, **{"from": 4})
    assert status == 200
    assert_page_matches_api(page, body)


def test_hostile_document_and_query_render_as_text(page, service_url):
    page.goto(service_url + "/")
    query = f"sourdough injection script {INJECTION}"
    search_on_page(page, query)
    hostile = page.locator('#hits > li[data-id="hostile"]')
    expect(hostile).to_have_count(1)

    assert hostile.locator(".title").inner_text() == HOSTILE_TITLE
    # The highlighted snippet, decoded from the service's escaped fragment, is the text itself.
    assert hostile.locator(".snippet").text_content() == HOSTILE_TEXT
    marks = hostile.locator(".snippet mark").all_inner_texts()
    assert "injection" in [m.lower() for m in marks] and "script" in [m.lower() for m in marks]
    assert "topic: <b>bold</b>" in hostile.locator(".ids").inner_text()
    assert f"“{query}”" in page.locator("#status").inner_text()
    # Nothing from the document or the query became an element, and nothing ran.
    assert page.locator("#hits script, #hits img, #hits b, #status img, #status script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    expect(page.locator("#pager")).to_be_hidden()  # all 9 hits fit on one page
    page.screenshot(path=str(ARTIFACTS / "search-page-hostile-document.png"), full_page=True)

    # The same through a shared link (?q=...), which the page runs on load.
    page.goto(service_url + "/?" + urllib.parse.urlencode({"q": INJECTION + " sourdough", "mode": "bm25"}))
    expect(page.locator('#hits > li[data-id="hostile"]')).to_have_count(1)
    assert page.locator('input[name="mode"][value="bm25"]').is_checked()
    assert page.locator("#hits script, #hits img, #status img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_api_keys_401_message_then_search_with_pasted_key(browser, page_settings, es, bi_encoder, reranker):
    settings = page_settings.model_copy(update={"api_keys": SecretStr(API_KEY)})
    app = create_app(settings, es=es, bi_encoder=bi_encoder, reranker=reranker)
    with serving(app) as url:
        for path in ("/", "/ui/search.js", "/ui/search.css"):  # the page itself is public
            with urllib.request.urlopen(url + path, timeout=30) as response:
                assert response.status == 200, path
        assert api_search(url, query="bread")[0] == 401  # the API is not

        tab = browser.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            tab.goto(url + "/")
            search_on_page(tab, "rye bread crust")
            expect(tab.locator("#error")).to_be_visible()
            expect(tab.locator("#error")).to_have_attribute("data-status", "401")
            expect(tab.locator("#error")).to_contain_text("needs an API key")
            assert tab.locator("#hits > li").count() == 0
            expect(tab.locator("#api-key")).to_be_visible()  # the key field is opened for the user
            tab.screenshot(path=str(ARTIFACTS / "search-page-401.png"), full_page=True)

            tab.fill("#api-key", "not-the-key")
            search_on_page(tab, "rye bread crust")
            expect(tab.locator("#error")).to_contain_text("the API key was refused")

            tab.fill("#api-key", API_KEY)
            search_on_page(tab, "rye bread crust")
            expect(tab.locator("#hits > li").first).to_be_visible()
            expect(tab.locator("#error")).to_be_hidden()
            assert tab.evaluate("sessionStorage.getItem('rrs.apiKey')") == API_KEY
            assert API_KEY not in tab.url

            tab.reload()  # the key is kept for the tab; the query in the URL runs again
            assert tab.input_value("#api-key") == API_KEY
            expect(tab.locator("#hits > li").first).to_be_visible()
            expect(tab.locator("#error")).to_be_hidden()
            tab.screenshot(path=str(ARTIFACTS / "search-page-with-key.png"), full_page=True)
        finally:
            tab.close()
        assert errors == []


def test_degraded_search_is_shown(page, page_settings, es, bi_encoder):
    """Rerank asked for but no reranker loaded: the page says so and shows the fused order."""
    app = create_app(page_settings, es=es, bi_encoder=bi_encoder, reranker=None)
    with serving(app) as url:
        page.goto(url + "/")
        search_on_page(page, "compost and tomato leaves")
        expect(page.locator("#badges")).to_contain_text("degraded: reranker_unavailable")
        expect(page.locator("#badges")).to_contain_text("set RRS_CROSS_ENCODER to a local model folder")
        expect(page.locator("#badges")).to_contain_text("not reranked")
        assert set(cells(page, "rerank", "rank")) == {NO_VALUE}
        assert NO_VALUE not in cells(page, "fused", "rank")


def test_search_inside_a_pasted_document(page, service_url):
    """The second tab: paste paragraphs, ask, see them ranked by the cross-encoder (POST /rerank),
    in the order and with the scores the API gives for the same input."""
    paragraphs = [
        "Sourdough needs a lively starter fed with flour and water.",
        "Saturn's rings are made of ice and rock.",
        "Bake the loaf in a hot oven with steam for a crisp crust.",
    ]
    page.goto(service_url + "/")
    page.click("#tab-doc")
    expect(page.locator("#search-form")).to_be_hidden()
    page.fill("#doc-text", "\n\n".join(paragraphs) + "\n\n   \n")  # a blank tail is not a paragraph
    page.fill("#doc-query", "how do I bake bread")
    page.click("#doc-go")
    expect(page.locator("#doc-ranked li")).to_have_count(3)
    shown = page.locator("#doc-ranked li .text").all_inner_texts()
    scores = [float(s) for s in page.locator("#doc-ranked li .score").all_inner_texts()]
    request = urllib.request.Request(
        f"{service_url}/rerank",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"query": "how do I bake bread", "texts": paragraphs}).encode(),
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        api = json.load(response)
    assert shown == [paragraphs[r["index"]] for r in api]
    assert scores == [round(r["score"], 4) for r in api] and scores == sorted(scores, reverse=True)
    page.screenshot(path=str(ARTIFACTS / "search-inside-a-document.png"), full_page=True)
    page.click("#tab-search")
    expect(page.locator("#search-form")).to_be_visible()
    expect(page.locator("#doc-form")).to_be_hidden()
