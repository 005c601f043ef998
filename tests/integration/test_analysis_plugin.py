"""Our plugin (es_plugin/, installed as rrsearch): built with Maven, installed into a copy
of the Maven Central distribution, and used by a real node like production's ``english``.

Installing is checked on a copy (the shared distribution under ``RRS_HOME/dist`` must stay as it
is for the other tests); the analyzer is checked on the session's node, whose distribution got the
same zip through the same ``install_plugin`` when ``rrs es start`` prepared it. A node of its own
here would only boot a second JVM to load the same files."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from rrsearch.core.settings import Settings
from rrsearch.rrs.es_plugin import PLUGIN_NAME, build_plugin, install_plugin
from rrsearch.rrs.local_node import (
    choose_version,
    fetch_distribution,
    find_jdks,
    unpack_distribution,
)

SENTENCE = "The runners were running quickly through John's gardens"
# Lucene's EnglishAnalyzer, token by token: "The" is in ENGLISH_STOP_WORDS_SET (its position
# stays counted), "were" and "through" are not; possessive "'s" is dropped; Porter stems.
ENGLISH_TOKENS = ["runner", "were", "run", "quickli", "through", "john", "garden"]
ENGLISH_POSITIONS = [1, 2, 3, 4, 5, 6, 7]


@pytest.fixture(scope="module")
def english_node(es_settings):
    """URL of a node whose distribution has the plugin, once installing it into a fresh copy of the
    distribution is shown to work, twice, without touching the shared one."""
    from rrsearch.core.es_client import resolve_url

    if es_settings.es_url:
        pytest.skip("ES_URL names an external cluster: the analyzer is checked on the local node, which has our plugin")
    base = Settings()
    version, jdk = choose_version(find_jdks([base.es_java_home] if base.es_java_home else None), base.es_version)
    shared_home = base.home.resolve()
    es_home = unpack_distribution(fetch_distribution(version, shared_home), shared_home)
    plugin_zip = build_plugin(version, shared_home, jdk.home, es_home=es_home)  # cached after the first run

    shared_plugin = es_home / "plugins" / PLUGIN_NAME
    shared_before = sorted(p.name for p in shared_plugin.iterdir()) if shared_plugin.is_dir() else None
    root = Path(tempfile.mkdtemp(prefix="rrs-english-dist-"))
    try:
        copy = root / es_home.name
        shutil.copytree(es_home, copy, symlinks=True)
        shutil.rmtree(copy / "plugins" / PLUGIN_NAME, ignore_errors=True)  # as fetched: without ours
        install_plugin(copy, plugin_zip, jdk.home)
        assert (copy / "plugins" / PLUGIN_NAME / "plugin-descriptor.properties").exists()
        # the shared distribution is as it was (rrs es start may have installed the plugin there)
        assert (sorted(p.name for p in shared_plugin.iterdir()) if shared_plugin.is_dir() else None) == shared_before
        said: list[str] = []
        install_plugin(copy, plugin_zip, jdk.home, log=said.append)
        assert said == []  # already installed: nothing run
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return resolve_url(es_settings)


def test_plugin_is_loaded(english_node):
    plugins = requests.get(f"{english_node}/_cat/plugins", params={"format": "json"}, timeout=10).json()
    # the copied distribution may also carry rrs-local-node, which rrs es start installs beside it
    assert PLUGIN_NAME in [p["component"] for p in plugins]


def test_english_analyzer_tokens_match_lucene(english_node):
    resp = requests.post(f"{english_node}/_analyze", json={"analyzer": "english", "text": SENTENCE}, timeout=10)
    resp.raise_for_status()
    tokens = resp.json()["tokens"]
    assert [t["token"] for t in tokens] == ENGLISH_TOKENS
    assert [t["position"] for t in tokens] == ENGLISH_POSITIONS
    standard = requests.post(
        f"{english_node}/_analyze", json={"analyzer": "standard", "text": SENTENCE}, timeout=10
    ).json()["tokens"]
    assert [t["token"] for t in standard][:3] == ["the", "runners", "were"]  # the plugin changes nothing else


def test_index_with_english_field_finds_running_for_runs(english_node):
    index = f"test-english-{os.getpid()}"
    body = {
        "settings": {
            "number_of_shards": 1,
            "number_of_replicas": 0,
            # The type takes production's settings too: no stop words here.
            "analysis": {"analyzer": {"english_all_words": {"type": "english", "stopwords": "_none_"}}},
        },
        "mappings": {
            "properties": {
                "text": {"type": "text", "analyzer": "english"},
                "plain": {"type": "text", "analyzer": "standard"},
            }
        },
    }
    try:
        created = requests.put(f"{english_node}/{index}", json=body, timeout=30)
        assert created.ok, created.text
        for doc_id, text in (("1", "The dog was running in the park"), ("2", "A cat sleeps on the sofa")):
            requests.put(
                f"{english_node}/{index}/_doc/{doc_id}",
                params={"refresh": "true"},
                json={"text": text, "plain": text},
                timeout=10,
            ).raise_for_status()

        def ids(field: str, query: str) -> list[str]:
            resp = requests.post(
                f"{english_node}/{index}/_search", json={"query": {"match": {field: query}}}, timeout=10
            )
            resp.raise_for_status()
            return [hit["_id"] for hit in resp.json()["hits"]["hits"]]

        assert ids("text", "runs") == ["1"]
        assert ids("text", "sleeping") == ["2"]
        assert ids("plain", "runs") == []  # the standard analyzer does not stem: the plugin is what matches
        custom = requests.post(
            f"{english_node}/{index}/_analyze",
            json={"analyzer": "english_all_words", "text": "The gardens"},
            timeout=10,
        ).json()["tokens"]
        assert [t["token"] for t in custom] == ["the", "garden"]
    finally:
        requests.delete(f"{english_node}/{index}", timeout=30)
