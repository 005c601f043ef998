"""Faults on a node of their own: stopped and restarted under 8 searching clients, killed in
the middle of an ingest. Only 200s and 503s (with Retry-After) reach clients, searches answer
again soon after the node returns, and a re-run ingest ends equal to a clean run."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
from fault_tools import CLIENTS, SearchLoad, clean_run, start_ingest, stored, wait_until_indexing, write_corpus
from serve_process import rrs_serve

from rrsearch.core.es_client import make_client
from rrsearch.rrs.local_node import first_free_port, node_status, start_node, stop_node


@pytest.fixture(scope="module")
def own_node(es_settings):
    """A node this module may stop, kill and restart (the session's node stays untouched)."""
    if es_settings.es_url:
        pytest.skip("ES_URL names an external cluster: these tests stop and kill a local node")
    settings = es_settings.model_copy(update={
        "es_node_dir": es_settings.home / f"fault-node-{os.getpid()}",
        "es_port": first_free_port(9350), "es_heap": "512m",
    })
    start_node(settings, log=print)
    yield settings
    stop_node(settings, log=print)
    shutil.rmtree(settings.node_dir, ignore_errors=True)


def _restart(settings) -> float:
    """Start the node again on the same port; the monotonic time it answered."""
    info = start_node(settings, log=print)
    assert info.url == f"http://127.0.0.1:{settings.es_port}", "the node must come back where clients look"
    return time.monotonic()


def test_node_killed_mid_ingest_then_the_same_command_equals_a_clean_run(own_node, tmp_path):
    url = f"http://127.0.0.1:{own_node.es_port}"
    env = {**os.environ, "ES_URL": url, "HF_HUB_OFFLINE": "1", "RRS_DEVICE": "cpu"}
    path = write_corpus(tmp_path / "corpus.jsonl")
    es = make_client(own_node)
    expected = clean_run(path, es, env)

    run = start_ingest(path, "faulty", env)
    wait_until_indexing(es, "faulty", run)
    assert run.poll() is None, "the ingest finished before the node could be killed"
    os.kill(node_status(own_node).pid, signal.SIGKILL)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode != 0 and "error:" in stderr  # a clear line, not a hang
    _restart(own_node)
    es.close()
    es = make_client(own_node)
    again = start_ingest(path, "faulty", env)
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    assert "taking over the ingest lock" in stderr  # the killed run could not let go of it
    assert stored(es, "faulty") == expected  # same ids, same content hashes
    es.close()


def test_node_stopped_and_restarted_under_eight_searching_clients(own_node, tmp_path):
    url = f"http://127.0.0.1:{own_node.es_port}"
    env = {"ES_URL": url, "HF_HUB_OFFLINE": "1", "RRS_DEVICE": "cpu", "RRS_INDEX_ALIAS": "clean",
           "RRS_RERANK_ENABLED": "false", "RRS_SERVE_THREADS": str(CLIENTS), "RRS_SEARCH_TIMEOUT_S": "2",
           "RRS_ALIAS_CACHE_S": "0", "RRS_WINDOW_CACHE_SIZE": "0"}
    if not make_client(own_node).indices.exists_alias(name="clean"):
        pytest.skip("needs the index of the ingest test")
    with rrs_serve(first_free_port(19_100), env, tmp_path / "server.log") as base, SearchLoad(base) as load:
        time.sleep(3)
        stop_node(own_node, log=print)
        time.sleep(5)
        returned = _restart(own_node)
        deadline = returned + 60
        while time.monotonic() < deadline and not any(t > returned + 0.5 for t in load.answered):
            time.sleep(0.2)
        time.sleep(2)

    print("statuses:", dict(load.statuses))
    assert set(load.statuses) <= {200, 503}, load.statuses
    assert load.statuses[200] > 0 and load.statuses[503] > 0 and not load.missing_retry_after
    recovered = min(t for t in load.answered if t > returned) - returned
    print(f"searches answered again {recovered:.1f} s after the node returned")
    assert recovered < 30
