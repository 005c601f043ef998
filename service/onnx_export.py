"""Export a cross-encoder folder to ONNX and quantize it to int8 (for CPU serving).

Why not ``CrossEncoder(..., backend="onnx")``: that path needs ``optimum-onnx``, whose
only releases (0.0.x, 0.1.0) require ``transformers<4.58``, while sentence-transformers
6.x requires ``transformers>=5``; pip cannot resolve ``sentence-transformers[onnx]==6.2``.
So the export is done directly: ``torch.onnx.export`` (dynamo exporter) of the model's
transformer returning logits, then ``onnxruntime.quantization.quantize_dynamic``
(int8 weights, dynamic activations). The files land where the service looks:

    <model>/onnx/model.onnx          fp32
    <model>/onnx/model_qint8.onnx    int8 (RRS_RERANK_ONNX_FILE's default)

Example::

    export_onnx("/models/my-cross-encoder")   # -> [.../onnx/model.onnx, .../onnx/model_qint8.onnx]
"""

from __future__ import annotations

import logging
from pathlib import Path

INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


def export_onnx(model_dir: str | Path, *, quantize: bool = True, opset: int = 18) -> list[Path]:
    """Write ``onnx/model.onnx`` (and ``onnx/model_qint8.onnx``) inside ``model_dir``."""
    import torch
    from sentence_transformers import CrossEncoder
    from torch.export import Dim

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir} is not a model folder (no config.json)")
    out_dir = model_dir / "onnx"
    out_dir.mkdir(exist_ok=True)
    cross_encoder = CrossEncoder(str(model_dir), device="cpu")
    wrapper = _LogitsOnly(cross_encoder.model).eval()
    sample = cross_encoder.tokenizer(["query"] * 2, ["a passage"] * 2, padding=True, return_tensors="pt")
    names = [name for name in INPUT_NAMES if name in sample]
    batch, seq = Dim("batch"), Dim("sequence", max=4096)
    fp32_path = out_dir / "model.onnx"
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            tuple(sample[name] for name in names),
            str(fp32_path),
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={name: {0: batch, 1: seq} for name in names},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    paths = [fp32_path]
    if quantize:
        paths.append(quantize_int8(fp32_path, out_dir / "model_qint8.onnx"))
    return paths


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantization of the weights (activations quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs generic advice on the root logger
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return target


def _LogitsOnly(hf_model):
    """The transformer as a module taking positional tensors and returning logits."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.inner(**kwargs).logits

    return LogitsOnly(hf_model)
