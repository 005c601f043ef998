"""Shards read as the whole file reads: for hostile JSONL/CSV/Parquet files and a folder, the
records of every shard, in shard order, equal the whole-file reader's (same data, errors and
true lines), at every shard size from one line per shard to one shard per file."""

from __future__ import annotations

import gzip
import json

import pytest

from rrsearch.ingest.shards import CsvQuoteState, plan_shards, read_shard
from rrsearch.ingest.sources import read_sources

MAX_LINE = 1024


def _jsonl(path):
    lines = [
        json.dumps({"id": "a1", "text": "alpha"}).encode(),
        b"",
        b'{"id": "a2", "text": "bad \xff byte"}',
        b'{"id": "a3", "text": ',
        json.dumps({"id": "a4", "text": "x" * 3000}).encode(),  # over MAX_LINE
        b"\xef\xbb\xbf" + json.dumps({"id": "a5", "text": "bom mid-file"}).encode(),
        json.dumps({"id": "a1", "text": "alpha again"}).encode(),
        b"[1, 2]",
    ]
    path.write_bytes(
        b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n" + json.dumps({"id": "z", "text": "no newline"}).encode()
    )
    return path


def _csv(path):
    path.write_bytes(
        b'id,title,text\r\nc1,One,"two\r\nlines, with ""quotes""\r\nand three"\r\n'
        b'c2,Two,plain\r\nc3,Th"ree,"bare quote above"\r\nc4,"Four"x,strict error\r\n'
        b'c5,Five,caf\xe9\r\nc6,Six,"open\r\nstill open\r\nclosed"\r\nc7,Seven,too,many\r\nc8,Eight,last\r\n'
    )
    return path


def _records(records):
    return [(r.source, r.line, r.data, r.raw, r.error) for r in records]


@pytest.mark.parametrize("target_bytes", [1, 7, 40, 100, 10_000])
@pytest.mark.parametrize("maker", [_jsonl, _csv])
def test_shards_of_a_line_file_read_as_the_whole_file(tmp_path, maker, target_bytes):
    path = maker(tmp_path / ("f.jsonl" if maker is _jsonl else "f.csv"))
    shards = plan_shards([path], target_bytes=target_bytes, max_line_bytes=MAX_LINE)
    if target_bytes < 100:
        assert len(shards) > 3
    assert [s.index for s in shards] == list(range(len(shards)))
    whole = _records(read_sources([path], MAX_LINE))
    pieces = [r for shard in shards for r in _records(read_shard(shard, MAX_LINE))]
    assert pieces == whole
    assert len({shard.key for shard in shards}) == len(shards)


def test_csv_cuts_only_between_rows(tmp_path):
    path = _csv(tmp_path / "f.csv")
    shards = plan_shards([path], target_bytes=1, max_line_bytes=MAX_LINE)
    starts = [s.first_line for s in shards]
    assert starts[0] == 1 and 3 not in starts and 4 not in starts  # lines 2-4 are one row
    assert 10 not in starts and 11 not in starts  # and lines 9-11


def test_quote_state_follows_the_csv_module():
    state = CsvQuoteState()
    for line, open_after in [
        ('a,"b\n', True),
        ('c""d\n', True),
        ('e",f\n', False),
        ('g"h,"i\n', True),
        ('j"k\n', False),
        ('"x"y,"z\n', False),
    ]:
        state.feed(line)
        assert state.in_quotes is open_after, line


def test_parquet_row_groups_and_folder_files_are_shards(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [f"p{n}" for n in range(10)], "text": [f"row {n}" for n in range(10)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=3)
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first")
    (folder / "sub" / "b.md").write_text("# B\nsecond")
    (folder / ".hidden.txt").write_text("skipped")
    gz = tmp_path / "g.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"id": 1, "text": "one"}\n{"id": 2, "text": "two"}\n'))
    sources = [tmp_path / "t.parquet", folder, gz]
    shards = plan_shards(sources, target_bytes=1)
    assert [(s.kind, s.row_group, s.first_line) for s in shards] == [
        ("parquet", 0, 1),
        ("parquet", 1, 4),
        ("parquet", 2, 7),
        ("parquet", 3, 10),
        ("file", None, 1),
        ("file", None, 1),
        ("jsonl", None, 1),
    ]
    assert [r for s in shards for r in _records(read_shard(s))] == _records(read_sources(sources))
