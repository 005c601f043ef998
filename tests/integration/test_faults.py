"""Faults on a node of their own: stopped and restarted under 8 searching clients, killed in
the middle of an ingest. Only 200s and 503s (with Retry-After) reach clients, searches answer
again soon after the node returns, and a re-run ingest ends equal to a clean run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import requests
from serve_process import rrs_serve

from core.es_client import make_client
from rrs.local_node import first_free_port, node_status, start_node, stop_node

CLIENTS = 8
TOPICS = ["bread", "jazz", "orbits", "gardens", "vaccines", "trains", "chess", "rome", "tides", "owls"]


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


def _corpus(path, n=120):
    with path.open("w") as f:
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            text = " ".join(f"{topic} note {i} line {j} about {TOPICS[(i + j) % len(TOPICS)]}" for j in range(12))
            f.write(json.dumps({"id": f"f{i}", "title": f"{topic} {i}", "text": text, "metadata": {"topic": topic}}) + "\n")
    return path


def _ingest(path, alias, env):
    return subprocess.Popen([sys.executable, "-m", "rrs", "ingest", str(path), "--index", alias, "--batch-size", "8",
                             "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stored(es, alias) -> dict[str, str]:
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=1000, source=["content_hash"], query={"match_all": {}})["hits"]["hits"]
    return {hit["_id"]: hit["_source"]["content_hash"] for hit in hits}


def test_node_killed_mid_ingest_then_the_same_command_equals_a_clean_run(own_node, tmp_path):
    url = f"http://127.0.0.1:{own_node.es_port}"
    env = {**os.environ, "ES_URL": url, "HF_HUB_OFFLINE": "1", "RRS_DEVICE": "cpu"}
    path = _corpus(tmp_path / "corpus.jsonl")
    es = make_client(own_node)
    clean = _ingest(path, "clean", env)
    assert clean.wait(timeout=600) == 0, clean.communicate()
    expected = _stored(es, "clean")
    assert len(expected) == 120

    run = _ingest(path, "faulty", env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        stats = es.indices.stats(index="faulty-v*", metric="indexing", expand_wildcards="open")
        if stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0) >= 24:
            break
        time.sleep(0.05)
    assert run.poll() is None, "the ingest finished before the node could be killed"
    os.kill(node_status(own_node).pid, signal.SIGKILL)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode != 0 and "error:" in stderr  # a clear line, not a hang
    _restart(own_node)
    es.close()
    es = make_client(own_node)
    again = _ingest(path, "faulty", env)
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    assert "taking over the ingest lock" in stderr  # the killed run could not let go of it
    assert _stored(es, "faulty") == expected  # same ids, same content hashes
    es.close()


def test_node_stopped_and_restarted_under_eight_searching_clients(own_node, tmp_path):
    url = f"http://127.0.0.1:{own_node.es_port}"
    env = {"ES_URL": url, "HF_HUB_OFFLINE": "1", "RRS_DEVICE": "cpu", "RRS_INDEX_ALIAS": "clean",
           "RRS_RERANK_ENABLED": "false", "RRS_SERVE_THREADS": str(CLIENTS), "RRS_SEARCH_TIMEOUT_S": "2",
           "RRS_ALIAS_CACHE_S": "0", "RRS_WINDOW_CACHE_SIZE": "0"}
    if not make_client(own_node).indices.exists_alias(name="clean"):
        pytest.skip("needs the index of the ingest test")
    with rrs_serve(first_free_port(19_100), env, tmp_path / "server.log") as base:
        statuses: Counter = Counter()
        missing_retry_after = []
        answered_after: list[float] = []
        stop = threading.Event()

        def client(number: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                query = {"query": f"{TOPICS[(number + n) % len(TOPICS)]} note {n}", "top_k": 3, "rerank": False}
                try:
                    response = requests.post(f"{base}/search", json=query, timeout=30)
                except requests.RequestException as exc:
                    statuses[f"no answer: {exc.__class__.__name__}"] += 1
                    continue
                statuses[response.status_code] += 1
                if response.status_code == 503 and not response.headers.get("Retry-After"):
                    missing_retry_after.append(response.text)
                if response.status_code == 200:
                    answered_after.append(time.monotonic())

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        stop_node(own_node, log=print)
        time.sleep(5)
        returned = _restart(own_node)
        deadline = returned + 60
        while time.monotonic() < deadline and not any(t > returned + 0.5 for t in answered_after):
            time.sleep(0.2)
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    print("statuses:", dict(statuses))
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0 and statuses[503] > 0 and not missing_retry_after
    recovered = min(t for t in answered_after if t > returned) - returned
    print(f"searches answered again {recovered:.1f} s after the node returned")
    assert recovered < 30
