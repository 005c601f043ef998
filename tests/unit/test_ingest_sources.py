"""Readers: every format, gzip, and file/line numbers on bad records."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rrsearch.ingest.sources import SourceError, check_sources, read_sources


def test_jsonl_good_and_bad_lines_carry_line_numbers(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "text": "one"}\n\n{not json\n[1, 2]\n{"id": "b", "text": "two"}\n')
    records = list(read_sources([path]))
    assert [(r.line, r.data["id"] if r.data else None) for r in records] == [(1, "a"), (3, None), (4, None), (5, "b")]
    assert records[1].error.startswith("bad JSON") and records[1].raw == "{not json"
    assert "expected a JSON object" in records[2].error
    assert all(r.source == str(path) for r in records)


def test_gzipped_jsonl(tmp_path):
    path = tmp_path / "corpus.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"_id": "9", "title": "T", "text": "x", "metadata": {}}) + "\n")
    [record] = read_sources([path])
    assert record.data["_id"] == "9" and record.line == 1


def test_csv_rows_with_quoted_newlines_keep_their_first_line(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text('id,title,text\n1,A,"multi\nline"\n2,B,short\n3,C\n4,D,x,extra\n')
    records = list(read_sources([path]))
    assert [r.line for r in records] == [2, 4, 5, 6]
    assert records[0].data == {"id": "1", "title": "A", "text": "multi\nline"}
    assert "fewer fields" in records[2].error and "header has 3" in records[3].error


def test_parquet_rows(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": ["a", "b"], "year": [2020, 2021]}), path)
    records = list(read_sources([path]))
    assert [(r.line, r.data) for r in records] == [
        (1, {"id": 1, "text": "a", "year": 2020}),
        (2, {"id": 2, "text": "b", "year": 2021}),
    ]


def test_folder_of_text_markdown_and_html(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("plain text")
    (tmp_path / "sub" / "b.md").write_text("# Heading\n\nbody")
    (tmp_path / "c.html").write_text(
        "<html><head><title>Page</title><style>x{}</style></head>"
        "<body><script>var a;</script><p>Hello <b>web</b></p></body></html>"
    )
    (tmp_path / ".hidden.txt").write_text("skip me")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    records = {r.data["id"]: r.data for r in read_sources([tmp_path])}
    assert set(records) == {"a.txt", "sub/b.md", "c.html"}
    assert records["a.txt"]["title"] == "a" and records["a.txt"]["text"] == "plain text"
    assert records["sub/b.md"]["title"] == "Heading"
    assert records["c.html"]["title"] == "Page" and records["c.html"]["text"] == "Hello\nweb"
    assert records["c.html"]["metadata"] == {"path": "c.html", "format": "html"}


def test_unknown_or_missing_source_fails_naming_it(tmp_path):
    bad = tmp_path / "notes.docx"
    bad.write_text("x")
    with pytest.raises(SourceError, match="notes.docx"):
        check_sources([bad])
    with pytest.raises(SourceError, match="missing.jsonl"):
        list(read_sources([tmp_path / "missing.jsonl"]))
