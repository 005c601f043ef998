"""The local node's own plugin, rrs-local-node (es_plugin/local-node/): what Elastic's
integ-test-zip distribution lacks and clients rely on, on the session's real node.

- rest-root's ``GET /`` / ``HEAD /``: the info body with the node's real name, cluster, UUID and
  build; the Python client's ``info()`` and LangChain's ``ElasticsearchRetriever(es_url=...)``
  (which calls ``info()`` when it is built) work;
- analysis-common's analysis: custom analyzers built from its token filters, tokenizers and char
  filters give the tokens Elasticsearch documents for them, and the ``.security`` index's
  ``email`` analyzer (what ``POST /_security/api_key`` needs on a node with security on) can be
  created.

LangChain's Elasticsearch package pins the 8.x Python client (``elasticsearch<9``) while this
project pins 9.x, so pip cannot install both in one environment: the retriever runs in its own
virtual environment (made once under ``RRS_HOME/venvs``), with the 8.x client a LangChain user has.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from client_venvs import langchain_python
from elasticsearch import Elasticsearch

from rrsearch.core.es_compat import negotiate
from rrsearch.core.settings import Settings
from rrsearch.rrs.es_distribution import LOCAL_NODE_PLUGIN, add_local_node_plugin
from rrsearch.rrs.es_plugin import lucene_version

VERSION_KEYS = {
    "number",
    "build_flavor",
    "build_type",
    "build_hash",
    "build_date",
    "build_snapshot",
    "lucene_version",
    "minimum_wire_compatibility_version",
    "minimum_index_compatibility_version",
}


@pytest.fixture(scope="module")
def node_info(es) -> dict:
    """``_nodes`` as the server reports it, to hold ``GET /`` to."""
    return es.nodes.info(metric="settings,plugins").body


@pytest.fixture
def index(es):
    """A fresh index name, deleted afterwards."""
    name = f"test-local-node-{uuid.uuid4().hex[:8]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


def _analyze(es, index: str, analyzer: str, text: str) -> list[tuple[str, int]]:
    tokens = es.indices.analyze(index=index, analyzer=analyzer, text=text)["tokens"]
    return [(t["token"], t["position"]) for t in tokens]


# --- the plugin ------------------------------------------------------------------------


def test_every_node_has_the_plugin(node_info):
    for node in node_info["nodes"].values():
        assert LOCAL_NODE_PLUGIN in [p["name"] for p in node["plugins"]], node["name"]


def test_a_plugin_that_cannot_be_built_costs_one_line_and_the_start_goes_on(tmp_path):
    es_home = tmp_path / "elasticsearch"
    (es_home / "modules" / "x-pack-core").mkdir(parents=True)
    said: list[str] = []
    java = Path(sys.executable)  # never run: the project is missing before Maven is asked
    assert add_local_node_plugin(es_home, "9.5.4", tmp_path, java, log=said.append, project=tmp_path / "none") is False
    assert len(said) == 1
    assert "Maven project is missing" in said[0] and "no GET /" in said[0] and "analysis-common" in said[0]
    assert not (es_home / "plugins").exists()


def test_a_full_distribution_gets_nothing(tmp_path):
    """Where analysis-common and rest-root exist, the plugin's names and route would be there twice."""
    es_home = tmp_path / "elasticsearch"
    for module in ("analysis-common", "rest-root"):
        (es_home / "modules" / module).mkdir(parents=True)
    said: list[str] = []
    assert add_local_node_plugin(es_home, "9.5.4", tmp_path, Path(sys.executable), log=said.append) is False
    assert said == []
    assert not (es_home / "plugins").exists()


# --- rest-root: GET / and HEAD / -------------------------------------------------------


