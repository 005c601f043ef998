from pathlib import Path

import pytest

from rrs import local_node
from rrs.local_node import Jdk, NodeError, choose_version, render_node_config


def test_newest_pinned_version_for_a_new_jdk():
    version, jdk = choose_version([Jdk(Path("/j25"), 25), Jdk(Path("/j17"), 17)])
    assert version == local_node.PINNED_VERSIONS[9]
    assert jdk.major == 25


def test_java_17_only_gets_es_8():
    version, _ = choose_version([Jdk(Path("/j17"), 17)])
    assert version == local_node.PINNED_VERSIONS[8]


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
    assert Jdk(home.resolve(), 99) in local_node.find_jdks([home])


def test_missing_maven_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(local_node.shutil, "which", lambda _name: None)
    with pytest.raises(NodeError, match="apt install maven"):
        local_node.fetch_distribution("9.9.9", tmp_path)


def test_stale_pid_file_is_removed(tmp_path):
    (tmp_path / "es.pid").write_text("999999999")
    assert local_node._read_pid(tmp_path) is None
    assert not (tmp_path / "es.pid").exists()
