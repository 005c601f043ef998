import json

import pytest

from rrsearch.service.retrieval import (
    FilterError,
    bm25_body,
    filter_clauses,
    filterable_fields,
    knn_body,
    parse_fields,
    search_preference,
)
from rrsearch.service.schemas import RangeFilter

PROPS = {
    "id": {"type": "keyword"},
    "parent_id": {"type": "keyword"},
    "text": {"type": "text"},
    "metadata": {
        "properties": {
            "topic": {"type": "keyword"},
            "year": {"type": "long"},
            "author": {"properties": {"name": {"type": "keyword"}}},
        }
    },
}


def test_parse_fields_keeps_boosts():
    assert parse_fields(" title^2 , text ") == ["title^2", "text"]
    with pytest.raises(ValueError, match="bm25_fields names no field"):
        parse_fields(" , ")


def test_filterable_fields_come_from_the_mapping():
    assert filterable_fields(PROPS) == {
        "parent_id": "keyword",
        "metadata.topic": "keyword",
        "metadata.year": "long",
        "metadata.author.name": "keyword",
    }


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"year": "not-a-year"}, "'year' holds integer values: give an integer"),
        ({"year": RangeFilter(gte="")}, "'year' holds integer values"),
        ({"year": [2000, 20.5]}, "'year' holds integer values"),
        ({"topic": 5}, "'topic' holds string values: give a string"),
        ({"topic": True}, "'topic' holds string values"),
    ],
)
def test_filter_values_must_fit_the_field_type(filters, message):
    with pytest.raises(FilterError, match=message) as info:
        filter_clauses(filters, filterable_fields(PROPS))
    assert info.value.field == f"filters.{next(iter(filters))}"


def test_integral_floats_are_integers():
    assert filter_clauses({"year": 2000.0}, filterable_fields(PROPS)) == [{"term": {"metadata.year": 2000}}]


def test_filter_clauses_term_terms_range():
    known = filterable_fields(PROPS)
    clauses = filter_clauses(
        {"topic": "health", "metadata.year": RangeFilter(gte=2000), "author.name": ["a", "b"], "parent_id": "d1"}, known
    )
    assert clauses == [
        {"term": {"metadata.topic": "health"}},
        {"range": {"metadata.year": {"gte": 2000}}},
        {"terms": {"metadata.author.name": ["a", "b"]}},
        {"term": {"parent_id": "d1"}},
    ]


def test_unknown_filter_field_names_it():
    with pytest.raises(FilterError, match="unknown filter field 'colour'") as info:
        filter_clauses({"colour": "red"}, filterable_fields(PROPS))
    assert info.value.field == "filters.colour"


def test_same_filters_in_both_searches_and_no_query_string():
    clauses = [{"term": {"metadata.topic": "health"}}]
    user_text = 'title:(secret) OR text:* AND "x'
    bm25 = bm25_body(user_text, ["title^2", "text"], clauses, size=50, highlight=True)
    knn = knn_body([0.1, 0.2], clauses, size=50, num_candidates=10)
    assert bm25["query"]["bool"]["filter"] == clauses == knn["knn"]["filter"]
    assert bm25["query"]["bool"]["must"][0]["multi_match"]["query"] == user_text
    assert "query_string" not in json.dumps(bm25) and "simple_query_string" not in json.dumps(bm25)
    assert knn["knn"]["num_candidates"] == 50  # never below k
    assert bm25["size"] == knn["size"] == knn["knn"]["k"] == 50


def test_bm25_tie_breaker_comes_from_the_caller():
    body = bm25_body("vitamin d", ["title", "text"], [], size=10, tie_breaker=0.3)
    match = body["query"]["bool"]["must"][0]["multi_match"]
    assert match == {"query": "vitamin d", "fields": ["title", "text"], "type": "best_fields", "tie_breaker": 0.3}


def test_a_query_keeps_its_shard_copies_and_queries_spread():
    """The same text always names the same copies; a custom preference must not start with '_'
    (Elasticsearch reserves those), and different queries must not all land on one copy."""
    first = search_preference("vitamin d deficiency")
    assert first == search_preference("vitamin d deficiency") and not first.startswith("_")
    assert len({search_preference(f"query {n}") for n in range(50)}) == 50