def test_get_root_answers_like_rest_root(es_url, es, node_info):
    resp = requests.get(es_url, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-elastic-product"] == "Elasticsearch"  # the clients' product check
    assert resp.text.startswith("{\n  ")  # pretty by default, as on a full distribution
    body = resp.json()
    assert set(body) == {"name", "cluster_name", "cluster_uuid", "version", "tagline"}
    assert set(body["version"]) == VERSION_KEYS
    assert body["tagline"] == "You Know, for Search"

    nodes = node_info["nodes"]
    assert body["cluster_name"] == node_info["cluster_name"]
    assert body["name"] in {n["name"] for n in nodes.values()}
    node = next(n for n in nodes.values() if n["name"] == body["name"])
    version = body["version"]
    assert version["number"] == node["version"]
    assert version["build_flavor"] == node["build_flavor"] == "default"
    assert version["build_type"] == node["build_type"]
    assert version["build_hash"] == node["build_hash"]
    assert version["build_snapshot"] is False
    uuid_now = es.cluster.state(metric="metadata", filter_path="metadata.cluster_uuid")["metadata"]["cluster_uuid"]
    assert body["cluster_uuid"] == uuid_now
    dist = Settings().home.resolve() / "dist" / f"elasticsearch-{version['number']}"
    if (dist / "lib").is_dir():  # the local node's own distribution: its Lucene jar
        assert version["lucene_version"] == lucene_version(dist)
    major = int(version["number"].split(".")[0])
    assert int(version["minimum_wire_compatibility_version"].split(".")[0]) == major - 1
    assert int(version["minimum_index_compatibility_version"].split(".")[0]) == major - 1

    compact = requests.get(es_url, params={"pretty": "false"}, timeout=10)
    assert "\n" not in compact.text.strip() and compact.json() == body


def test_head_root_is_200_without_a_body(es_url):
    resp = requests.head(es_url, timeout=10)
    assert resp.status_code == 200
    assert resp.content == b""


def test_python_client_info(es_url, node_info):
    client = negotiate(Elasticsearch(es_url.split(",")[0], request_timeout=30))  # 8.19.x or 9.x node
    try:
        info = client.info()
        assert info["version"]["number"] in {n["version"] for n in node_info["nodes"].values()}
        assert info["cluster_name"] == node_info["cluster_name"]
        assert info["tagline"] == "You Know, for Search"
        assert client.ping() is True  # HEAD /
    finally:
        client.close()


# --- analysis-common -------------------------------------------------------------------

ANALYSIS = {
    "char_filter": {
        "ph_to_f": {"type": "mapping", "mappings": ["ph => f"]},
        "dashes": {"type": "pattern_replace", "pattern": "-+", "replacement": " "},
    },
    "tokenizer": {
        "letters_2_3": {"type": "edge_ngram", "min_gram": 2, "max_gram": 3, "token_chars": ["letter"]},
    },
    "filter": {
        "english_stemmer": {"type": "stemmer", "language": "english"},
        "prefixes": {"type": "edge_ngram", "min_gram": 2, "max_gram": 3},
        "email_parts": {"type": "pattern_capture", "preserve_original": True, "patterns": ["([^@]+)", "@(.+)"]},
        "tv_synonyms": {"type": "synonym", "synonyms": ["tv, television", "laptop => notebook"]},
        "keep_running": {"type": "keyword_marker", "keywords": ["running"]},
        "short": {"type": "truncate", "length": 4},
    },
    "analyzer": {
        # html_strip, lowercase, asciifolding, then Porter (stemmer, language english)
        "stemmed": {
            "tokenizer": "standard",
            "char_filter": ["html_strip"],
            "filter": ["lowercase", "asciifolding", "english_stemmer"],
        },
        "prefixes": {"tokenizer": "standard", "filter": ["lowercase", "prefixes"]},
        "email_parts": {"tokenizer": "uax_url_email", "filter": ["email_parts", "lowercase", "unique"]},
        "synonyms": {"tokenizer": "whitespace", "filter": ["lowercase", "tv_synonyms"]},
        "delimited": {"tokenizer": "whitespace", "filter": ["word_delimiter_graph"]},
        "letters_2_3": {"tokenizer": "letters_2_3"},
        "mapped": {"tokenizer": "keyword", "char_filter": ["ph_to_f", "dashes"], "filter": ["trim", "uppercase"]},
        "marked": {"tokenizer": "whitespace", "filter": ["keep_running", "porter_stem"]},
        "kstem_short_reversed": {"tokenizer": "letter", "filter": ["lowercase", "kstem", "short", "reverse"]},
    },
    "normalizer": {"folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]}},
}


@pytest.fixture
def analysis_index(es, index):
    es.indices.create(
        index=index,
        settings={"number_of_shards": 1, "number_of_replicas": 0, "analysis": ANALYSIS},
        mappings={
            "properties": {
                "body": {"type": "text", "analyzer": "stemmed"},
                "topic": {"type": "text", "analyzer": "whitespace", "search_analyzer": "synonyms"},
                "tag": {"type": "keyword", "normalizer": "folded"},
                "french": {"type": "text", "analyzer": "french"},
            }
        },
    )
    return index


@pytest.mark.parametrize(
    "analyzer, text, expected",
    [
        # html_strip drops the tags; asciifolding makes "é" "e"; Porter stems "running" and "cafes"
        ("stemmed", "<p>Running <b>CAFÉS</b></p>", [("run", 0), ("cafe", 1)]),
        # edge_ngram filter, min_gram 2, max_gram 3: each token's 2- and 3-letter prefixes, same position
        ("prefixes", "Quick", [("qu", 0), ("qui", 0)]),
        # pattern_capture keeps the address (preserve_original) and adds each group, ordered by offset;
        # unique then drops the second "example.com" (one from each pattern)
        ("email_parts", "John.Doe@Example.com", [("john.doe@example.com", 0), ("john.doe", 0), ("example.com", 0)]),
        # "tv, television" expands both ways at the same position; "laptop => notebook" replaces
        ("synonyms", "TV laptop", [("tv", 0), ("television", 0), ("notebook", 1)]),
        # word_delimiter_graph: split on "-", on case changes and letter/digit changes
        ("delimited", "Wi-Fi PowerShot500", [("Wi", 0), ("Fi", 1), ("Power", 2), ("Shot", 3), ("500", 4)]),
        # edge_ngram tokenizer with token_chars [letter]: the space splits, each word from its start
        ("letters_2_3", "ab cde", [("ab", 0), ("cd", 1), ("cde", 2)]),
        # mapping "ph => f", pattern_replace of dashes, then trim and uppercase on the one keyword token
        ("mapped", " phone--home ", [("FONE HOME", 0)]),
        # keyword_marker keeps "running" from the stemmer; "jumping" is stemmed
        ("marked", "running jumping", [("running", 0), ("jump", 1)]),
        # letter tokenizer, kstem ("computers" -> "computer"), truncate to 4, reverse
        ("kstem_short_reversed", "Computers", [("pmoc", 0)]),
        # analysis-common's analyzers by name: french (elision, stop words, light stemmer), stop, simple, pattern
        ("french", "L'avion des chevaux", [("avion", 0), ("cheval", 2)]),
        ("stop", "The Quick-fox", [("quick", 1), ("fox", 2)]),
        ("simple", "Route 66 East", [("route", 0), ("east", 1)]),
        ("pattern", "foo_bar,Baz", [("foo_bar", 0), ("baz", 1)]),
    ],
)
def test_custom_analyzers_give_the_documented_tokens(es, analysis_index, analyzer, text, expected):
    assert _analyze(es, analysis_index, analyzer, text) == expected


def test_analysis_applies_when_indexing_and_searching(es, analysis_index):
    docs = {
        "1": {"body": "The runner was running in the park", "topic": "tv", "tag": "Café"},
        "2": {"body": "A quiet evening", "topic": "radio", "tag": "Bar"},
    }
    for doc_id, doc in docs.items():
        es.index(index=analysis_index, id=doc_id, document=doc)
    es.indices.refresh(index=analysis_index)

    def ids(query) -> list[str]:
        return [h["_id"] for h in es.search(index=analysis_index, query=query)["hits"]["hits"]]

    assert ids({"match": {"body": "runs"}}) == ["1"]  # stemmed at index and search time
    assert ids({"match": {"topic": "television"}}) == ["1"]  # the search analyzer's synonym
    assert ids({"term": {"tag": "CAFE"}}) == ["1"]  # the normalizer folds and lowercases the term too


def test_ngram_range_is_limited_by_max_ngram_diff(es, index):
    """As on a full distribution: ngram's max_gram - min_gram may not pass index.max_ngram_diff (1)."""
    ngram = {"filter": {"grams": {"type": "ngram", "min_gram": 2, "max_gram": 4}}}
    with pytest.raises(Exception, match="index.max_ngram_diff"):
        es.indices.create(index=index, settings={"analysis": ngram, "number_of_replicas": 0})
    es.indices.create(index=index, settings={"analysis": ngram, "max_ngram_diff": 2, "number_of_replicas": 0})


# The analysis of Elasticsearch's .security system index (x-pack security: SecuritySystemIndices).
SECURITY_INDEX_ANALYSIS = {
    "filter": {
        "email": {
            "type": "pattern_capture",
            "preserve_original": True,
            "patterns": ["([^@]+)", "(\\p{L}+)", "(\\d+)", "@(.+)"],
        }
    },
    "analyzer": {"email": {"tokenizer": "uax_url_email", "filter": ["email", "lowercase", "unique"]}},
}


def test_security_index_email_analyzer_can_be_created(es, index):
    """Without uax_url_email, pattern_capture and unique a node with security on cannot create its
    .security index, and POST /_security/api_key fails with "Unknown filter type [pattern_capture]"."""
    es.indices.create(index=index, settings={"number_of_replicas": 0, "analysis": SECURITY_INDEX_ANALYSIS})
    tokens = _analyze(es, index, "email", "John.Doe42@Example.com")
    # the address whole (one uax_url_email token), then every capture by offset: the local part,
    # its letter runs, its digits, the domain and its letter runs; unique drops the repeats
    assert tokens == [
        (token, 0)
        for token in ["john.doe42@example.com", "john.doe42", "john", "doe", "42", "example.com", "example", "com"]
    ]


# --- LangChain's ElasticsearchRetriever --------------------------------------------------


RETRIEVER_SCRIPT = """
import json, sys
from langchain_elasticsearch import ElasticsearchRetriever

url, index, query = sys.argv[1:4]
retriever = ElasticsearchRetriever(
    es_url=url,
    index_name=index,
    body_func=lambda q: {"query": {"match": {"text": q}}, "size": 3},
    content_field="text",
)
docs = retriever.invoke(query)
print(json.dumps([{"id": d.metadata["_id"], "score": d.metadata["_score"], "text": d.page_content} for d in docs]))
"""


def test_langchain_retriever_gets_bm25_hits(es, es_url, es_settings, index):
    if es_settings.es_url:
        pytest.skip("LangChain is checked against the local node (ES_URL names another cluster)")
    texts = {
        "a": "Elasticsearch is a search engine built on Lucene",
        "b": "Python is a popular programming language",
        "c": "A search engine ranks documents with BM25",
    }
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0})
    for doc_id, text in texts.items():
        es.index(index=index, id=doc_id, document={"text": text})
    es.indices.refresh(index=index)

    python = langchain_python()
    run = subprocess.run(
        [str(python), "-c", RETRIEVER_SCRIPT, es_url.split(",")[0], index, "search engine"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    docs = json.loads(run.stdout.strip().splitlines()[-1])

    expected = es.search(index=index, query={"match": {"text": "search engine"}}, size=3)["hits"]["hits"]
    assert [d["id"] for d in docs] == [h["_id"] for h in expected]
    assert {d["id"] for d in docs} == {"a", "c"}  # "b" has neither word
    assert [d["score"] for d in docs] == pytest.approx([h["_score"] for h in expected])
    assert [d["text"] for d in docs] == [texts[d["id"]] for d in docs]
