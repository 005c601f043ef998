"""Hostile files through the readers and validation (no node): for each file the test knows
which lines become records and which become rejects, with which line number and reason."""

from __future__ import annotations

import codecs
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rrsearch.core.errors import RecordRejected
from rrsearch.ingest.chunking import bound_spans
from rrsearch.ingest.sources import read_csv, read_jsonl, read_parquet, read_sources, source_digest
from rrsearch.ingest.validate import FieldMap, Limits, to_document

DEFAULT_LIMITS = Limits()


def outcome(records, limits: Limits = DEFAULT_LIMITS) -> tuple[dict[int, str], dict[int, str]]:
    """(line -> document id for accepted records, line -> reason for rejected ones)."""
    accepted, rejected = {}, {}
    for record in records:
        try:
            accepted[record.line] = to_document(record, FieldMap(), limits=limits).id
        except RecordRejected as exc:
            rejected[record.line] = str(exc)
    return accepted, rejected


def jsonl(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def test_one_bad_byte_costs_one_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        jsonl(
            {"id": "a1", "text": "one"},
            {"id": "a2", "text": "two"},
            b'{"id": "a3", "text": "bad \xff byte"}',
            {"id": "a4", "text": "four"},
        )
    )
    accepted, rejected = outcome(read_jsonl(path))
    assert accepted == {1: "a1", 2: "a2", 4: "a4"}
    assert list(rejected) == [3] and rejected[3] == "not UTF-8: invalid start byte at byte 27 of the line"


def test_a_bad_line_in_the_middle_of_a_long_file_loses_nothing_else(tmp_path):
    path = tmp_path / "long.jsonl"
    lines = [json.dumps({"id": f"d{n}", "text": f"text {n}"}).encode() for n in range(1, 54)]
    lines[26] = b'{"id": "d27", "text": "caf\xe9"}'  # latin-1
    path.write_bytes(b"\n".join(lines) + b"\n")
    accepted, rejected = outcome(read_jsonl(path))
    assert sorted(accepted) == [n for n in range(1, 54) if n != 27] and list(rejected) == [27]


def test_latin1_file_rejects_only_the_lines_with_non_ascii(tmp_path):
    path = tmp_path / "latin1.jsonl"
    text = "\n".join(
        json.dumps({"id": f"l{n}", "text": t}, ensure_ascii=False)
        for n, t in enumerate(["plain", "café", "plain again", "naïve"], start=1)
    )
    path.write_bytes(text.encode("latin-1"))  # no final newline either
    accepted, rejected = outcome(read_jsonl(path))
    assert accepted == {1: "l1", 3: "l3"} and sorted(rejected) == [2, 4]


def test_bom_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + b'{"id": "b1", "text": "x"}\r\n\r\n   \r\n{"id": "b2", "text": "y"}\r\n')
    accepted, rejected = outcome(read_jsonl(path))
    assert accepted == {1: "b1", 4: "b2"} and rejected == {}


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_byte_order_mark(tmp_path, codec):
    path = tmp_path / "wide.jsonl"
    body = '{"id": "w1", "text": "größe"}\n{"id": "w2", "text": "🙂"}\n'
    data = body.encode(codec)
    if codec == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    path.write_bytes(data)
    accepted, rejected = outcome(read_jsonl(path))
    assert accepted == {1: "w1", 2: "w2"} and rejected == {}


