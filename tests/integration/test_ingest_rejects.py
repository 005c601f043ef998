"""Bad records go to the rejects file with file, line and reason; the good ones are searchable."""

import json

from click.testing import CliRunner

from rrsearch.rrs.cli import main

GOOD = [
    {"id": "g1", "title": "Otters", "text": "Sea otters crack shellfish on their bellies.", "metadata": {"year": 2020}},
    {"id": "g2", "title": "Moss", "text": "Moss grows on the shaded side of old oaks.", "metadata": {"year": 2021}},
    {"id": "g3", "title": "Kites", "text": "A kite needs steady wind and a long string."},
]


def _write_corpus(path):
    lines = [
        json.dumps(GOOD[0]),  # 1 good
        "{this is not json",  # 2 bad JSON
        json.dumps({"id": "m1", "title": "No text"}),  # 3 missing text
        json.dumps(GOOD[1]),  # 4 good
        json.dumps({"id": "w1", "text": 42}),  # 5 wrong type
        "",  # 6 blank: skipped, not a record
        json.dumps({"id": "big", "text": "x" * 5000}),  # 7 over the size limit
        json.dumps(
            {"id": "e1", "text": "Year is a word here.", "metadata": {"year": "not a number"}}
        ),  # 8 ES mapping error
        json.dumps(GOOD[2]),  # 9 good
    ]
    path.write_text("\n".join(lines) + "\n")


def test_bad_lines_are_rejected_with_reasons_and_the_rest_is_indexed(es, alias, tmp_path, cli_env, monkeypatch):
    corpus, rejects = tmp_path / "mixed.jsonl", tmp_path / "rejects.jsonl"
    _write_corpus(corpus)
    monkeypatch.setenv("RRS_INGEST_MAX_TEXT_CHARS", "1000")
    result = CliRunner().invoke(
        main, ["ingest", str(corpus), "--index", alias, "--rejects", str(rejects), "--no-progress", "--batch-size", "4"]
    )
    assert result.exit_code == 1, result.output
    assert "5 record(s) rejected" in result.output
    entries = {e["line"]: e for e in map(json.loads, rejects.read_text().splitlines())}
    assert sorted(entries) == [2, 3, 5, 7, 8]
    assert all(e["source"] == str(corpus) for e in entries.values())
    assert entries[2]["reason"].startswith("bad JSON") and entries[2]["record"] == "{this is not json"
    assert "'text': missing" in entries[3]["reason"] and entries[3]["record"]["id"] == "m1"
    assert "must be a string, got int" in entries[5]["reason"]
    assert "over the limit of 1000" in entries[7]["reason"]
    assert entries[8]["reason"].startswith("elasticsearch") and "metadata.year" in entries[8]["reason"]
    assert entries[8]["id"] == "e1" and entries[8]["record"]["text"] == "Year is a word here."

    hits = es.search(index=alias, size=20)["hits"]["hits"]
    assert sorted(h["_source"]["parent_id"] for h in hits) == ["g1", "g2", "g3"]
    for doc in GOOD:
        found = es.search(index=alias, query={"match": {"text": doc["text"]}})["hits"]["hits"]
        assert found[0]["_source"]["parent_id"] == doc["id"]


def test_allow_rejects_exits_zero_and_json_report(alias, tmp_path, cli_env):
    corpus = tmp_path / "mixed.jsonl"
    corpus.write_text(json.dumps(GOOD[0]) + "\n{broken\n")
    result = CliRunner().invoke(
        main, ["ingest", str(corpus), "--index", alias, "--no-progress", "--allow-rejects", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["read"], report["rejected"], report["indexed"]) == (2, 1, 1)
    assert report["reject_examples"][0] == {
        "source": str(corpus),
        "line": 2,
        "reason": report["reject_examples"][0]["reason"],
    }
    assert set(report["stage_seconds"]) == {"read", "chunk", "lookup", "encode", "index"}


def test_unknown_source_fails_before_anything_happens(alias, tmp_path, cli_env, es):
    bad = tmp_path / "notes.docx"
    bad.write_text("x")
    result = CliRunner().invoke(main, ["ingest", str(bad), "--index", alias, "--no-progress"])
    assert result.exit_code == 2 and "notes.docx" in result.output
    assert not es.indices.exists_alias(name=alias)
