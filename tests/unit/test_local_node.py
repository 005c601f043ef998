import os
import re
from pathlib import Path

import pytest

from rrsearch.core.settings import Settings
from rrsearch.rrs import es_distribution, local_node
from rrsearch.rrs.es_distribution import Distribution, Jdk, choose_version
from rrsearch.rrs.local_node import NodeError, render_node_config


def test_newest_pinned_version_for_a_new_jdk():
    version, jdk = choose_version([Jdk(Path("/j25"), 25), Jdk(Path("/j17"), 17)])
    assert version == es_distribution.PINNED_VERSIONS[9]
    assert jdk.major == 25


def test_java_17_only_gets_es_8():
    version, _ = choose_version([Jdk(Path("/j17"), 17)])
    assert version == es_distribution.PINNED_VERSIONS[8]


def test_no_java_says_what_to_install():
    with pytest.raises(NodeError, match="install Java 21"):
        choose_version([])


def test_override_needs_a_new_enough_jdk():
    with pytest.raises(NodeError, match="needs Java 21"):
        choose_version([Jdk(Path("/j17"), 17)], override="9.1.0")


def test_node_config_is_single_node_on_loopback(tmp_path):
    text = render_node_config(tmp_path, 9333, 9433)
    assert "discovery.type: single-node" in text
    assert "network.host: 127.0.0.1" in text
    assert "http.port: 9333" in text and "transport.port: 9433" in text
    assert f"path.data: {tmp_path / 'data'}" in text


def test_taken_port_moves_to_the_next_free_one():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not local_node.port_is_free(taken)
        assert local_node.first_free_port(taken) > taken


def test_find_jdks_reads_release_files(tmp_path):
    home = tmp_path / "jdk-99"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("")
    (home / "release").write_text('JAVA_VERSION="99.0.1"\n')
    assert Jdk(home.resolve(), 99) in es_distribution.find_jdks([home])


def test_missing_maven_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(es_distribution.shutil, "which", lambda _name: None)
    with pytest.raises(NodeError, match="apt install maven"):
        es_distribution.fetch_distribution("9.9.9", tmp_path)


def test_stale_pid_file_is_removed(tmp_path):
    (tmp_path / "es.pid").write_text("999999999")
    assert local_node._read_pid(tmp_path) is None
    assert not (tmp_path / "es.pid").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing ownership needs root")
def test_ownership_is_handed_over_without_following_links(tmp_path):
    outside = tmp_path / "root-owned.txt"
    outside.write_text("secret")
    node_dir = tmp_path / "node"
    (node_dir / "logs").mkdir(parents=True)
    (node_dir / "logs" / "es.log").write_text("log")
    (node_dir / "logs" / "planted").symlink_to(outside)
    (node_dir / "data").symlink_to(tmp_path, target_is_directory=True)
    local_node.give_tree(node_dir, 65534, 65534)
    assert (node_dir / "logs" / "es.log").stat().st_uid == 65534
    assert outside.stat().st_uid == 0 and tmp_path.stat().st_uid == 0  # link targets untouched
    with pytest.raises(local_node.NodeError, match="symbolic link"):
        local_node.give_tree(node_dir / "data", 65534, 65534)


def test_state_files_are_never_written_through_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("original")
    state = tmp_path / "node.json"
    state.symlink_to(victim)
    local_node.write_private(state, '{"url": "http://127.0.0.1:9200"}')
    assert victim.read_text() == "original"
    assert not state.is_symlink() and "9200" in state.read_text()


def test_the_node_gets_a_minimal_environment(tmp_path):
    environ = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "ES_PASSWORD": "hunter2",
        "RRS_API_KEYS": "k1",
        "AWS_SECRET_ACCESS_KEY": "x",
        "JAVA_HOME": "/old/jdk",
        "ES_JAVA_OPTS": "-Xmx99g",
    }
    env = local_node.node_environment(environ, java_home=Path("/jdk"), conf=tmp_path / "config", node_dir=tmp_path)
    assert env == {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "ES_JAVA_HOME": "/jdk",
        "ES_PATH_CONF": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }


def test_cluster_members_seed_each_other_and_bootstrap_once(tmp_path):
    import json as jsonlib

    from rrsearch.rrs.local_node import plan_members

    members = plan_members(tmp_path, 3, [9550, 9551, 9552], [9650, 9651, 9652])
    assert [m["name"] for m in members] == ["rrs-node-1", "rrs-node-2", "rrs-node-3"]
    assert members[2]["dir"] == str(tmp_path / "node-3") and members[2]["transport_port"] == 9652
    first = render_node_config(
        tmp_path / "node-2",
        9551,
        9651,
        name="rrs-node-2",
        seed_ports=[9650, 9651, 9652],
        masters=["rrs-node-1", "rrs-node-2", "rrs-node-3"],
    )
    lines = dict(line.split(": ", 1) for line in first.splitlines())
    assert "discovery.type" not in lines and lines["node.name"] == "rrs-node-2"
    assert jsonlib.loads(lines["discovery.seed_hosts"]) == ["127.0.0.1:9650", "127.0.0.1:9651", "127.0.0.1:9652"]
    assert jsonlib.loads(lines["cluster.initial_master_nodes"]) == ["rrs-node-1", "rrs-node-2", "rrs-node-3"]
    again = render_node_config(tmp_path / "node-2", 9551, 9651, name="rrs-node-2", seed_ports=[9650, 9651, 9652])
    assert "cluster.initial_master_nodes" not in again  # a restart must not bootstrap a second cluster


