"""Fixtures only integration tests use, beside the helpers of this folder."""

from __future__ import annotations

import pytest
from es_retrievers import Pool
from serve_process import rrs_serve


@pytest.fixture(scope="session")
def reranker_pool(tiny_cross_encoder_dir, tmp_path_factory) -> str:
    """One `rrs serve --role reranker` (the tiny cross-encoder; no node) for every module that only
    asks it to rerank or embed: its start is seconds of imports on one core. A test that stops or
    reconfigures a pool starts its own (``es_retrievers.Pool``)."""
    pool = Pool(tiny_cross_encoder_dir, tmp_path_factory.mktemp("reranker-pool") / "server.log", port=19_500)
    yield pool.url
    pool.stop()


@pytest.fixture(scope="session")
def search_front_env(es_settings, service_index, tiny_cross_encoder_dir) -> dict[str, str]:
    """`rrs serve`'s environment as a search front end over the sample index, reranking in process
    with the tiny cross-encoder; candidates capped at 50 so generated requests stay quick."""
    from rrsearch.core.es_client import resolve_url

    return {
        "ES_URL": resolve_url(es_settings),
        "RRS_INDEX_ALIAS": service_index,
        "RRS_CROSS_ENCODER": str(tiny_cross_encoder_dir),
        "RRS_SERVE_THREADS": "4",
        "HF_HUB_OFFLINE": "1",
        "RRS_SEARCH_LOG_ENABLED": "false",
        "RRS_DEVICE": "cpu",
        "RRS_MAX_CANDIDATES": "50",
        "RRS_DEFAULT_CANDIDATES": "20",
    }


@pytest.fixture(scope="session")
def search_front(search_front_env, tmp_path_factory) -> str:
    """One such front end for the modules that only send it requests (the API contract, the rerank
    routes); a test that needs other settings starts its own."""
    from rrsearch.rrs.local_node import first_free_port

    with rrs_serve(first_free_port(19_000), search_front_env, tmp_path_factory.mktemp("front") / "server.log") as base:
        yield base
