import json

import pytest

from rrsearch.core.mappings import load_template, render_passage_index, render_search_log_index, supported_index_type


def test_passage_index_takes_dims_model_and_analyzer():
    body = render_passage_index(dims=768, model="my/model", analyzer="english", similarity="dot_product")
    props = body["mappings"]["properties"]
    assert props["embedding"]["dims"] == 768
    assert props["embedding"]["similarity"] == "dot_product"
    assert props["embedding"]["index"] is True
    assert props["title"]["analyzer"] == props["text"]["analyzer"] == "english"
    assert body["mappings"]["_meta"] == {
        "schema_version": 1,
        "bi_encoder": "my/model",
        "dims": 768,
        "similarity": "dot_product",
        "analyzer": "english",
    }
    assert props["id"]["type"] == props["parent_id"]["type"] == "keyword"
    assert "_comment" not in body


def test_rendering_does_not_mutate_the_template():
    render_passage_index(dims=12, model="m", analyzer="english")
    assert load_template("passages")["mappings"]["properties"]["embedding"]["dims"] == 384
    assert load_template("passages")["mappings"]["properties"]["text"]["analyzer"] == "standard"


@pytest.mark.parametrize(
    "wanted, version, expected",
    [
        ("int8_hnsw", "9.5.4", "int8_hnsw"),
        ("bbq_hnsw", "8.17.0", "hnsw"),
        ("bbq_hnsw", "8.18.0", "bbq_hnsw"),
        ("int8_hnsw", "8.11.0", "hnsw"),
        ("flat", "8.11.0", "flat"),
    ],
)
def test_quantization_falls_back_on_old_servers(wanted, version, expected):
    assert supported_index_type(wanted, version) == expected


def test_flat_has_no_hnsw_parameters():
    options = render_passage_index(dims=8, model="m", index_type="flat")["mappings"]["properties"]["embedding"][
        "index_options"
    ]
    assert options == {"type": "flat"}


def test_hnsw_parameters_are_passed():
    options = render_passage_index(dims=8, model="m", m=32, ef_construction=200)["mappings"]["properties"]["embedding"][
        "index_options"
    ]
    assert options == {"type": "int8_hnsw", "m": 32, "ef_construction": 200}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dims": 0}, "dims must be positive, got 0"),
        ({"dims": 8, "similarity": "l2_norm"}, "similarity must be cosine or dot_product, got 'l2_norm'"),
    ],
)
def test_bad_vector_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_passage_index(model="m", **kwargs)


def test_search_log_index_has_a_time_field_and_is_valid_json():
    body = render_search_log_index(replicas=1)
    assert body["mappings"]["properties"]["@timestamp"]["type"] == "date"
    assert body["settings"]["index"]["number_of_replicas"] == 1
    json.dumps(body)