def test_several_es_urls_become_several_hosts():
    from rrsearch.core.es_client import hosts
    from rrsearch.core.settings import Settings

    settings = Settings(es_url=" http://127.0.0.1:9201/ , http://127.0.0.1:9202")
    assert settings.es_url == "http://127.0.0.1:9201,http://127.0.0.1:9202"
    assert hosts(settings.es_url) == ["http://127.0.0.1:9201", "http://127.0.0.1:9202"]
    with pytest.raises(ValueError, match="http"):
        Settings(es_url="http://127.0.0.1:9201,127.0.0.1:9202")


def test_the_distribution_names_stay_importable_from_local_node():
    assert local_node.PINNED_VERSIONS is es_distribution.PINNED_VERSIONS
    assert local_node.choose_version is choose_version and local_node.Jdk is Jdk


# --- the node directory's size: --nodes that disagrees is refused before any JVM -------


def _local(node_dir: Path, monkeypatch, **update) -> Settings:
    """Settings for a node in ``node_dir``; ``es_nodes`` counts as asked only when given here."""
    monkeypatch.delenv("RRS_ES_NODES", raising=False)
    return Settings().model_copy(update={"es_url": None, "es_node_dir": node_dir, **update})


def _cluster_dir(root: Path, count: int) -> Path:
    """What a cluster start leaves: node.json listing its members (written before they start)."""
    root.mkdir(parents=True)
    ports = list(range(9550, 9550 + count))
    members = local_node.plan_members(root, count, ports, [port + 100 for port in ports])
    local_node._write_state(root, members, "9.5.4", Path("/jdk"))
    return root


def _no_jvm(monkeypatch) -> None:
    """Fail the test if a start gets as far as the distribution or a JVM."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("a refused start must not prepare the distribution or start a JVM")

    monkeypatch.setattr(local_node, "prepare_distribution", refuse)
    monkeypatch.setattr(local_node, "_launch", refuse)


def test_directory_size_is_read_from_disk(tmp_path):
    assert local_node.directory_size(tmp_path / "new") == 0
    assert local_node.directory_size(_cluster_dir(tmp_path / "three", 3)) == 3
    (tmp_path / "one" / "data").mkdir(parents=True)  # a single node whose first start failed
    assert local_node.directory_size(tmp_path / "one") == 1
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "node.json").write_text('{"running": true, "url": "http://127.0.0.1:9200", "nodes": null}')
    assert local_node.directory_size(tmp_path / "old") == 1


def test_one_node_asked_of_a_three_node_directory_is_refused(tmp_path, monkeypatch):
    root = _cluster_dir(tmp_path / "node", 3)
    _no_jvm(monkeypatch)
    settings = _local(root, monkeypatch, es_nodes=1)
    said = (
        f"node directory {root} holds a 3-node cluster; start it with --nodes 3, "
        f"or use --dir {tmp_path / 'node-1node'} for a 1-node one"
    )
    with pytest.raises(NodeError, match=re.escape(said)):
        local_node.start_node(settings, log=lambda _m: None)
    assert not list(root.rglob("es.pid"))


def test_three_nodes_asked_of_a_single_node_directory_is_refused(tmp_path, monkeypatch):
    (tmp_path / "node" / "data").mkdir(parents=True)
    _no_jvm(monkeypatch)
    with pytest.raises(NodeError, match=r"holds a 1-node cluster; start it with --nodes 1, or use --dir \S+-3nodes"):
        local_node.start_node(_local(tmp_path / "node", monkeypatch, es_nodes=3), log=lambda _m: None)


def test_a_start_that_asks_no_count_runs_what_the_directory_holds(tmp_path, monkeypatch):
    root = _cluster_dir(tmp_path / "node", 3)
    assert local_node.nodes_to_start(_local(root, monkeypatch)) == 3
    assert local_node.nodes_to_start(_local(root, monkeypatch, es_nodes=3)) == 3
    assert local_node.nodes_to_start(_local(tmp_path / "new", monkeypatch)) == 1
    assert local_node.nodes_to_start(_local(tmp_path / "new", monkeypatch, es_nodes=2)) == 2
    monkeypatch.setenv("RRS_ES_NODES", "1")  # the environment asks too
    with pytest.raises(NodeError, match="holds a 3-node cluster"):
        local_node.nodes_to_start(Settings().model_copy(update={"es_url": None, "es_node_dir": root}))


def test_a_failed_first_start_still_leaves_the_directory_size(tmp_path, monkeypatch):
    es_home = tmp_path / "dist"
    (es_home / "config").mkdir(parents=True)
    (es_home / "config" / "jvm.options").write_text("")
    dist = Distribution("9.5.4", es_home, Jdk(Path("/jdk"), 21))
    monkeypatch.setattr(local_node, "prepare_distribution", lambda _settings, _log: dist)

    def launch_fails(*_args):
        raise NodeError("the JVM would not start")

    monkeypatch.setattr(local_node, "_launch", launch_fails)
    root = tmp_path / "node"
    settings = _local(root, monkeypatch, es_nodes=3, es_port=local_node.first_free_port(19_550))
    with pytest.raises(NodeError, match="would not start"):
        local_node.start_node(settings, log=lambda _m: None)
    assert local_node.directory_size(root) == 3
    with pytest.raises(NodeError, match="holds a 3-node cluster"):
        local_node.start_node(settings.model_copy(update={"es_nodes": 1}), log=lambda _m: None)


def test_one_node_lives_in_the_directory_itself(tmp_path):
    [member] = local_node.plan_members(tmp_path, 1, [9200], [9300])
    assert member == {
        "name": "rrs-node-1",
        "dir": str(tmp_path),
        "http_port": 9200,
        "transport_port": 9300,
        "url": "http://127.0.0.1:9200",
    }
