"""POST /judgments through Flask's test client, against a real Elasticsearch node: marks are
stored with time, client and index version; a re-mark overwrites; bad input is a 4xx; a
node that is down is a 503 with Retry-After."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from rrsearch.service.http.app import create_app
from rrsearch.service.judgments import judgment_doc_id, paragraph_id, query_id, query_key


@pytest.fixture(scope="module")
def judgments_index(es):
    name = f"test-judg-{uuid.uuid4().hex[:8]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def settings(es_settings, service_index, judgments_index):
    return es_settings.model_copy(
        update={
            "index_alias": service_index,
            "judgments_index": judgments_index,
            "search_log_enabled": False,
            "rerank_enabled": False,
            "search_timeout_s": 10.0,
            "judgments_max_batch": 5,
        }
    )


@pytest.fixture(scope="module")
def client(settings, bi_encoder):
    app = create_app(settings, bi_encoder=bi_encoder, reranker=None)
    return app.test_client()


def stored(es, index: str) -> list[dict]:
    es.indices.refresh(index=index)
    return [
        hit["_source"] | {"_id": hit["_id"]}
        for hit in es.search(index=index, size=100, sort=["@timestamp"])["hits"]["hits"]
    ]


def test_a_mark_is_stored_with_time_client_and_index_version_and_a_remark_wins(client, es, settings, judgments_index):
    concrete = next(iter(es.indices.get_alias(name=settings.index_alias)))
    first = client.post("/judgments", json={"query": "Moons of  Mars", "id": "astro-001", "grade": 1})
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["stored"] == 1
    mark = body["judgments"][0]
    assert (mark["id"], mark["grade"], mark["kind"], mark["index"], mark["index_version"]) == (
        "astro-001",
        1,
        "document",
        settings.index_alias,
        concrete,
    )
    assert mark["client"] == "127.0.0.1"  # no API keys: the client address
    assert mark["judgment_id"] == judgment_doc_id(
        settings.index_alias, query_key("moons of mars"), "astro-001", "127.0.0.1"
    )

    again = client.post("/judgments", json={"query": "moons of mars", "id": "astro-001", "grade": 2})
    assert again.status_code == 200 and again.get_json()["judgments"][0]["judgment_id"] == mark["judgment_id"]
    records = [r for r in stored(es, judgments_index) if r["id"] == "astro-001"]
    assert len(records) == 1, records  # the latest mark per (query, id, client) wins
    record = records[0]
    assert record["grade"] == 2 and record["query"] == "moons of mars" and record["index_version"] == concrete
    assert record["@timestamp"] and record["request_id"] == again.headers["X-Request-Id"]


def test_a_batch_and_a_pasted_paragraph(client, es, judgments_index):
    paragraph = "Bake the loaf in a hot oven with steam for a crisp crust."
    response = client.post(
        "/judgments",
        json={
            "judgments": [
                {"query": "crisp bread crust", "id": "astro-001", "grade": 0},
                {"query": "crisp bread crust", "paragraph": paragraph, "grade": 2},
            ]
        },
    )
    assert response.status_code == 200, response.get_json()
    marks = response.get_json()["judgments"]
    assert [(m["kind"], m["grade"]) for m in marks] == [("document", 0), ("paragraph", 2)]
    assert marks[1]["id"] == paragraph_id(paragraph) and marks[1]["index_version"] is None
    record = next(r for r in stored(es, judgments_index) if r["id"] == paragraph_id(paragraph))
    assert record["paragraph"] == paragraph and record["kind"] == "paragraph"


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ({"query": "bread", "id": "astro-001", "grade": 3}, 400, "invalid_request", "grade"),
        ({"query": "bread", "id": "astro-001", "grade": True}, 400, "invalid_request", "grade"),
        ({"query": "   ", "id": "astro-001", "grade": 1}, 400, "invalid_request", "query"),
        ({"query": "bread", "grade": 1}, 400, "invalid_request", "body"),
        ({"query": "bread", "id": "astro-001", "paragraph": "text", "grade": 1}, 400, "invalid_request", "body"),
        ({"query": "bread", "id": "astro-001", "grade": 1, "extra": 1}, 400, "invalid_request", "extra"),
        ({"query": "b" * 1001, "id": "astro-001", "grade": 1}, 400, "invalid_request", "query"),
        ({"judgments": []}, 400, "invalid_request", "judgments"),
        ({"judgments": [{"query": "q", "id": "astro-001", "grade": 1}] * 6}, 400, "invalid_request", "judgments"),
        ({"query": "bread", "id": "no-such-doc", "grade": 1}, 404, "document_not_found", "id"),
        ({"query": "bread", "id": "astro-001", "grade": 1, "index": "elsewhere"}, 404, "index_not_found", "index"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, body, status, error, field):
    response = client.post("/judgments", json=body)
    answer = response.get_json()
    assert (response.status_code, answer["error"], answer["field"]) == (status, error, field), answer


def test_a_batch_with_one_unknown_id_stores_nothing(client, es, judgments_index):
    response = client.post(
        "/judgments",
        json={
            "judgments": [
                {"query": "all or none", "id": "astro-001", "grade": 2},
                {"query": "all or none", "id": "missing-doc", "grade": 2},
            ]
        },
    )
    answer = response.get_json()
    assert response.status_code == 404 and answer["field"] == "judgments.1.id", answer
    assert "missing-doc" in answer["message"]
    assert not [r for r in stored(es, judgments_index) if r["query"] == "all or none"]


def test_the_api_key_guards_it_and_names_the_client(settings, bi_encoder, es, judgments_index):
    keyed = create_app(
        settings.model_copy(update={"api_keys": SecretStr("judge-key-1")}), bi_encoder=bi_encoder, reranker=None
    ).test_client()
    body = {"query": "who judged", "id": "astro-001", "grade": 2}
    assert keyed.post("/judgments", json=body).status_code == 401
    response = keyed.post("/judgments", json=body, headers={"Authorization": "Bearer judge-key-1"})
    assert response.status_code == 200, response.get_json()
    client_id = response.get_json()["judgments"][0]["client"]
    assert client_id.startswith("key:") and "judge-key-1" not in client_id
    record = next(r for r in stored(es, judgments_index) if r["query"] == "who judged")
    assert record["client"] == client_id


def test_elasticsearch_down_is_503_with_retry_after(settings, bi_encoder):
    from rrsearch.rrs.local_node import first_free_port

    closed = f"http://127.0.0.1:{first_free_port(39_700)}"
    client = create_app(
        settings.model_copy(update={"es_url": closed, "search_timeout_s": 2.0}), bi_encoder=bi_encoder, reranker=None
    ).test_client()
    response = client.post("/judgments", json={"query": "bread", "id": "astro-001", "grade": 1})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"] == "search_backend_unavailable"


def test_openapi_documents_the_endpoint(client):
    from openapi_spec_validator import validate

    spec = client.get("/openapi.json").get_json()
    validate(spec)
    operation = spec["paths"]["/judgments"]["post"]
    assert {"200", "400", "404", "413", "503"} <= set(operation["responses"])
    request = spec["components"]["schemas"]["JudgmentRequest"]
    assert request["properties"]["grade"]["enum"] == [0, 1, 2]
    assert spec["components"]["schemas"]["JudgmentBatch"]["properties"]["judgments"]["maxItems"] == 5


def queries_in(split: str, count: int) -> list[str]:
    """Queries (about the sample corpus) whose ids fall in ``split`` at the default share."""
    from rrsearch.evaluation.judgments_export import split_of
    from rrsearch.service.judgments import query_id

    found = [
        f"planet moons question {n}"
        for n in range(200)
        if split_of(query_id(query_key(f"planet moons question {n}")), 0.2) == split
    ]
    return found[:count]


def test_export_writes_a_beir_folder_the_readers_accept(
    client, es, settings, judgments_index, cli_env, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.rrs.cli import main
    from rrsearch.training.judgments import load_beir_judgments

    train_query, test_query = queries_in("train", 1)[0], queries_in("test", 1)[0]
    for query, address, doc, grade in [
        (train_query, "10.0.0.1", "astro-001", 2),
        (train_query, "10.0.0.2", "astro-001", 1),
        (train_query, "10.0.0.1", "astro-002", 0),
        (test_query, "10.0.0.1", "astro-002", 2),
    ]:
        response = client.post(
            "/judgments", json={"query": query, "id": doc, "grade": grade}, environ_base={"REMOTE_ADDR": address}
        )
        assert response.status_code == 200, response.get_json()
    pasted = client.post(
        "/judgments", json={"query": test_query, "paragraph": "Two small moons circle Mars.", "grade": 2}
    )
    assert pasted.status_code == 200, pasted.get_json()
    monkeypatch.setenv("RRS_JUDGMENTS_INDEX", judgments_index)
    monkeypatch.setenv("RRS_INDEX_ALIAS", settings.index_alias)
    output = tmp_path / "judged"
    result = CliRunner().invoke(main, ["judgments", "export", "--output", str(output), "--paragraphs"])
    assert result.exit_code == 0, result.output
    facts = json.loads((output / "judgments.json").read_text())
    assert facts["paragraphs"] >= 1 and facts["queries"]["test"] >= 1 and facts["queries"]["train"] >= 1

    train, test = load_dataset(output, "train"), load_dataset(output, "test")
    train_id, test_id = query_id(query_key(train_query)), query_id(query_key(test_query))
    assert train.qrels[train_id] == {"astro-001": 1, "astro-002": 0}  # clients 2 and 1 -> 1 (mean 1.5, half down)
    assert test.qrels[test_id]["astro-002"] == 2 and test_id not in train.qrels
    corpus = {json.loads(line)["_id"]: json.loads(line) for line in (output / "corpus.jsonl").read_text().splitlines()}
    sample = json.loads((Path(__file__).resolve().parents[2] / "sample" / "corpus.jsonl").read_text().splitlines()[0])
    assert corpus["astro-001"]["title"] == sample["title"]
    assert corpus["astro-001"]["text"].split() == sample["text"].split()  # its two passages joined back
    assert (
        corpus[paragraph_id("Two small moons circle Mars.")]["text"] == "Two small moons circle Mars."
    )  # --paragraphs
    assert test.qrels[test_id][paragraph_id("Two small moons circle Mars.")] == 2
    trained = {q.id: q for q in load_beir_judgments(output, "train")}
    assert trained[train_id].positive_ids == ["astro-001"] and trained[train_id].negative_ids == ["astro-002"]

    again = CliRunner().invoke(main, ["judgments", "export", "--output", str(output)])  # no paragraphs: left out
    assert again.exit_code == 0 and "paragraph mark(s) left out" in again.output
    assert not any(
        doc_id.startswith("para-")
        for doc_id in (json.loads(line)["_id"] for line in (output / "corpus.jsonl").read_text().splitlines())
    )


def test_export_errors_are_one_line(cli_env, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from rrsearch.rrs.cli import main

    monkeypatch.setenv("RRS_JUDGMENTS_INDEX", f"test-judg-none-{uuid.uuid4().hex[:6]}")
    result = CliRunner().invoke(main, ["judgments", "export", "--index", "passages", "--output", str(tmp_path / "x")])
    assert result.exit_code == 2 and result.output.startswith("error: no judgments index"), result.output
    assert "Traceback" not in result.output
