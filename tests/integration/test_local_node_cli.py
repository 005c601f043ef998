"""`rrs es start|status|stop` through the real console script, twice in a row (the second time on a
taken port)."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from rrsearch.rrs.local_node import first_free_port


def rrs(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "rrsearch", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.skipif(bool(os.environ.get("ES_URL")), reason="ES_URL names an external cluster; nothing to start")
def test_start_status_stop_twice(es_settings):
    """The same directory started, read and stopped twice; the second time its port is held by
    another listener, so the start must move on and status must report the real URL."""
    node_dir = es_settings.home / f"cli-node-{os.getpid()}"
    port = first_free_port(9350)
    env = {**os.environ, "RRS_ES_NODE_DIR": str(node_dir), "RRS_ES_PORT": str(port), "RRS_ES_HEAP": "512m"}
    dist = es_settings.home / "dist"
    try:
        _round(env, dist, port, moved=False)
        with socket.socket() as squatter:  # the port the first round used, taken by someone else now
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            started = _round(env, dist, port, moved=True)
            assert f"Port {port} is taken" in started.stderr
    finally:
        rrs("es", "stop", env=env)
        shutil.rmtree(node_dir, ignore_errors=True)


def _round(env, dist, port, moved):
    """Start, status, stop, status: served on ``port``, or (``moved``) anywhere but there."""
    zips_before = sorted(p.stat().st_mtime for p in dist.glob("*.zip"))
    started = rrs("es", "start", env=env)
    assert started.returncode == 0, started.stderr
    assert sorted(p.stat().st_mtime for p in dist.glob("*.zip")) == zips_before  # nothing downloaded again
    status = rrs("es", "status", "--json", env=env)
    info = json.loads(status.stdout)
    assert status.returncode == 0 and info["running"] is True
    assert info["url"].startswith("http://127.0.0.1:") and info["version"].split(".")[0] in ("8", "9")
    served_port = int(info["url"].rsplit(":", 1)[1])
    assert (served_port != port) is moved, info["url"]
    stopped = rrs("es", "stop", env=env)
    assert stopped.returncode == 0 and "Stopped" in stopped.stderr
    after = rrs("es", "status", "--json", env=env)
    assert after.returncode == 3 and json.loads(after.stdout)["running"] is False
    return started


def test_external_es_url_starts_nothing(es_settings):
    url = (
        json.loads((es_settings.node_dir / "node.json").read_text())["url"]
        if not es_settings.es_url
        else es_settings.es_url
    )
    env = {**os.environ, "ES_URL": url, "RRS_ES_NODE_DIR": "/nonexistent/rrs-node"}
    started = rrs("es", "start", env=env)
    assert started.returncode == 0 and "nothing started" in started.stderr
    info = json.loads(rrs("es", "status", "--json", env=env).stdout)
    assert info["running"] is True and info["managed"] is False and info["url"] == url
    assert rrs("es", "stop", env=env).returncode == 0  # refuses politely, stops nothing
    assert json.loads(rrs("es", "status", "--json", env=env).stdout)["running"] is True


def test_unreachable_es_url_is_reported_not_running():
    env = {**os.environ, "ES_URL": f"http://127.0.0.1:{first_free_port(9500)}"}
    status = rrs("es", "status", "--json", env=env)
    assert status.returncode == 3 and json.loads(status.stdout)["running"] is False


def test_one_node_asked_of_a_three_node_directory_is_refused_and_starts_nothing(tmp_path):
    """The record a 3-node cluster start leaves (as older versions wrote it, too) is enough:
    `--nodes 1` exits 1 with what to do, before any distribution or JVM is touched."""
    node_dir = tmp_path / "node"
    members = [
        {
            "name": f"rrs-node-{i}",
            "dir": str(node_dir / f"node-{i}"),
            "http_port": 9549 + i,
            "transport_port": 9649 + i,
            "url": f"http://127.0.0.1:{9549 + i}",
        }
        for i in (1, 2, 3)
    ]
    node_dir.mkdir()
    (node_dir / "node.json").write_text(
        json.dumps(
            {
                "url": ",".join(m["url"] for m in members),
                "version": "9.5.4",
                "java_home": "/jdk",
                "node_dir": str(node_dir),
                "nodes": members,
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ES_URL", "RRS_ES_URL", "RRS_ES_NODES")}
    env["RRS_HOME"] = str(tmp_path / "home")  # an empty cache: a start that got further would fetch here
    refused = rrs("es", "start", "--nodes", "1", "--dir", str(node_dir), env=env)
    assert refused.returncode == 1, refused.stderr
    assert (
        f"error: node directory {node_dir} holds a 3-node cluster; start it with --nodes 3, "
        f"or use --dir {tmp_path / 'node-1node'} for a 1-node one"
    ) in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node"]  # no cache, no distribution
    assert sorted(p.name for p in node_dir.iterdir()) == ["node.json"]  # no member directory, no pid file
