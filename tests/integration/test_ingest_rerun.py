"""Re-running is idempotent and cheap; changed documents are updated; documents can be deleted."""

import json

from click.testing import CliRunner

from rrsearch.ingest.pipeline import run_ingest
from rrsearch.rrs.cli import main


def _settings(es_settings):
    return es_settings.model_copy(
        update={"ingest_batch_size": 64, "ingest_chunk_tokens": 40, "ingest_chunk_overlap": 8}
    )


def _write(path, docs):
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))


def _passages_of(es, alias, parent):
    hits = es.search(index=alias, query={"term": {"parent_id": parent}}, size=100, sort=["chunk"])["hits"]["hits"]
    return [h["_id"] for h in hits]


def test_same_input_twice_gives_the_same_count_without_re_encoding(es, es_settings, alias, repo_root):
    sample = repo_root / "sample" / "corpus.jsonl"
    settings = es_settings.model_copy(update={"ingest_batch_size": 128})
    first = run_ingest([sample], settings, alias=alias, progress=False)
    count = es.count(index=alias)["count"]
    assert count == first.chunks == first.encoded and first.documents == 240
    second = run_ingest([sample], settings, alias=alias, progress=False)
    assert second.mode == "upsert" and second.index_name == first.index_name
    assert second.skipped_unchanged == second.chunks == first.chunks
    assert second.encoded == 0 and second.indexed == 0
    assert es.count(index=alias)["count"] == count
    # refresh interval restored after the bulk
    settings_now = es.indices.get_settings(index=first.index_name)[first.index_name]["settings"]["index"]
    assert settings_now.get("refresh_interval", "1s") == "1s"


def test_changed_documents_are_re_encoded_and_stale_passages_removed(es, es_settings, alias, tmp_path):
    settings = _settings(es_settings)
    long_text = " ".join(f"Line {i} about rivers and deltas." for i in range(60))
    docs = [
        {"id": "a", "title": "A", "text": long_text},
        {"id": "b", "title": "B", "text": "Bees dance to show where flowers are."},
        {"id": "c", "title": "C", "text": "Clouds form when moist air cools."},
    ]
    path = tmp_path / "docs.jsonl"
    _write(path, docs)
    first = run_ingest([path], settings, alias=alias, progress=False)
    a_passages = _passages_of(es, alias, "a")
    assert len(a_passages) > 2 and first.chunks == len(a_passages) + 2

    docs[0]["text"] = "Rivers now have a short story."  # shrinks to one passage
    docs[1]["text"] = "Bees dance to show where the best flowers are."
    _write(path, docs)
    second = run_ingest([path], settings, alias=alias, progress=False)
    assert second.encoded == 2 and second.skipped_unchanged == 1  # only c is unchanged
    assert second.deleted_stale == len(a_passages) - 1
    assert _passages_of(es, alias, "a") == ["a#0"]
    assert es.get(index=alias, id="a#0")["_source"]["chunk_count"] == 1
    assert es.count(index=alias)["count"] == 3
    hit = es.search(index=alias, query={"match": {"text": "best flowers"}})["hits"]["hits"][0]
    assert hit["_id"] == "b#0"


def test_delete_documents_by_id(es, es_settings, alias, tmp_path, cli_env):
    path = tmp_path / "docs.jsonl"
    long_text = " ".join(f"Sentence {i} on volcano ash." for i in range(50))
    _write(
        path,
        [
            {"id": "v", "text": long_text},
            {"id": "w", "text": "Whales sing."},
            {"id": "x", "text": "Xylem moves water."},
        ],
    )
    run_ingest([path], _settings(es_settings), alias=alias, progress=False)
    before = es.count(index=alias)["count"]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("x\n")
    result = CliRunner().invoke(main, ["delete", "v", "--ids-file", str(ids_file), "--index", alias])
    assert result.exit_code == 0, result.output
    assert f"deleted {before - 1} passage(s) of 2 document id(s)" in result.output
    remaining = es.search(index=alias, size=50)["hits"]["hits"]
    assert [h["_source"]["parent_id"] for h in remaining] == ["w"]
