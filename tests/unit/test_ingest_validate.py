"""Validation: field maps, reasons for rejects, and the rejects file."""

import json

import pytest

from rrsearch.ingest.sources import RawRecord
from rrsearch.ingest.validate import FieldMap, Limits, RecordRejected, RejectsWriter, to_document


def _rec(data=None, **kw):
    return RawRecord("f.jsonl", 7, data=data, **kw)


def test_beir_record_needs_no_options():
    doc = to_document(_rec({"_id": "4983", "title": "T", "text": "body", "metadata": {}}), FieldMap())
    assert (doc.id, doc.title, doc.text, doc.metadata) == ("4983", "T", "body", {})


def test_integer_ids_and_extra_fields_are_kept():
    doc = to_document(_rec({"id": 12, "text": "x", "year": 2020, "metadata": {"topic": "a"}}), FieldMap())
    assert doc.id == "12" and doc.metadata == {"topic": "a", "year": 2020}
    lean = to_document(_rec({"id": 12, "text": "x", "year": 2020}), FieldMap(extra_to_metadata=False))
    assert lean.metadata == {}


def test_custom_field_map():
    fm = FieldMap(id=("doc_no",), title="headline", text="body", metadata="meta")
    doc = to_document(_rec({"doc_no": "n1", "headline": "H", "body": "B", "meta": {"k": "v"}}), fm)
    assert (doc.id, doc.title, doc.text, doc.metadata) == ("n1", "H", "B", {"k": "v"})


def test_missing_id_gets_a_stable_content_id():
    a = to_document(_rec({"title": "T", "text": "same"}), FieldMap())
    b = to_document(_rec({"title": "T", "text": "same"}), FieldMap())
    c = to_document(_rec({"title": "T", "text": "other"}), FieldMap())
    assert a.id == b.id != c.id and a.id.startswith("doc-")


@pytest.mark.parametrize(
    "data,reason",
    [
        ({"id": "1"}, "'text': missing"),
        ({"id": "1", "text": "   "}, "text is empty"),
        ({"id": "1", "text": 5}, "'text': must be a string, got int"),
        ({"id": "1", "text": "x", "title": ["a"]}, "'title': must be a string, got list"),
        ({"id": {"a": 1}, "text": "x"}, "id must be a string or an integer, got dict"),
        ({"id": "1", "text": "x", "metadata": "nope"}, "'metadata': must be an object"),
        ({"id": "x" * 600, "text": "x"}, "id longer than"),
        ({"id": "1", "text": "x" * 101}, "over the limit of 100"),
    ],
)
def test_bad_records_are_rejected_with_the_field_and_reason(data, reason):
    with pytest.raises(RecordRejected, match=None) as info:
        to_document(_rec(data), FieldMap(), limits=Limits(text_chars=100))
    assert reason in str(info.value)


def test_parse_errors_pass_through_as_rejects():
    with pytest.raises(RecordRejected, match="bad JSON"):
        to_document(_rec(raw="{x", error="bad JSON: Expecting property name"), FieldMap())


def test_rejects_file_has_source_line_reason_and_record(tmp_path):
    path = tmp_path / "out" / "rejects.jsonl"
    writer = RejectsWriter(path)
    writer.reject(_rec(raw="{x"), "bad JSON")
    writer.reject(RawRecord("g.csv", 3, data={"id": "2"}), "field 'text': missing")
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"source": "f.jsonl", "line": 7, "reason": "bad JSON", "record": "{x"},
        {"source": "g.csv", "line": 3, "reason": "field 'text': missing", "record": {"id": "2"}},
    ]
    assert writer.count == 2 and writer.examples[1]["line"] == 3
    RejectsWriter(path).close()  # a new run starts the file afresh
    assert path.read_text() == ""
