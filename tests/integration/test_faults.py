"""Faults on a node of their own: stopped and restarted under 8 searching clients, killed in
the middle of an ingest. Only 200s and 503s (with Retry-After) reach clients, searches answer
again soon after the node returns, and a re-run ingest ends equal to a clean run.

Each test starts with the node up (``node_up`` restarts one an earlier test left down) and gets
the ``clean`` alias from a fixture, so either runs alone or in any order."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
from fault_tools import CLIENTS, SearchLoad, clean_reference, start_ingest, stored, wait_until_indexing
from serve_process import rrs_serve

from rrsearch.core.es_client import make_client
from rrsearch.rrs.local_node import first_free_port, node_status, start_node, stop_node

pytestmark = pytest.mark.slow  # a node of its own, stopped, killed and restarted: minutes


@pytest.fixture(scope="module")
def own_node(es_settings):
    """A node this module may stop, kill and restart (the session's node stays untouched)."""
    if es_settings.es_url:
        pytest.skip("ES_URL names an external cluster: these tests stop and kill a local node")
    settings = es_settings.model_copy(
        update={
            "es_node_dir": es_settings.home / f"fault-node-{os.getpid()}",
            "es_port": first_free_port(9350),
            "es_heap": "512m",
        }
    )
    start_node(settings, log=print)
    yield settings
    stop_node(settings, log=print)
    shutil.rmtree(settings.node_dir, ignore_errors=True)


@pytest.fixture
def node_up(own_node):
    """The module's node, running where clients look, whatever an earlier test did to it."""
    _restart(own_node)
    return own_node


def _env(settings) -> dict[str, str]:
    return {**os.environ, "ES_URL": f"http://127.0.0.1:{settings.es_port}", "HF_HUB_OFFLINE": "1", "RRS_DEVICE": "cpu"}


@pytest.fixture(scope="module")
def clean_alias(own_node, tmp_path_factory) -> tuple:
    """The undisturbed ingest of the fault corpus into alias ``clean``: (corpus, what it stored)."""
    _restart(own_node)
    return clean_reference(tmp_path_factory.mktemp("clean"), own_node)


def _restart(settings) -> float:
    """Start the node again on the same port; the monotonic time it answered."""
    info = start_node(settings, log=print)
    assert info.url == f"http://127.0.0.1:{settings.es_port}", "the node must come back where clients look"
    return time.monotonic()


def test_node_killed_mid_ingest_then_the_same_command_equals_a_clean_run(clean_alias, node_up):
    own_node = node_up
    env = _env(own_node)
    path, expected = clean_alias
    es = make_client(own_node)

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


def test_node_stopped_and_restarted_under_eight_searching_clients(clean_alias, node_up, tmp_path):
    own_node = node_up
    env = {
        **_env(own_node),
        "RRS_INDEX_ALIAS": "clean",
        "RRS_RERANK_ENABLED": "false",
        "RRS_SERVE_THREADS": str(CLIENTS),
        "RRS_SEARCH_TIMEOUT_S": "2",
        "RRS_ALIAS_CACHE_S": "0",
        "RRS_WINDOW_CACHE_SIZE": "0",
    }
    with rrs_serve(first_free_port(19_100), env, tmp_path / "server.log") as base, SearchLoad(base) as load:
        time.sleep(2)  # searches answered before the stop
        stop_node(own_node, log=print)
        time.sleep(3)  # and refused while the node is down
        returned = _restart(own_node)
        deadline = returned + 60
        while time.monotonic() < deadline and not any(t > returned + 0.5 for t in load.answered):
            time.sleep(0.2)
        time.sleep(1)

    print("statuses:", dict(load.statuses))
    assert set(load.statuses) <= {200, 503}, load.statuses
    assert load.statuses[200] > 0 and load.statuses[503] > 0 and not load.missing_retry_after
    recovered = min(t for t in load.answered if t > returned) - returned
    print(f"searches answered again {recovered:.1f} s after the node returned")
    assert recovered < 30
