"""Judgments from use, end to end in a real browser: marks made on the search page (Debian's
chromium driven by Playwright, against the real service and a real Elasticsearch node) ->
``rrs judgments export`` -> ``rrs eval`` on the exported folder gives a result.

One page session: hits marked (and re-marked: the latest wins), a mark refused by the server
shown as such, a paragraph marked on the rerank tab.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from test_search_page import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serving

from rrsearch.evaluation.judgments_export import split_of
from rrsearch.service.http.app import create_app
from rrsearch.service.judgments import paragraph_id, query_id, query_key
from rrsearch.service.rerank import load_reranker

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' (Playwright)")
expect = playwright_api.expect

DOCS = [
    ("astro-1", "Moons of Jupiter", "Galileo saw four moons of Jupiter through his telescope in 1610."),
    ("astro-2", "Binary stars", "Two stars orbiting a common centre of mass form a binary star system."),
    ("astro-3", "Saturn's rings", "Saturn's rings are ice and rock; a small telescope shows them clearly."),
    ("bake-1", "Sourdough starter", "A sourdough starter is wild yeast and lactic acid bacteria fed with flour."),
    ("bake-2", "Bread crust", "A hot oven and steam give bread a crisp, shiny crust."),
    ("bake-3", "Rye bread", "Rye flour holds less gluten, so rye bread is dense and often sour."),
    ("garden-1", "Tomato blight", "Late blight spreads on tomato leaves in wet, warm weather."),
    ("garden-2", "Compost", "Compost turns kitchen scraps and leaves into soil food within months."),
]
WORDS = [
    "please",
    "facts",
    "history",
    "today",
    "explained",
    "quickly",
    "basics",
    "guide",
    "overview",
    "notes",
    "summary",
    "details",
    "questions",
    "answers",
    "help",
    "ideas",
    "tips",
    "science",
    "simple",
    "short",
]


def query_in(split: str, base: str) -> str:
    """A query about ``base`` whose id falls in ``split`` at the default test share (0.2)."""
    return next(
        text for text in (f"{base} {word}" for word in WORDS) if split_of(query_id(query_key(text)), 0.2) == split
    )


@pytest.fixture(scope="module")
def judged_index(es, es_settings, bi_encoder):
    from elasticsearch import helpers

    from rrsearch.core.encoders import embedding_dims, encode_passages, model_label
    from rrsearch.core.indexes import delete_alias_and_versions, ensure_alias, passage_index_body

    name = f"test-judged-{uuid.uuid4().hex[:8]}"
    label = model_label("all-MiniLM-L6-v2")
    ensure_alias(es, name, passage_index_body(es, es_settings, dims=embedding_dims(bi_encoder), model=label))
    vectors = encode_passages(bi_encoder, [f"{title}. {text}" for _, title, text in DOCS])
    helpers.bulk(
        es,
        (
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
                    "metadata": {},
                    "model": label,
                    "embedding": vector.tolist(),
                },
            }
            for (doc_id, title, text), vector in zip(DOCS, vectors)
        ),
        refresh="wait_for",
    )
    yield name
    delete_alias_and_versions(es, name)


@pytest.fixture(scope="module")
def judgments_index(es):
    name = f"test-judg-page-{uuid.uuid4().hex[:8]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def service_url(es_settings, es, bi_encoder, judged_index, judgments_index, tiny_cross_encoder_dir):
    settings = es_settings.model_copy(
        update={
            "index_alias": judged_index,
            "judgments_index": judgments_index,
            "cross_encoder": str(tiny_cross_encoder_dir),
            "search_log_enabled": False,
            "search_timeout_s": 10.0,
            "rerank_timeout_ms": 30_000.0,
            "api_keys": None,
        }
    )
    reranker = load_reranker(str(tiny_cross_encoder_dir), settings)
    with serving(create_app(settings, es=es, bi_encoder=bi_encoder, reranker=reranker)) as url:
        yield url


@pytest.fixture
def page(tmp_path):
    """A fresh chromium tab; any script error, or a console error other than the one refused mark, fails."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (./run test installs it)")
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1100, "height": 1400},
        )
        tab = context.new_page()
        tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        tab.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and "status of 404" not in msg.text
                else None
            ),
        )
        yield tab
        context.close()
    assert problems == []


def search(page, query: str) -> None:
    page.fill("#query", query)
    page.press("#query", "Enter")
    expect(page.locator("#status")).to_contain_text(query)


def mark(page, item, grade: int):
    group = item.locator(".judge")
    group.locator(f'button[data-grade="{grade}"]').click()
    expect(group).not_to_have_attribute("data-state", "sending")
    return group


