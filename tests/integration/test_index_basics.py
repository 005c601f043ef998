"""Create the passage index on a real node, index real embeddings, get them back."""

from rrsearch.core.encoders import embedding_dims, encode_passages, encode_query, model_label
from rrsearch.core.indexes import (
    create_versioned_index,
    current_index,
    delete_alias_and_versions,
    drop_old_versions,
    ensure_alias,
    index_meta,
    list_versions,
    passage_index_body,
    point_alias,
)

DOCS = [
    ("d1", "Tomato blight", "Late blight spreads on tomato leaves in wet, warm weather."),
    ("d2", "Binary stars", "Two stars orbiting a common centre of mass form a binary system."),
    ("d3", "Sourdough", "A sourdough starter is a culture of wild yeast and lactic acid bacteria."),
]


def _body(es, es_settings, bi_encoder):
    return passage_index_body(es, es_settings, dims=embedding_dims(bi_encoder), model=model_label("all-MiniLM-L6-v2"))


def _index_docs(es, alias, bi_encoder):
    vectors = encode_passages(bi_encoder, [f"{t}. {x}" for _, t, x in DOCS])
    for (doc_id, title, text), vector in zip(DOCS, vectors):
        es.index(
            index=alias,
            id=doc_id,
            document={
                "id": doc_id,
                "parent_id": doc_id,
                "chunk": 0,
                "title": title,
                "text": text,
                "embedding": vector.tolist(),
            },
        )
    es.indices.refresh(index=alias)


def test_mapping_on_the_node_matches_the_model(es, es_settings, bi_encoder, alias):
    name = ensure_alias(es, alias, _body(es, es_settings, bi_encoder))
    assert current_index(es, alias) == name
    mapping = es.indices.get_mapping(index=name)[name]["mappings"]
    embedding = mapping["properties"]["embedding"]
    assert embedding["dims"] == 384 and embedding["index"] is True
    assert embedding["index_options"]["type"] == es_settings.vector_index_type
    assert index_meta(es, alias)["bi_encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    # the integ-test node lacks analysis-common, so 'auto' resolved to what exists
    assert mapping["properties"]["text"]["analyzer"] in ("english", "standard")


def test_bm25_and_knn_find_the_right_documents(es, es_settings, bi_encoder, alias):
    ensure_alias(es, alias, _body(es, es_settings, bi_encoder))
    _index_docs(es, alias, bi_encoder)

    bm25 = es.search(index=alias, query={"multi_match": {"query": "sourdough yeast", "fields": ["title", "text"]}})
    assert bm25["hits"]["hits"][0]["_id"] == "d3"

    vector = encode_query(bi_encoder, "celestial objects circling each other").tolist()
    knn = es.search(index=alias, knn={"field": "embedding", "query_vector": vector, "k": 3, "num_candidates": 10})
    assert knn["hits"]["hits"][0]["_id"] == "d2"


def test_new_version_swaps_alias_and_old_ones_can_be_dropped(es, es_settings, bi_encoder, alias):
    body = _body(es, es_settings, bi_encoder)
    first = ensure_alias(es, alias, body)
    assert ensure_alias(es, alias, body) == first  # idempotent
    second = create_versioned_index(es, alias, body)
    point_alias(es, alias, second)
    assert current_index(es, alias) == second
    assert list_versions(es, alias) == [first, second]
    assert drop_old_versions(es, alias, keep=0) == [first]
    assert list_versions(es, alias) == [second]


def test_delete_and_recreate_is_safe(es, es_settings, bi_encoder, alias):
    body = _body(es, es_settings, bi_encoder)
    assert delete_alias_and_versions(es, alias) == []  # nothing there: no error
    ensure_alias(es, alias, body)
    assert len(delete_alias_and_versions(es, alias)) == 1
    assert current_index(es, alias) is None
    assert ensure_alias(es, alias, body) == current_index(es, alias)
