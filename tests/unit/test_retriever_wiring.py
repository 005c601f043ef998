"""`rrs es start` gives the node our plugin's reranker pool settings: the URL in
elasticsearch.yml, the key in the keystore, and nothing when the installed plugin lacks the
retrievers (a node refuses to start with a setting no plugin declares)."""

import os
import zipfile

from rrsearch.core.pool_announcement import announce
from rrsearch.core.settings import Settings
from rrsearch.rrs.es_plugin import PLUGIN_NAME, plugin_node_settings
from rrsearch.rrs.local_node import render_node_config


def _es_home(tmp_path, classes):
    plugin = tmp_path / "plugins" / PLUGIN_NAME
    plugin.mkdir(parents=True)
    with zipfile.ZipFile(plugin / "rrs.jar", "w") as jar:
        for name in classes:
            jar.writestr(name, b"")
    return tmp_path


def test_the_pool_url_goes_to_the_yml_and_the_key_to_the_keystore(tmp_path):
    home = _es_home(tmp_path, ["rrs/RrsPlugin.class", "rrs/search/RerankPool.class"])
    settings = Settings(reranker_url="http://gpu-pool:8080", reranker_api_key="s3cret")
    yml, keystore = plugin_node_settings(home, settings)
    assert yml == {"rrs.reranker.url": "http://gpu-pool:8080"}
    assert keystore == {"rrs.reranker.api_key": "s3cret"}
    text = render_node_config(tmp_path, 9200, 9300, plugin=yml)
    assert 'rrs.reranker.url: "http://gpu-pool:8080"\n' in text
    assert "s3cret" not in text


def test_nothing_is_written_without_a_pool_or_without_the_retrievers(tmp_path):
    with_retrievers = _es_home(tmp_path / "new", ["rrs/search/RerankPool.class"])
    analyzer_only = _es_home(tmp_path / "old", ["rrs/analysis/english/EnglishAnalysisPlugin.class"])
    assert plugin_node_settings(with_retrievers, Settings(reranker_url=None, home=tmp_path / "home")) == ({}, {})
    assert plugin_node_settings(analyzer_only, Settings(reranker_url="http://pool:80")) == ({}, {})
    assert "rrs." not in render_node_config(tmp_path, 9200, 9300)


def test_without_rrs_reranker_url_the_announced_local_pool_is_the_node_setting(tmp_path):
    home = _es_home(tmp_path / "es", ["rrs/search/RerankPool.class"])
    settings = Settings(reranker_url=None, home=tmp_path / "home")
    announce(settings.home, "http://127.0.0.1:8081", os.getpid())
    assert plugin_node_settings(home, settings) == ({"rrs.reranker.url": "http://127.0.0.1:8081"}, {})
    explicit = settings.model_copy(update={"reranker_url": "http://gpu-pool:8080"})
    assert plugin_node_settings(home, explicit)[0] == {"rrs.reranker.url": "http://gpu-pool:8080"}  # the setting wins
