import pytest
from pydantic import ValidationError

from rrsearch.core.settings import Settings
from rrsearch.service.schemas import LimitError, SearchRequest, check_limits


def test_defaults():
    req = SearchRequest.model_validate({"query": "vitamin d"})
    assert (req.top_k, req.mode, req.rerank, req.collapse, req.highlight, req.from_) == (
        10,
        "hybrid",
        True,
        True,
        True,
        0,
    )
    assert req.fusion.method == "rrf"


def test_fusion_shorthand_and_object():
    assert SearchRequest.model_validate({"query": "q", "fusion": "linear"}).fusion.method == "linear"
    req = SearchRequest.model_validate(
        {"query": "q", "fusion": {"method": "linear", "normalization": "zscore", "weight": 0.3}}
    )
    assert (req.fusion.normalization, req.fusion.weight) == ("zscore", 0.3)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": "q", "extra": 1}, "extra"),
        ({"query": "q", "mode": "fuzzy"}, "mode"),
        ({"query": "q", "top_k": 0}, "top_k"),
        ({"query": "q", "from": -1}, "from"),
        ({"query": "q", "fusion": {"method": "linear", "weight": 2}}, "fusion"),
        ({"query": "q", "filters": {"year": {}}}, "filters"),
    ],
)
def test_invalid_bodies_name_the_field(body, field):
    with pytest.raises(ValidationError, match=rf"(?m)^{field}(\.|$)") as info:  # the field's own line
        SearchRequest.model_validate(body)
    assert str(info.value.errors()[0]["loc"][0]) == field


def test_strict_json_refuses_strings_for_numbers():
    with pytest.raises(ValidationError, match=r"top_k\n  Input should be a valid integer"):
        SearchRequest.model_validate_json('{"query": "q", "top_k": "5"}', strict=True)
    assert SearchRequest.model_validate_strings({"query": "q", "top_k": "5", "rerank": "false"}).top_k == 5


def test_limits_from_settings():
    settings = Settings(max_top_k=20, max_candidates=50, max_query_chars=10, default_candidates=30)
    for body, field, message in [
        ({"query": "q" * 11}, "query", "query is longer than 10 characters"),
        ({"query": "q", "top_k": 21}, "top_k", "top_k must be <= 20"),
        ({"query": "q", "candidates": 51}, "candidates", "candidates must be <= 50"),
    ]:
        with pytest.raises(LimitError, match=message) as info:
            check_limits(SearchRequest.model_validate(body), settings)
        assert info.value.field == field
    check_limits(SearchRequest.model_validate({"query": "q", "from": 25, "top_k": 10}), settings)  # a short page


def test_integral_floats_are_integers_and_strings_are_not():
    assert SearchRequest.model_validate_json('{"query": "q", "top_k": 248.0}', strict=True).top_k == 248
    for bad, message in [
        ('{"query": "q", "top_k": 248.5}', r"top_k\n  Input should be a valid integer .*input_value=248\.5"),
        ('{"query": "q", "top_k": "248"}', r"top_k\n  Input should be a valid integer .*input_value='248'"),
        ('{"query": "q", "filters": {"a": []}}', r"filters\.a\.str\n  Input should be a valid string"),
    ]:
        with pytest.raises(ValidationError, match=message):
            SearchRequest.model_validate_json(bad, strict=True)


def test_the_schema_pattern_and_the_blank_check_agree_on_every_character():
    """schemathesis found "\\u001f" valid by the schema's pattern and refused as blank: the
    pattern and query_not_blank must accept exactly the same one-character queries."""
    import re

    from rrsearch.service.schemas import NOT_BLANK, query_not_blank

    def accepted(text: str) -> bool:
        try:
            return query_not_blank(text) == text
        except ValueError:
            return False

    disagree = [hex(code) for code in range(0x3001) if bool(re.search(NOT_BLANK, chr(code))) != accepted(chr(code))]
    assert disagree == []
    assert not accepted("\u001f \u0085") and accepted("\u001f x")
