"""The reranker with a real (tiny, random-weight) cross-encoder; no Elasticsearch needed."""

import numpy as np
import pytest
from conftest import varied_pairs

from rrsearch.core.settings import Settings
from rrsearch.service.rerank import RerankerUnavailable, load_reranker


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder_dir):
    return load_reranker(str(tiny_cross_encoder_dir), Settings(rerank_max_length=64, rerank_batch_size=4))


def test_scores_match_cross_encoder_predict(reranker):
    from sentence_transformers import CrossEncoder

    pairs = [("what is rust", "Rust is a systems language."), ("q", "b"), ("longer query here", "x " * 30)]
    reference = CrossEncoder(str(reranker.model.model.name_or_path), device="cpu", max_length=64).predict(pairs)
    assert np.allclose(reranker.score_pairs(pairs), reference, atol=1e-5)


def test_over_long_pairs_are_truncated_before_the_model(reranker):
    pairs = [("query " * 300, "passage " * 5000), ("short", "short")]
    encoded = reranker.tokenize(pairs)
    assert max(len(e.ids) for e in encoded) == reranker.max_length == 64
    scores = reranker.score_pairs(pairs)
    assert len(scores) == 2 and all(np.isfinite(scores))


def test_rerank_through_the_batcher(reranker):
    passages = ["alpha beta", "gamma", "delta epsilon zeta"]
    assert reranker.rerank("q", passages, budget_s=5) == pytest.approx(
        reranker.score_pairs([("q", p) for p in passages]), abs=1e-6
    )


def test_bad_path_says_which(tmp_path):
    with pytest.raises(RerankerUnavailable, match="no-such-model"):
        load_reranker(str(tmp_path / "no-such-model"), Settings())


def test_onnx_export_and_int8_backend(tiny_cross_encoder_dir, tmp_path):
    import shutil

    import onnx
    from scipy.stats import spearmanr

    from rrsearch.core.onnx_export import export_onnx

    folder = tmp_path / "ce"
    shutil.copytree(tiny_cross_encoder_dir, folder)
    result = export_onnx(folder)
    assert [p.name for p in result.paths] == ["model.onnx", "model_qint8.onnx"]
    assert all(p.exists() for p in result.paths) and not (folder / "onnx" / "model.unfused.onnx").exists()
    # The tiny BERT fuses like a real one: one attention kernel per layer, checked against torch.
    assert result.fused_ops["Attention"] == 1 and result.max_logit_difference < 1e-3
    pairs = varied_pairs()
    torch_scores = load_reranker(str(folder), Settings()).score_pairs(pairs)
    fp32 = load_reranker(str(folder), Settings(rerank_backend="onnx", rerank_onnx_file="onnx/model.onnx"))
    int8 = load_reranker(str(folder), Settings(rerank_backend="onnx"))
    assert (fp32.backend, int8.dtype) == ("onnx", "int8")
    assert np.allclose(fp32.score_pairs(pairs), torch_scores, atol=1e-4)
    # int8 keeps torch's order; scores are not compared one by one (see varied_pairs).
    assert spearmanr(int8.score_pairs(pairs), torch_scores).statistic > 0.8
    int8_ops = {node.op_type for node in onnx.load(str(folder / "onnx" / "model_qint8.onnx")).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= int8_ops


def test_missing_onnx_file_is_a_clear_error(tiny_cross_encoder_dir):
    with pytest.raises(RerankerUnavailable, match="export-onnx"):
        load_reranker(str(tiny_cross_encoder_dir), Settings(rerank_backend="onnx", rerank_onnx_file="onnx/none.onnx"))


def test_onnx_export_refuses_a_graph_that_disagrees_with_torch(tiny_cross_encoder_dir, tmp_path, monkeypatch):
    import shutil

    from rrsearch.core import onnx_export

    folder = tmp_path / "ce"
    shutil.copytree(tiny_cross_encoder_dir, folder)
    monkeypatch.setattr(onnx_export, "MAX_LOGIT_DIFFERENCE", -1.0)  # any difference, even 0, now fails
    with pytest.raises(onnx_export.ExportMismatch, match="differ from torch"):
        onnx_export.export_onnx(folder)
    assert list((folder / "onnx").iterdir()) == []  # nothing left that could be served


def test_export_onnx_command_reports_fusion_and_differences(tiny_cross_encoder_dir, tmp_path):
    import shutil

    from click.testing import CliRunner

    from rrsearch.training.cli import export_onnx_command

    folder = tmp_path / "ce"
    shutil.copytree(tiny_cross_encoder_dir, folder)
    result = CliRunner().invoke(export_onnx_command, [str(folder)])
    assert result.exit_code == 0, result.output
    assert "Attention x1" in result.output and "int8 vs torch" in result.output
    assert result.output.count("wrote ") == 2
    missing = CliRunner().invoke(export_onnx_command, [str(tmp_path)])
    assert missing.exit_code == 2 and "no config.json" in missing.output


def test_an_unreachable_hub_fails_at_once_with_what_to_do(monkeypatch):
    """Offline, a hub name must not spend a minute in retries: one probe, then the cache only."""
    from huggingface_hub import constants

    from rrsearch.core.settings import Settings
    from rrsearch.rrs.local_node import first_free_port
    from rrsearch.service.rerank import hub_reachable

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{first_free_port(39_900)}")  # nothing listens
    assert hub_reachable() is False
    with pytest.raises(RerankerUnavailable, match="not reachable and there is no cached copy; set RRS_CROSS_ENCODER"):
        load_reranker("someone/not-cached-anywhere", Settings(device="cpu"))
