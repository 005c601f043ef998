"""The pure parts of judgments from use: ids, the latest mark, the grade combination, the split,
the chunk join and the request models."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rrsearch.core.settings import Settings
from rrsearch.evaluation.judgments_export import (
    build_qrels,
    combine_grades,
    join_chunks,
    latest_marks,
    split_of,
    split_qrels,
)
from rrsearch.service.judgments import Mark, build_records, judgment_doc_id, paragraph_id, query_id, query_key
from rrsearch.service.schemas import JudgmentBatch, JudgmentRequest, check_judgment_limits


def mark(query="vitamin d", doc="d1", client="a", grade=2, at="2026-01-01T00:00:00+00:00", index="passages"):
    key = query_key(query)
    return {
        "index": index,
        "query": query,
        "query_key": key,
        "query_id": query_id(key),
        "id": doc,
        "client": client,
        "grade": grade,
        "@timestamp": at,
    }


# --- ids ------------------------------------------------------------------------------------


def test_the_judgment_id_is_deterministic_in_alias_query_id_and_client():
    base = judgment_doc_id("passages", "vitamin d", "d1", "10.0.0.1")
    assert base == judgment_doc_id("passages", "vitamin d", "d1", "10.0.0.1")
    others = {
        judgment_doc_id("passages", "vitamin d", "d1", "10.0.0.2"),
        judgment_doc_id("passages", "vitamin d", "d2", "10.0.0.1"),
        judgment_doc_id("passages", "vitamin c", "d1", "10.0.0.1"),
        judgment_doc_id("other", "vitamin d", "d1", "10.0.0.1"),
    }
    assert base not in others and len(others) == 4
    # no ambiguity from joining: ("a b", "c") is not ("a", "b c")
    assert judgment_doc_id("p", "a b", "c", "x") != judgment_doc_id("p", "a", "b c", "x")


def test_a_query_is_keyed_by_its_words_whatever_the_spaces_and_case():
    assert query_key("  Vitamin\tD  deficiency ") == query_key("vitamin d deficiency") == "vitamin d deficiency"
    assert query_id(query_key("Vitamin D")) == query_id(query_key("vitamin  d")) != query_id(query_key("vitamin c"))


def test_a_pasted_paragraph_gets_an_id_from_its_text():
    assert paragraph_id("Some text.\n") == paragraph_id("  Some text.") != paragraph_id("Other text.")
    assert paragraph_id("x").startswith("para-")
    assert Mark(query="q", grade=1, paragraph="Some text.").judged_id == paragraph_id("Some text.")


def test_records_carry_time_client_and_the_version_of_the_documents_index():
    marks = [Mark(query="Vitamin D", grade=2, id="d1"), Mark(query="vitamin d", grade=0, paragraph="Pasted.")]
    records = build_records(
        marks,
        alias="passages",
        versions={"d1": "passages-v3"},
        client="key:ab",
        request_id="r1",
        now="2026-01-01T00:00:00+00:00",
    )
    (first_id, first), (_, second) = records
    assert first_id == judgment_doc_id("passages", "vitamin d", "d1", "key:ab")
    assert (first["index_version"], first["kind"], first["client"], first["query_key"]) == (
        "passages-v3",
        "document",
        "key:ab",
        "vitamin d",
    )
    assert (second["index_version"], second["kind"], second["paragraph"]) == (None, "paragraph", "Pasted.")
    assert first["query_id"] == second["query_id"]


# --- latest mark and combination ------------------------------------------------------------


def test_the_latest_mark_per_query_id_and_client_wins():
    marks = [
        mark(grade=2, at="2026-01-01T00:00:00+00:00"),
        mark(grade=0, at="2026-01-02T00:00:00+00:00"),
        mark(query="Vitamin  D", grade=1, at="2026-01-03T00:00:00+00:00", client="b"),
    ]
    latest = latest_marks(marks)
    assert sorted((m["client"], m["grade"]) for m in latest) == [("a", 0), ("b", 1)]


@pytest.mark.parametrize(
    ("grades", "combined"),
    [
        ([2], 2),
        ([0], 0),
        ([2, 2], 2),
        ([2, 1], 1),
        ([2, 0], 1),
        ([1, 0], 0),
        ([2, 2, 1], 2),
        ([2, 1, 1], 1),
        ([2, 0, 0], 1),
        ([1, 1, 0, 0], 0),
        ([2, 2, 2, 0], 1),
        ([2, 2, 2, 1], 2),
    ],
)
def test_clients_grades_combine_as_the_mean_rounded_with_halves_down(grades, combined):
    assert combine_grades(grades) == combined


def test_combining_nothing_is_refused():
    with pytest.raises(ValueError, match="no grades"):
        combine_grades([])


def test_qrels_combine_clients_and_take_the_latest_query_text():
    marks = [
        mark(query="vitamin D", doc="d1", client="a", grade=2, at="2026-01-01T00:00:00+00:00"),
        mark(query="Vitamin D", doc="d1", client="b", grade=1, at="2026-01-02T00:00:00+00:00"),
        mark(query="vitamin d", doc="d2", client="a", grade=0, at="2026-01-01T00:00:00+00:00"),
    ]
    queries, qrels = build_qrels(marks)
    qid = query_id("vitamin d")
    assert queries == {qid: "Vitamin D"}
    assert qrels == {qid: {"d1": 1, "d2": 0}}


# --- split -----------------------------------------------------------------------------------


def test_the_split_depends_on_the_query_alone_and_is_stable_as_marks_are_added():
    ids = [query_id(f"query number {n}") for n in range(2000)]
    splits = {qid: split_of(qid, 0.2) for qid in ids}
    share = sum(s == "test" for s in splits.values()) / len(ids)
    assert 0.17 < share < 0.23
    grown = split_qrels({qid: {"d": 1} for qid in ids}, 0.2)
    assert all(qid in grown[splits[qid]] for qid in ids)
    few = {ids[0]: {"d": 1}}  # one query or two thousand: the same split for the same query
    assert ids[0] in split_qrels(few, 0.2)[splits[ids[0]]]
    # a larger test share only moves queries from train into test, never back
    assert all(split_of(q, 0.5) == "test" for q in ids if splits[q] == "test")


def test_a_share_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="test share"):
        split_of("q-1", 1.0)


# --- corpus text -------------------------------------------------------------------------------


def test_chunks_join_with_their_overlap_once():
    assert (
        join_chunks(["one two three four", "three four five six", "six seven"]) == "one two three four five six seven"
    )
    assert join_chunks(["alpha beta", "gamma delta"]) == "alpha beta gamma delta"
    assert join_chunks(["only one"]) == "only one"
    assert join_chunks([]) == ""


# --- the request models ----------------------------------------------------------------------


def test_a_mark_needs_exactly_one_of_id_and_paragraph_and_a_known_grade():
    assert JudgmentRequest.model_validate({"query": "q", "id": "d1", "grade": 2}).id == "d1"
    assert JudgmentRequest.model_validate({"query": "q", "paragraph": "p", "grade": 2.0}).grade == 2
    for body, message in [
        ({"query": "q", "grade": 1}, "either id"),
        ({"query": "q", "id": "d", "paragraph": "p", "grade": 1}, "either id"),
        ({"query": "q", "id": None, "grade": 1}, "id must be a string"),
        ({"query": "q", "id": "d", "grade": 3}, "0, 1 or 2"),
        ({"query": "q", "id": "d", "grade": True}, "a number"),
        ({"query": " ", "id": "d", "grade": 1}, "non-space"),
        ({"query": "q", "paragraph": "\n", "grade": 1}, "non-space"),
    ]:
        with pytest.raises(ValidationError, match=message):
            JudgmentRequest.model_validate(body)


def test_limits_name_the_mark_at_fault():
    settings = Settings(judgments_max_batch=2, max_query_chars=10, judgments_max_paragraph_chars=5)
    batch = JudgmentBatch.model_validate(
        {"judgments": [{"query": "ok", "id": "d", "grade": 1}, {"query": "ok", "paragraph": "too long", "grade": 1}]}
    )
    with pytest.raises(ValueError, match="paragraph is longer than 5") as caught:
        check_judgment_limits(batch.judgments, settings, batch=True)
    assert caught.value.field == "judgments.1.paragraph"
    with pytest.raises(ValueError, match="more than 2 marks"):
        check_judgment_limits(batch.judgments * 2, settings, batch=True)
    with pytest.raises(ValueError, match="query is longer than 10") as caught:
        check_judgment_limits([JudgmentRequest(query="x" * 11, id="d", grade=0)], settings, batch=False)
    assert caught.value.field == "query"
