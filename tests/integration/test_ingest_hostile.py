"""Hostile input through a real ingest run: for every file the test knows which records end
up indexed and which in the rejects file (with their line), so a silent drop fails it."""

from __future__ import annotations

import json

import pytest

from rrsearch.ingest.pipeline import run_ingest


def jsonl(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def ingest(es, es_settings, alias, sources, rejects, **overrides):
    settings = es_settings.model_copy(update={"ingest_batch_size": 16, **overrides})
    return run_ingest(sources, settings, alias=alias, rejects_path=rejects, progress=False, es=es)


def indexed_parents(es, alias) -> dict[str, list[dict]]:
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=1000, query={"match_all": {}})["hits"]["hits"]
    parents: dict[str, list[dict]] = {}
    for hit in sorted(hits, key=lambda h: h["_source"]["chunk"]):
        parents.setdefault(hit["_source"]["parent_id"], []).append(hit["_source"])
    return parents


def rejected_lines(rejects) -> dict[tuple[str, int | None], dict]:
    entries = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    return {(entry["source"].rsplit("/", 1)[-1], entry["line"]): entry for entry in entries}


def test_hostile_files_end_to_end(es, es_settings, alias, tmp_path):
    bad_byte, rows, ids = tmp_path / "bad_byte.jsonl", tmp_path / "rows.csv", tmp_path / "ids.jsonl"
    bad_byte.write_bytes(
        jsonl(
            {"id": "a1", "text": "alpha one"},
            {"id": "a2", "text": "alpha two"},
            b'{"id": "a3", "text": "bad \xff"}',
            {"id": "a4", "text": "alpha four"},
        )
    )
    rows.write_bytes(
        b"id,title,text\r\nc2,Two,fine\r\nc3,Three,too,many\r\nc4,Four\r\nc5,Five,caf\xe9\r\n"
        b'c6,Six,"two\r\nlines"\r\nc8,Eight,last\r\n'
    )
    ids.write_bytes(
        jsonl(
            {"id": "a/b?c", "text": "slash"},
            {"id": "a#1", "text": "hash"},
            {"id": "ünï🙂", "text": "x"},
            {"id": 0, "text": "int zero"},
            {"id": True, "text": "bool"},
            {"id": "0", "text": "str zero"},
            {"id": "n", "text": "lone \ud800"},
            {"id": "m", "text": "m", "metadata": {"": 1}},
        )
    )
    rejects = tmp_path / "rejects.jsonl"
    report = ingest(es, es_settings, alias, [bad_byte, rows, ids], rejects)

    assert set(indexed_parents(es, alias)) == {"a1", "a2", "a4", "c2", "c6", "c8", "a/b?c", "a#1", "ünï🙂", "0"}
    found = rejected_lines(rejects)
    assert set(found) == {
        ("bad_byte.jsonl", 3),
        ("rows.csv", 3),
        ("rows.csv", 4),
        ("rows.csv", 5),
        ("ids.jsonl", 4),
        ("ids.jsonl", 5),
        ("ids.jsonl", 7),
        ("ids.jsonl", 8),
    }
    assert found[("ids.jsonl", 4)]["superseded"] and "superseded by line 6" in found[("ids.jsonl", 4)]["reason"]
    assert found[("ids.jsonl", 8)]["reason"].startswith("elasticsearch")  # an empty metadata key: ES refuses
    assert indexed_parents(es, alias)["0"][0]["text"] == "str zero"
    assert report.read == 4 + 6 + 8  # blank lines are not records; the CSV row on lines 6-7 is one
    assert (report.documents, report.rejected, report.duplicate_ids) == (10, 7, 1)
    assert report.read == report.documents + report.rejected + report.duplicate_ids


def test_duplicate_ids_last_one_wins_completely(es, es_settings, alias, tmp_path):
    long_text = " ".join(f"word{n} about river otters and their dens" for n in range(400))
    corpus, rejects = tmp_path / "dup.jsonl", tmp_path / "rejects.jsonl"
    corpus.write_bytes(
        jsonl(
            {"id": "d", "text": long_text}, {"id": "other", "text": "unrelated"}, {"id": "d", "text": "the short one"}
        )
    )
    report = ingest(es, es_settings, alias, [corpus], rejects)
    parents = indexed_parents(es, alias)
    assert [p["id"] for p in parents["d"]] == ["d#0"] and parents["d"][0]["text"] == "the short one"
    assert set(parents) == {"d", "other"}
    (entry,) = rejected_lines(rejects).values()
    assert entry["line"] == 1 and entry["id"] == "d" and "superseded by line 3" in entry["reason"]
    assert (report.read, report.documents, report.rejected, report.duplicate_ids) == (3, 2, 0, 1)

    # The same file into the live index (upsert): still one passage for d, nothing re-encoded.
    again = ingest(es, es_settings, alias, [corpus], rejects)
    assert [p["id"] for p in indexed_parents(es, alias)["d"]] == ["d#0"] and again.encoded == 0


@pytest.mark.parametrize("max_passage_chars, passage_count", [(100_000, 11), (2_000_000, 1)])
def test_an_unbreakable_megabyte_stays_searchable_with_highlights(
    es, es_settings, alias, tmp_path, bi_encoder, max_passage_chars, passage_count
):
    """Cut into bounded passages, or kept whole (past the index's highlight limit of 1,000,000
    characters): either way a highlighted search that matches it answers."""
    from rrsearch.service.pipeline import SearchPipeline
    from rrsearch.service.schemas import SearchRequest

    corpus = tmp_path / "huge.jsonl"
    corpus.write_bytes(
        jsonl(
            {"id": "huge", "title": "needle", "text": "needle haystack " + "z" * 1_050_000},
            {"id": "small", "text": "a needle in a small haystack"},
        )
    )
    report = ingest(
        es, es_settings, alias, [corpus], tmp_path / "rejects.jsonl", ingest_max_passage_chars=max_passage_chars
    )
    assert report.rejected == 0
    passages = indexed_parents(es, alias)["huge"]
    assert len(passages) == passage_count and max(len(p["text"]) for p in passages) <= max_passage_chars
    settings = es_settings.model_copy(update={"index_alias": alias})
    response = SearchPipeline(settings, es, bi_encoder).search(
        SearchRequest(query="needle haystack", highlight=True, rerank=False, top_k=5)
    )
    assert {hit.parent_id for hit in response.hits} >= {"huge", "small"}


def test_a_build_where_elasticsearch_refused_everything_does_not_get_the_alias(es, es_settings, alias, tmp_path):
    corpus, rejects = tmp_path / "refused.jsonl", tmp_path / "rejects.jsonl"
    corpus.write_bytes(jsonl(*({"id": f"r{n}", "text": "t", "metadata": {"": n}} for n in range(3))))
    report = ingest(es, es_settings, alias, [corpus], rejects)
    assert (report.documents, report.rejected, report.alias_moved) == (0, 3, False)
    assert not es.indices.exists_alias(name=alias)
    assert sorted(line for _, line in rejected_lines(rejects)) == [1, 2, 3]


@pytest.mark.parametrize("name", ["empty.jsonl", "blank.jsonl"])
def test_an_empty_source_indexes_nothing_and_moves_no_alias(es, es_settings, alias, tmp_path, name):
    corpus = tmp_path / name
    corpus.write_bytes(b"" if name == "empty.jsonl" else b"\n \n\n")
    report = ingest(es, es_settings, alias, [corpus], tmp_path / "rejects.jsonl")
    assert (report.read, report.documents, report.alias_moved) == (0, 0, False)
    assert not es.indices.exists_alias(name=alias)
