"""The export cache's bookkeeping (core/onnx_cache.py), with a stand-in export: no model needed."""

from pathlib import Path

from rrsearch.core.onnx_cache import cached_export, forget_export


def _model(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _export(_source: Path, out: Path) -> None:
    out.mkdir(parents=True)
    (out / "model_qint8.onnx").write_bytes(b"int8")


def test_forget_export_removes_only_that_models_export(tmp_path):
    home = tmp_path / "home"
    fold, served = _model(tmp_path / "fold-0", b"fold"), _model(tmp_path / "served", b"served")
    fold_export = cached_export("cross-encoder", fold, home, "model_qint8.onnx", _export)
    served_export = cached_export("cross-encoder", served, home, "model_qint8.onnx", _export)
    assert fold_export != served_export and (fold_export / "model_qint8.onnx").is_file()

    assert forget_export("cross-encoder", fold, home) is True
    assert not fold_export.exists() and not (home / "onnx" / f"{fold_export.name}.lock").exists()
    assert (served_export / "model_qint8.onnx").is_file()  # the other model's export stays
    assert forget_export("cross-encoder", fold, home) is False  # nothing left to remove