def test_marks_on_the_page_export_and_evaluate(
    page, service_url, es, judged_index, judgments_index, tmp_path, cli_env, monkeypatch
):
    from click.testing import CliRunner

    from rrsearch.rrs.cli import main

    test_query, train_query = query_in("test", "moons of jupiter"), query_in("train", "crisp bread crust")
    page.goto(service_url + "/")
    page.uncheck("#rerank")  # the tiny reranker is random: judge the hybrid order

    search(page, test_query)
    hits = page.locator("#hits > li")
    first_id = hits.nth(0).get_attribute("data-id")
    assert first_id == "astro-1"
    group = mark(page, hits.nth(0), 0)
    expect(group).to_have_attribute("data-state", "saved")
    group = mark(page, hits.nth(0), 2)  # changed their mind: the latest mark wins
    expect(group).to_have_attribute("data-state", "saved")
    expect(group.locator(".judge-state")).to_have_text(f"marked relevant (2) for “{test_query}”")
    expect(group.locator('button[aria-pressed="true"]')).to_have_attribute("data-grade", "2")
    second_id = hits.nth(1).get_attribute("data-id")
    expect(mark(page, hits.nth(1), 1)).to_have_attribute("data-state", "saved")

    search(page, train_query)
    first_train = hits.nth(0).get_attribute("data-id")
    expect(mark(page, hits.nth(0), 2)).to_have_attribute("data-state", "saved")
    shown = hits.evaluate_all("items => items.map(i => i.dataset.id)")
    gone = next(doc for doc in shown[1:] if doc not in {first_id, second_id})
    es.delete(index=judged_index, id=gone, refresh=True)  # a hit whose document was deleted meanwhile
    refused = mark(page, page.locator(f'#hits > li[data-id="{gone}"]'), 2)
    expect(refused).to_have_attribute("data-state", "error")
    expect(refused.locator(".judge-state")).to_contain_text("404 (document_not_found)")
    expect(refused.locator(".judge-state")).to_contain_text(gone)
    page.screenshot(path=str(ARTIFACTS / "judgments-marks.png"), full_page=True)

    page.click("#tab-doc")  # the rerank tab: a pasted paragraph is marked by its text
    paragraphs = [
        "Bake the loaf in a hot oven with steam for a crisp crust.",
        "Saturn's rings are made of ice and rock.",
    ]
    page.fill("#doc-text", "\n\n".join(paragraphs))
    page.fill("#doc-query", train_query)
    page.click("#doc-go")
    ranked = page.locator("#doc-ranked li")
    expect(ranked).to_have_count(2)
    text = ranked.nth(0).locator(".text").inner_text()
    expect(mark(page, ranked.nth(0), 2)).to_have_attribute("data-state", "saved")

    monkeypatch.setenv("RRS_JUDGMENTS_INDEX", judgments_index)
    runner, output = CliRunner(), tmp_path / "from-use"
    exported = runner.invoke(main, ["judgments", "export", "--index", judged_index, "--output", str(output)])
    assert exported.exit_code == 0, exported.output
    assert "1 paragraph mark(s) left out" in exported.output
    qrels = {
        name: [line.split("\t") for line in (output / "qrels" / f"{name}.tsv").read_text().splitlines()[1:]]
        for name in ("train", "test")
    }
    test_id, train_id = query_id(query_key(test_query)), query_id(query_key(train_query))
    assert sorted(qrels["test"]) == sorted([[test_id, first_id, "2"], [test_id, second_id, "1"]])
    assert qrels["train"] == [[train_id, first_train, "2"]]
    with_paragraphs = runner.invoke(
        main,
        ["judgments", "export", "--index", judged_index, "--output", str(tmp_path / "with-paragraphs"), "--paragraphs"],
    )
    assert with_paragraphs.exit_code == 0, with_paragraphs.output
    assert f"{train_id}\t{paragraph_id(text)}\t2" in (tmp_path / "with-paragraphs" / "qrels" / "train.tsv").read_text()

    result_file = tmp_path / "eval.json"
    evaluated = runner.invoke(
        main,
        [
            "eval",
            str(output),
            "--index",
            judged_index,
            "--split",
            "test",
            "--configs",
            "bm25,hybrid_rrf",
            "--output",
            str(result_file),
            "--no-progress",
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(result_file.read_text())
    assert report["settings"]["queries"] == 1
    by_config = {r["config"]: r["metrics"] for r in report["results"]}
    assert set(by_config) == {"bm25", "hybrid_rrf"}
    assert by_config["hybrid_rrf"]["ndcg@10"] > 0.5  # the page's top hybrid hit, marked relevant, ranks near the top
