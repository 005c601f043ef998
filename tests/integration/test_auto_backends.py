"""The ``auto`` backends, the default. On a CPU's int8 engines (``onnx-int8``, ``openvino-int8``)
both models are served from exports made on first use with the export commands' checks, cached
by the model's content, and loaded from the cache by the next process; on ``torch-bf16`` (AMX)
by torch in bf16, with no export. No Elasticsearch is needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import varied_pairs
from scipy.stats import spearmanr

from rrsearch.core.encoders import (
    ENGINE_BACKEND,
    bi_encoder_from,
    detected_cpu_engine,
    load_bi_encoder,
    resolve_backend,
)
from rrsearch.core.errors import RerankerUnavailable
from rrsearch.core.onnx_cache import content_fingerprint, forget_export
from rrsearch.core.settings import Settings
from rrsearch.service.rerank import load_reranker

PAIRS = [("what is rust", "Rust is a systems language."), ("q", "b " * 40), ("paris", "Paris is in France.")]
TEXTS = ["Vitamin D lowers the risk of fractures.", "BM25 ranks by term frequency.", "short"]


def auto(home, engine: str = "onnx-int8", **extra) -> Settings:
    return Settings(
        home=home, bi_encoder_backend="auto", rerank_backend="auto", device="cpu", cpu_engine=engine, **extra
    )


@pytest.fixture(scope="module")
def bi_encoder_home(tmp_path_factory):
    """One cache for the bi-encoder's exports: the ONNX int8 test makes the ONNX export, and the
    OpenVINO test makes its int8 from that export, as a machine that changed engine would."""
    return tmp_path_factory.mktemp("bi-encoder-home")


def test_both_backends_default_to_auto():
    assert (Settings.model_fields["bi_encoder_backend"].default, Settings.model_fields["rerank_backend"].default) == (
        "auto",
        "auto",
    )
    assert resolve_backend("auto", "cpu") == ENGINE_BACKEND[detected_cpu_engine()]  # unset: the CPU decides


def test_the_bi_encoder_is_exported_once_and_the_next_process_starts_from_the_cache(bi_encoder_home):
    home = bi_encoder_home
    model = bi_encoder_from(auto(home))
    assert (model.backend, model.precision) == ("onnx", "int8")
    (folder,) = (home / "onnx").glob("bi-encoder-*[!k]")  # not the .lock file
    assert json.loads((folder / "rrs_encoder.json").read_text())["source"] == "sentence-transformers/all-MiniLM-L6-v2"
    torch_vectors = load_bi_encoder("all-MiniLM-L6-v2", "cpu").encode(TEXTS, normalize_embeddings=True)
    cosines = np.sum(model.encode(TEXTS) * torch_vectors, axis=1)
    assert cosines.min() > 0.97, cosines  # the export's own int8 floor

    env = {
        **os.environ,
        "RRS_HOME": str(home),
        "RRS_BI_ENCODER_BACKEND": "auto",
        "RRS_DEVICE": "cpu",
        "RRS_CPU_ENGINE": "onnx-int8",
    }
    script = (
        "import logging, sys; logging.basicConfig(stream=sys.stderr);"
        "from rrsearch.core.encoders import bi_encoder_from; from rrsearch.core.settings import Settings;"
        "m = bi_encoder_from(Settings()); print(m.backend, m.precision, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["onnx", "int8", "False"]  # from the cache, and torch never imported
    assert "Exporting" not in done.stderr
    assert len([p for p in (home / "onnx").iterdir() if p.is_dir() and "openvino" not in p.name]) == 1


def test_the_cross_encoder_is_exported_by_content_and_scores_like_torch(tiny_cross_encoder_dir, tmp_path):
    reranker = load_reranker(str(tiny_cross_encoder_dir), auto(tmp_path / "home"))
    assert (reranker.backend, reranker.dtype) == ("onnx", "int8")
    torch_reranker = load_reranker(str(tiny_cross_encoder_dir), Settings(rerank_backend="torch"))
    assert reranker.name == torch_reranker.name
    # int8 keeps torch's order; scores are not compared one by one (see varied_pairs).
    pairs = [*PAIRS, *varied_pairs()]
    assert spearmanr(reranker.score_pairs(pairs), torch_reranker.score_pairs(pairs)).statistic > 0.8
    assert not (tiny_cross_encoder_dir / "onnx").exists()  # the user's folder is left alone

    # The same files elsewhere: the same cache entry. Other weights: another one.
    copy = tmp_path / "copy"
    shutil.copytree(tiny_cross_encoder_dir, copy)
    assert content_fingerprint(copy) == content_fingerprint(tiny_cross_encoder_dir)
    load_reranker(str(copy), auto(tmp_path / "home"))
    from conftest import build_tiny_cross_encoder

    other = build_tiny_cross_encoder(tmp_path / "other", seed=1)
    assert content_fingerprint(other) != content_fingerprint(tiny_cross_encoder_dir)
    load_reranker(str(other), auto(tmp_path / "home"))
    entries = sorted(p.name.rsplit("-", 1)[-1] for p in (tmp_path / "home" / "onnx").iterdir() if p.is_dir())
    assert entries == sorted({content_fingerprint(tiny_cross_encoder_dir), content_fingerprint(other)})


def test_a_folder_with_its_own_export_is_served_as_it_is(tiny_cross_encoder_dir, tmp_path):
    from rrsearch.core.onnx_export import export_onnx

    folder = tmp_path / "ce"
    shutil.copytree(tiny_cross_encoder_dir, folder)
    export_onnx(folder)
    assert load_reranker(str(folder), auto(tmp_path / "home")).dtype == "int8"
    assert not (tmp_path / "home" / "onnx").exists() or not any((tmp_path / "home" / "onnx").iterdir())


def test_an_export_that_fails_its_check_is_refused_with_the_reason(tiny_cross_encoder_dir, tmp_path, monkeypatch):
    from rrsearch.core import onnx_export

    monkeypatch.setattr(onnx_export, "MAX_LOGIT_DIFFERENCE", -1.0)  # no graph can pass
    with pytest.raises(
        RerankerUnavailable, match="cannot export cross-encoder .* differ from torch .*RRS_RERANK_BACKEND=torch"
    ):
        load_reranker(str(tiny_cross_encoder_dir), auto(tmp_path / "home"))
    assert not [p for p in (tmp_path / "home" / "onnx").iterdir() if p.is_dir()]  # nothing half-made is left


def test_an_unreachable_hub_name_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RerankerUnavailable, match="no local copy of 'cross-encoder/not-here'.*RRS_CROSS_ENCODER"):
        load_reranker("cross-encoder/not-here", auto(tmp_path))


def test_with_amx_both_models_are_torch_bf16_with_no_export(tiny_cross_encoder_dir, tmp_path):
    encoder = bi_encoder_from(auto(tmp_path, "torch-bf16"))
    assert (encoder.backend, encoder.precision) == ("torch", "bf16")
    fp32 = load_bi_encoder("all-MiniLM-L6-v2", "cpu").encode(TEXTS, normalize_embeddings=True)
    bf16 = encoder.encode(TEXTS, normalize_embeddings=True)
    assert bf16.dtype == np.float32 and np.sum(bf16 * fp32, axis=1).min() > 0.99

    reranker = load_reranker(str(tiny_cross_encoder_dir), auto(tmp_path, "torch-bf16"))
    assert (reranker.backend, reranker.dtype) == ("torch", "bf16")
    torch_scores = load_reranker(str(tiny_cross_encoder_dir), Settings(rerank_backend="torch")).score_pairs(PAIRS)
    assert np.allclose(reranker.score_pairs(PAIRS), torch_scores, atol=0.05)
    assert load_reranker(str(tiny_cross_encoder_dir), auto(tmp_path, "torch-bf16", rerank_dtype="fp32")).dtype == "fp32"
    assert not (tmp_path / "onnx").exists()  # nothing was exported


def test_openvino_int8_is_made_from_the_onnx_export_once_and_agrees_with_torch(tiny_cross_encoder_dir, bi_encoder_home):
    """The AVX-512 VNNI engine: NNCF's static int8 of each ONNX export, calibrated on the packaged
    sample corpus, cached beside it; the next process loads it without exporting or importing torch.
    Run alone, it makes the ONNX export first; in the module, it finds the one the test above made."""
    home = bi_encoder_home
    encoder = bi_encoder_from(auto(home, "openvino-int8"))
    assert (encoder.backend, encoder.precision) == ("openvino", "int8")
    torch_vectors = load_bi_encoder("all-MiniLM-L6-v2", "cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.sum(encoder.encode(TEXTS) * torch_vectors, axis=1).min() > 0.97
    (folder,) = (home / "onnx").glob("openvino-bi-encoder-*[!k]")
    assert json.loads((folder / "openvino" / "export.json").read_text())["min_cosine"] > 0.97
    onnx_folder = home / "onnx" / folder.name.removeprefix("openvino-")
    assert (onnx_folder / "onnx" / "model.onnx").is_file()  # made from the ONNX export, named after it

    env = {
        **os.environ,
        "RRS_HOME": str(home),
        "RRS_BI_ENCODER_BACKEND": "auto",
        "RRS_DEVICE": "cpu",
        "RRS_CPU_ENGINE": "openvino-int8",
    }
    script = (
        "import logging, sys; logging.basicConfig(stream=sys.stderr);"
        "from rrsearch.core.encoders import bi_encoder_from; from rrsearch.core.settings import Settings;"
        "m = bi_encoder_from(Settings()); print(m.backend, m.precision, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["openvino", "int8", "False"] and "Exporting" not in done.stderr

    reranker = load_reranker(str(tiny_cross_encoder_dir), auto(home, "openvino-int8"))
    assert (reranker.backend, reranker.dtype) == ("openvino", "int8")
    torch_reranker = load_reranker(str(tiny_cross_encoder_dir), Settings(rerank_backend="torch"))
    pairs = [*PAIRS, *varied_pairs()]
    assert spearmanr(reranker.score_pairs(pairs), torch_reranker.score_pairs(pairs)).statistic > 0.8

    assert forget_export("cross-encoder", tiny_cross_encoder_dir, home)  # a cross-fit fold's cleanup
    assert not list((home / "onnx").glob("*cross-encoder-*[!k]"))  # the OpenVINO export went with it