def test_nul_control_characters_surrogates_and_nan(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(
        jsonl(
            b'{"id": "n1", "text": "raw \x00 nul"}',  # 1 raw NUL: not JSON
            {"id": "n2", "text": "escaped \u0000 nul"},  # 2 escaped NUL: a character like any other
            b'{"id": "n3", "text": "raw \x07 bell"}',  # 3 raw control character: not JSON
            b'{"id": "n4", "text": "lone \\ud800 surrogate"}',  # 4 cannot be sent as UTF-8
            b'{"id": "n5", "text": "ok", "metadata": {"score": NaN}}',  # 5 NaN is not JSON
            b"[1, 2]",  # 6 not an object
            b"[" * 100_000 + b"]" * 100_000,  # 7 nested too deeply
            {"id": "n8", "text": "tab\there and ünïcode"},  # 8 fine
        )
    )
    accepted, rejected = outcome(read_jsonl(path))
    assert accepted == {2: "n2", 8: "n8"}
    assert rejected[1].startswith("bad JSON: Invalid control character")
    assert rejected[3].startswith("bad JSON: Invalid control character")
    assert "surrogates not allowed" in rejected[4] and "\\ud800" in rejected[4]
    assert rejected[5] == "bad JSON: NaN is not JSON"
    assert rejected[6] == "expected a JSON object, got list"
    assert rejected[7] == "bad JSON: nested too deeply"


def test_enormous_line_is_rejected_unread_and_the_next_line_goes_on(tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_bytes(jsonl({"id": "h1", "text": "a"}, {"id": "h2", "text": "x" * 50_000}, {"id": "h3", "text": "c"}))
    records = list(read_jsonl(path, max_line_bytes=4096))
    accepted, rejected = outcome(records)
    assert accepted == {1: "h1", 3: "h3"}
    assert rejected[2] == "line is 50025 bytes, over the limit of 4096"
    assert len(records[1].raw) <= 2003  # the rejects file gets an excerpt, not 50 kB


def test_size_caps_on_text_title_and_metadata(tmp_path):
    path = tmp_path / "caps.jsonl"
    path.write_bytes(
        jsonl(
            {"id": "s1", "text": "t" * 101},
            {"id": "s2", "title": "T" * 21, "text": "fine"},
            {"id": "s3", "text": "fine", "metadata": {"blob": "m" * 100}},
            {"id": "s4", "title": "T" * 20, "text": "t" * 100, "metadata": {"k": "v"}},
        )
    )
    accepted, rejected = outcome(read_jsonl(path), Limits(text_chars=100, title_chars=20, metadata_bytes=64))
    assert accepted == {4: "s4"}
    assert rejected[1] == "field 'text': 101 characters, over the limit of 100"
    assert rejected[2] == "field 'title': 21 characters, over the limit of 20"
    assert rejected[3] == "field 'metadata': 112 bytes as JSON, over the limit of 64"


def test_empty_files_and_files_of_blank_lines_hold_no_records(tmp_path):
    empty, blank = tmp_path / "empty.jsonl", tmp_path / "blank.csv"
    empty.write_bytes(b"")
    blank.write_bytes(b"\n\n")
    assert list(read_sources([empty, blank])) == []


def test_gzip_that_ends_early_says_where_reading_stopped(tmp_path):
    lines = jsonl(
        *({"id": f"t{n}", "text": f"line {n} of a gzip file that is cut short, padded"} for n in range(1, 201))
    )
    data = gzip.compress(lines)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    accepted, rejected = outcome(read_jsonl(path))
    (last,) = rejected
    assert sorted(accepted) == list(range(1, last))  # every line before the cut, none after
    assert 1 < last < 200
    assert rejected[last].startswith(f"file cannot be read past line {last - 1} (EOFError")
    assert "the rest of the file is not ingested" in rejected[last]


def test_csv_ragged_rows_bad_bytes_and_quoted_newlines(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(
        b"id,title,text\r\n"  # 1 header
        b"c2,Two,fine\r\n"  # 2
        b"c3,Three,too,many\r\n"  # 3 extra field
        b"c4,Four\r\n"  # 4 missing field
        b"c5,Five,caf\xe9\r\n"  # 5 not UTF-8
        b'c6,Six,"two\r\nlines"\r\n'  # 6-7 one row
        b"c8,Eight,\x00nul is data in CSV\r\n"  # 8
    )
    accepted, rejected = outcome(read_csv(path))
    assert accepted == {2: "c2", 6: "c6", 8: "c8"}
    assert rejected[3] == "row has 4 fields, header has 3"
    assert rejected[4] == "row has fewer fields than the header (3)"
    assert rejected[5].startswith("line 5: not UTF-8")


def test_csv_unclosed_quote_names_the_lines_it_swallowed(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_bytes(b'id,text\nq2,fine\nq3,"x"y\nq4,ok\nq5,"never closed\nq6,more\nq7,end\n')
    accepted, rejected = outcome(read_csv(path))
    assert accepted == {2: "q2", 4: "q4"}
    assert rejected == {
        3: "bad CSV row: ',' expected after '\"'",
        5: "bad CSV row: unexpected end of data (the row spans lines 5-7)",
    }


def test_parquet_with_wrong_types_rejects_every_row_by_number(tmp_path):
    good, wrong = tmp_path / "good.parquet", tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": ["one", "two"]}), good)
    pq.write_table(pa.table({"id": ["x1", "x2", "x3"], "text": [1, 2, 3]}), wrong)
    assert outcome(read_parquet(good)) == ({1: "1", 2: "2"}, {})
    accepted, rejected = outcome(read_parquet(wrong))
    assert accepted == {} and rejected == dict.fromkeys((1, 2, 3), "field 'text': must be a string, got int")


def test_ids_of_every_awkward_kind(tmp_path):
    path = tmp_path / "ids.jsonl"
    path.write_bytes(
        jsonl(
            {"id": "a/b?c=d&e", "text": "1"},
            {"id": "a#1", "text": "2"},
            {"id": "  spaced  ", "text": "3"},
            {"id": "ünï🙂", "text": "4"},
            {"id": -1, "text": "5"},
            {"id": 10**30, "text": "6"},
            {"id": "x" * 481, "text": "7"},
            {"id": True, "text": "8"},
            {"id": 1.5, "text": "9"},
            {"id": "", "text": "10"},
            {"id": None, "text": "11"},
            {"id": "   ", "text": "12"},
            {"id": ["list"], "text": "13"},
        )
    )
    accepted, rejected = outcome(read_jsonl(path))
    assert [accepted[n] for n in range(1, 7)] == ["a/b?c=d&e", "a#1", "  spaced  ", "ünï🙂", "-1", str(10**30)]
    assert accepted[10].startswith("doc-") and accepted[11].startswith("doc-")  # no id: derived from content
    assert sorted(rejected) == [7, 8, 9, 12, 13]
    assert "longer than 480 bytes" in rejected[7]
    assert rejected[8] == "field 'id': id must be a string or an integer, got bool"
    assert "got float" in rejected[9] and "id is empty" in rejected[12] and "got list" in rejected[13]


def test_unbreakable_runs_are_cut_into_bounded_passages():
    assert bound_spans([(0, 12_000)], 5_000) == [(0, 5_000), (5_000, 10_000), (10_000, 12_000)]
    assert bound_spans([(3, 9)], 5_000) == [(3, 9)]


def test_resume_key_follows_content_not_path(tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_bytes(b'{"id": 1, "text": "x"}\n')
    two.write_bytes(one.read_bytes())
    assert source_digest(one) == source_digest(two)
    two.write_bytes(b'{"id": 1, "text": "y"}\n')
    assert source_digest(one) != source_digest(two)
