"""`rrs serve`: the real gunicorn process on a free port, against the real node."""

import re
import runpy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from serve_process import rrs_serve


@pytest.fixture(scope="module")
def server(es_settings, service_index, tiny_cross_encoder_dir, tmp_path_factory):
    from rrsearch.core.es_client import resolve_url
    from rrsearch.rrs.local_node import first_free_port

    env = {
        "ES_URL": resolve_url(es_settings),
        "RRS_INDEX_ALIAS": service_index,
        "RRS_CROSS_ENCODER": str(tiny_cross_encoder_dir),
        "RRS_SERVE_WORKERS": "1",
        "RRS_SERVE_THREADS": "4",
        "HF_HUB_OFFLINE": "1",
        "RRS_SEARCH_LOG_ENABLED": "false",
        "RRS_DEVICE": "cpu",
        # where gunicorn would put its control socket: the side-by-side test checks it stays empty
        "XDG_RUNTIME_DIR": str(tmp_path_factory.mktemp("runtime")),
    }
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    with rrs_serve(first_free_port(18_700), env, log) as base:
        yield base, log, env


def test_a_pool_beside_the_search_service_touches_none_of_its_files(server, tmp_path):
    """Two `rrs serve` on one host (a search front end and a rerank pool): each starts and
    stops without the other's files; no shared control socket appears."""
    from rrsearch.rrs.local_node import first_free_port

    base, _log, env = server
    runtime = env["XDG_RUNTIME_DIR"]
    pool_env = {**env, "RRS_SERVE_ROLE": "reranker", "ES_URL": "http://127.0.0.1:1"}  # a pool needs no node
    with rrs_serve(first_free_port(18_760), pool_env, tmp_path / "pool.log") as pool:
        ranked = requests.post(
            f"{pool}/rerank", json={"query": "vitamin d", "texts": ["vitamin d", "tax law"]}, timeout=30
        )
        assert ranked.status_code == 200
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        assert list(Path(runtime).iterdir()) == []  # no gunicorn.ctl for the first to exit to delete
    # the pool has stopped; the search service goes on answering, its files untouched
    assert list(Path(runtime).iterdir()) == []
    answer = requests.post(f"{base}/search", json={"query": "vitamin d", "top_k": 3}, timeout=60)
    assert answer.status_code == 200 and answer.json()["hits"]


def test_search_under_gunicorn(server):
    base, _, _ = server
    response = requests.post(f"{base}/search", json={"query": "tomato plants in pots", "top_k": 5}, timeout=30)
    body = response.json()
    assert response.status_code == 200 and len(body["hits"]) == 5 and body["reranked"] is True


def test_gunicorn_runs_the_configured_worker_class(server):
    """`rrs serve` passes service/http/gunicorn.conf.py to gunicorn: its threaded worker class,
    and the one worker RRS_SERVE_WORKERS asks for, are what the master reports booting."""
    from rrsearch.service.cli import GUNICORN_CONF

    _, log, _ = server
    configured = runpy.run_path(str(GUNICORN_CONF))["worker_class"]
    assert configured == "gthread"  # RRS_SERVE_THREADS' threads serve requests only in a threaded worker
    text = log.read_text()
    assert re.findall(r"\[INFO\] Using worker: (\S+)", text) == [configured], text[-3000:]
    assert len(re.findall(r"\[INFO\] Booting worker with pid: \d+", text)) == 1, text[-3000:]


def test_concurrent_requests_all_answered(server):
    base, _, _ = server
    queries = [
        f"history of {word}" for word in ["jazz", "rome", "bread", "orbits", "gardens", "vaccines", "trains", "chess"]
    ]

    def one(query):
        return requests.post(f"{base}/search", json={"query": query, "top_k": 3}, timeout=60)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(one, queries))
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.json()["query"] for r in responses] == queries


def test_errors_and_probes_under_gunicorn(server):
    base, _, _ = server
    assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
    bad = requests.post(f"{base}/search", data="{", headers={"Content-Type": "application/json"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["field"] == "body"
    assert "rrs_requests_total" in requests.get(f"{base}/metrics", timeout=5).text
