"""The ONNX bi-encoder: export checked against sentence-transformers, served without torch."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rrsearch.core.encoders import (
    encoder_identity,
    encoder_mismatch,
    load_bi_encoder,
    model_label,
    probe_cosine,
)
from rrsearch.core.errors import ExportMismatch
from rrsearch.core.onnx_models import OnnxBiEncoder, read_encoder_card

PASSAGES = [
    "Vitamin D deficiency is associated with a higher risk of fractures in the elderly.",
    "The HNSW graph links each vector to its nearest neighbours on several layers.",
    "x",
    "Long text " * 300,  # cut at max_seq_length by both sides alike
]


def _cosines(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_export_writes_a_torch_free_folder_with_its_source_name(onnx_bi_encoder_dir):
    card = read_encoder_card(onnx_bi_encoder_dir)
    assert card["source"] == "sentence-transformers/all-MiniLM-L6-v2" == model_label(str(onnx_bi_encoder_dir))
    assert (card["pooling"], card["normalized"], card["dims"], card["max_seq_length"]) == ("mean", True, 384, 256)
    assert card["checks"]["onnx/model.onnx"]["min_cosine"] >= 0.999
    assert card["checks"]["onnx/model_qint8.onnx"]["min_cosine"] >= 0.97
    assert not list(onnx_bi_encoder_dir.glob("*.safetensors")) and (onnx_bi_encoder_dir / "tokenizer.json").exists()


def test_onnx_vectors_match_sentence_transformers(onnx_bi_encoder_dir):
    torch_model = load_bi_encoder("all-MiniLM-L6-v2", "cpu")
    reference = torch_model.encode(PASSAGES, normalize_embeddings=True)
    fp32 = OnnxBiEncoder(onnx_bi_encoder_dir, "onnx/model.onnx")
    int8 = OnnxBiEncoder(onnx_bi_encoder_dir, "onnx/model_qint8.onnx")
    assert (fp32.precision, int8.precision, fp32.get_sentence_embedding_dimension()) == ("fp32", "int8", 384)
    assert _cosines(fp32.encode(PASSAGES, batch_size=3), reference).min() >= 0.999
    assert _cosines(int8.encode(PASSAGES, batch_size=3), reference).min() >= 0.97
    vectors = int8.encode(PASSAGES)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # input order survives the length-sorted batches
    assert np.allclose(int8.encode(PASSAGES[::-1])[::-1], vectors, atol=1e-6)


def test_the_chunker_cuts_the_same_passages_from_either_backend(onnx_bi_encoder_dir):
    from rrsearch.ingest.chunking import Chunker
    from rrsearch.ingest.validate import Document

    doc = Document(id="d", title="A title", text="Sentence number one is here. " * 120, metadata={})
    torch_chunks = Chunker.for_model(load_bi_encoder("all-MiniLM-L6-v2", "cpu"), overlap=16).split([doc])
    onnx_chunks = Chunker.for_model(OnnxBiEncoder(onnx_bi_encoder_dir, "onnx/model.onnx"), overlap=16).split([doc])
    assert [p.text for p in onnx_chunks[0]] == [p.text for p in torch_chunks[0]] and len(torch_chunks[0]) > 1


def test_serving_onnx_models_never_imports_torch(onnx_bi_encoder_dir, tiny_cross_encoder_dir, tmp_path):
    import shutil

    from rrsearch.core.onnx_export import export_onnx

    reranker_dir = tmp_path / "ce"
    shutil.copytree(tiny_cross_encoder_dir, reranker_dir)
    export_onnx(reranker_dir)
    script = textwrap.dedent(f"""
        import json, sys
        from rrsearch.core.settings import Settings
        from rrsearch.core.encoders import bi_encoder_from, encode_query
        from rrsearch.service.rerank import load_reranker
        settings = Settings(bi_encoder={str(onnx_bi_encoder_dir)!r}, bi_encoder_backend="onnx",
                            rerank_backend="onnx")
        encoder = bi_encoder_from(settings)
        reranker = load_reranker({str(reranker_dir)!r}, settings)
        vector = encode_query(encoder, "what is bm25")
        scores = reranker.score_pairs([("what is bm25", "BM25 ranks documents."), ("q", "x " * 500)])
        print(json.dumps({{"torch": "torch" in sys.modules, "dims": len(vector), "scores": scores,
                          "backend": [encoder.backend, reranker.backend, reranker.dtype]}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    assert result["dims"] == 384 and result["backend"] == ["onnx", "onnx", "int8"]
    assert len(result["scores"]) == 2 and all(0.0 <= s <= 1.0 for s in result["scores"])


def test_probe_check_accepts_another_backend_and_refuses_another_model(onnx_bi_encoder_dir):
    torch_identity = encoder_identity(
        load_bi_encoder("all-MiniLM-L6-v2", "cpu"), "sentence-transformers/all-MiniLM-L6-v2"
    )
    int8_identity = encoder_identity(
        OnnxBiEncoder(onnx_bi_encoder_dir, "onnx/model_qint8.onnx"), "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert (int8_identity["bi_encoder_backend"], int8_identity["bi_encoder_precision"]) == ("onnx", "int8")
    cosine = probe_cosine(torch_identity["bi_encoder_probe"], int8_identity["bi_encoder_probe"])
    assert 0.97 <= cosine < 1.0
    assert encoder_mismatch(torch_identity, int8_identity, 0.95) is None
    refused = encoder_mismatch(torch_identity, int8_identity, 0.99999)
    assert "'sentence-transformers/all-MiniLM-L6-v2' (torch fp32)" in refused
    assert "(onnx int8)" in refused and "RRS_BI_ENCODER_TOLERANCE" in refused
    other = {**int8_identity, "bi_encoder": "other/model"}
    assert "built with bi-encoder 'other/model'" in encoder_mismatch(other, int8_identity, 0.5)
    assert encoder_mismatch({"bi_encoder": "sentence-transformers/all-MiniLM-L6-v2"}, int8_identity, 0.99) is None


def test_a_graph_that_drifts_is_refused_and_removed(tmp_path, monkeypatch):
    from rrsearch.core import encoder_export

    monkeypatch.setattr(encoder_export, "MIN_FP32_COSINE", 1.01)  # no export can reach it
    with pytest.raises(ExportMismatch, match="onnx/model.onnx embeds .* from sentence-transformers' own vector"):
        encoder_export.export_bi_encoder("all-MiniLM-L6-v2", tmp_path / "out", quantize=False)
    assert not list((tmp_path / "out" / "onnx").iterdir()) and read_encoder_card(tmp_path / "out") is None


def test_export_command_needs_an_output_for_the_packaged_model_and_torch_refuses_an_onnx_only_folder(
    onnx_bi_encoder_dir,
):
    from click.testing import CliRunner

    from rrsearch.training.cli import encoder_export_command

    result = CliRunner().invoke(encoder_export_command, ["all-MiniLM-L6-v2"])
    assert result.exit_code == 2 and "--output" in result.output
    with pytest.raises(FileNotFoundError, match="RRS_BI_ENCODER_BACKEND=onnx"):
        load_bi_encoder(str(onnx_bi_encoder_dir), "cpu")


def test_encode_batches_are_sized_in_tokens_on_cuda_and_in_texts_elsewhere():
    from types import SimpleNamespace

    from rrsearch.core.encoders import encode_batch_size
    from rrsearch.core.settings import Settings

    cpu = SimpleNamespace(device="cpu", max_seq_length=256)
    cuda = SimpleNamespace(device="cuda:0", max_seq_length=256)
    assert encode_batch_size(Settings(), cpu) == 64
    assert encode_batch_size(Settings(), cuda) == 65_536 // 256
    assert encode_batch_size(Settings(encode_token_budget=8192), cpu) == 32
