"""Each source format ends up as searchable passages with the documented fields."""

import gzip
import json
from itertools import islice

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rrsearch.core.encoders import encode_query, model_label
from rrsearch.core.indexes import current_index
from rrsearch.ingest.pipeline import run_ingest

SCIFACT = "/work/shared/data/scifact/corpus.jsonl.gz"


def _settings(es_settings, **extra):
    return es_settings.model_copy(update={"ingest_batch_size": 32, **extra})


def _hits(es, alias, query, **kw):
    return es.search(index=alias, query={"match": {"text": query}}, **kw)["hits"]["hits"]


def _doc_count(es, alias):
    """Distinct documents (parent ids) behind the alias."""
    agg = es.search(index=alias, size=0, aggs={"docs": {"cardinality": {"field": "parent_id"}}})
    return agg["aggregations"]["docs"]["value"]


def test_beir_corpus_gz_needs_no_options(es, es_settings, bi_encoder, alias, tmp_path):
    from pathlib import Path

    if not Path(SCIFACT).exists():
        pytest.skip("SciFact corpus not present")
    path = tmp_path / "corpus.jsonl.gz"
    with gzip.open(SCIFACT, "rt") as src, gzip.open(path, "wt") as dst:
        docs = [json.loads(line) for line in islice(src, 30)]
        dst.writelines(json.dumps(d) + "\n" for d in docs)
    report = run_ingest([path], _settings(es_settings), alias=alias, progress=False)
    assert (report.read, report.documents, report.rejected) == (30, 30, 0)
    assert report.completed and report.alias_moved and current_index(es, alias) == report.index_name
    assert es.count(index=alias)["count"] == report.chunks == report.indexed >= 30
    assert _doc_count(es, alias) == 30

    target = docs[7]
    source = es.get(index=alias, id=f"{target['_id']}#0")["_source"]
    assert source["parent_id"] == target["_id"] and source["title"] == target["title"]
    assert source["model"] == model_label("all-MiniLM-L6-v2") and source["source"] == "corpus.jsonl.gz"
    assert len(source["content_hash"]) == 32 and source["indexed_at"]
    assert target["text"].startswith(source["text"])

    vector = encode_query(bi_encoder, f"{target['title']}\n{source['text']}").tolist()
    knn = es.search(index=alias, knn={"field": "embedding", "query_vector": vector, "k": 1, "num_candidates": 50})
    assert knn["hits"]["hits"][0]["_source"]["parent_id"] == target["_id"]


def test_csv_with_extra_columns_as_metadata(es, es_settings, alias, tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text(
        "id,title,text,topic\n"
        'n1,Volcano,"Basalt lava flows from the shield volcano, slowly",geology\n'
        "n2,Bread,Sourdough needs a lively starter,baking\n"
    )
    report = run_ingest([path], _settings(es_settings), alias=alias, progress=False)
    assert report.documents == 2 and report.rejected == 0
    [hit] = _hits(es, alias, "sourdough")
    assert hit["_id"] == "n2#0" and hit["_source"]["metadata"] == {"topic": "baking"}
    # metadata strings are keywords: exact filtering works
    assert es.count(index=alias, query={"term": {"metadata.topic": "geology"}})["count"] == 1


def test_parquet(es, es_settings, alias, tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [101, 102],
                "title": ["Tides", "Comets"],
                "text": ["The moon pulls the oceans into tides.", "Comets grow tails near the sun."],
            }
        ),
        path,
    )
    report = run_ingest([path], _settings(es_settings), alias=alias, progress=False)
    assert report.documents == 2
    [hit] = _hits(es, alias, "comets tails")
    assert hit["_source"]["parent_id"] == "102"


def test_folder_of_txt_md_html_and_long_documents_are_chunked(es, es_settings, alias, tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "garden.txt").write_text("Tomatoes want full sun and steady water.")
    (folder / "recipe.md").write_text("# Pancakes\n\nWhisk flour, eggs and milk into a smooth batter.")
    (folder / "page.html").write_text(
        "<html><head><title>Orbits</title></head><body><script>x()</script>"
        "<p>Kepler described elliptical planetary orbits.</p></body></html>"
    )
    long_text = " ".join(f"Paragraph {i} discusses glaciers, moraines and meltwater erosion." for i in range(120))
    (folder / "long.txt").write_text(long_text)
    report = run_ingest([folder], _settings(es_settings), alias=alias, progress=False)
    assert report.documents == 4 and report.chunks > 4
    assert _hits(es, alias, "kepler")[0]["_source"]["title"] == "Orbits"
    assert "x()" not in json.dumps(_hits(es, alias, "kepler")[0]["_source"])
    assert _hits(es, alias, "batter")[0]["_source"]["title"] == "Pancakes"
    parts = es.search(index=alias, query={"term": {"parent_id": "long.txt"}}, size=100, sort=["chunk"])["hits"]["hits"]
    assert len(parts) == report.chunks - 3 > 1
    assert [p["_source"]["chunk"] for p in parts] == list(range(len(parts)))
    assert {p["_source"]["chunk_count"] for p in parts} == {len(parts)}
    assert [p["_id"] for p in parts] == [f"long.txt#{i}" for i in range(len(parts))]
    collapsed = es.search(index=alias, query={"match": {"text": "glaciers"}}, collapse={"field": "parent_id"})
    assert [h["_source"]["parent_id"] for h in collapsed["hits"]["hits"]] == ["long.txt"]
