"""Export a cross-encoder folder to ONNX, fuse it, check it, and quantize it to int8 (CPU serving).

Bi-encoders go the same way in :mod:`core.encoder_export`; the steps below are shared.

Why not ``CrossEncoder(..., backend="onnx")``: that path needs ``optimum-onnx``, whose
only releases (0.0.x, 0.1.0) require ``transformers<4.58``, while sentence-transformers
6.x requires ``transformers>=5``; pip cannot resolve ``sentence-transformers[onnx]==6.2``.
So the export is done here, in four steps:

1. ``torch.onnx.export`` of the transformer (returning logits), loaded with eager attention.
   The TorchScript exporter is used while torch has it: ONNX Runtime's transformer
   optimizer recognises its attention pattern (and not the dynamo exporter's), and the
   fused graph is what makes int8 fast. Without it, the dynamo exporter is the fallback.
2. ``onnxruntime.transformers.optimizer`` fuses attention, embeddings + LayerNorm,
   skip-LayerNorm and bias-GELU into single kernels (BERT-family encoders).
3. The fp32 graph's logits are checked against torch's on padded batches; a graph that
   disagrees is refused, so a bad fusion can never serve silently.
4. ``quantize_dynamic`` with per-channel int8 weights (activations quantized at run time):
   per-tensor scales cost ranking quality on SciFact (see docs/guide/cpu.md).

The files land where the service looks::

    <model>/onnx/model.onnx          fp32, fused
    <model>/onnx/model_qint8.onnx    int8 (RRS_RERANK_ONNX_FILE's default)

Example::

    export_onnx("/models/my-cross-encoder").paths   # -> [.../onnx/model.onnx, .../onnx/model_qint8.onnx]
"""

from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rrsearch.core.errors import ExportMismatch

INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
FUSABLE_MODEL_TYPES = {"bert", "roberta", "xlm-roberta", "electra", "camembert"}
MAX_LOGIT_DIFFERENCE = 1e-3  # fp32 ONNX vs torch, on the check pairs
CHECK_PAIRS = [
    ("what is bm25", "BM25 is a bag-of-words ranking function used by search engines."),
    ("q", "short"),
    ("does vitamin d lower the risk of fractures in older adults", "word " * 200),
    ("cross-encoder rerank", "A cross-encoder reads the query and the passage together and outputs one score."),
]


@dataclass
class ExportResult:
    """What ``export_onnx`` wrote and what it found on the way."""

    paths: list[Path]
    exporter: str
    fused_ops: dict[str, int] = field(default_factory=dict)
    max_logit_difference: float = 0.0
    int8_max_logit_difference: float | None = None


def export_onnx(model_dir: str | Path, *, quantize: bool = True, output: str | Path | None = None) -> ExportResult:
    """Write ``onnx/model.onnx`` (and ``onnx/model_qint8.onnx``) inside ``model_dir``, or inside
    ``output`` with copies of the folder's configs and tokenizer (no weights): a folder the
    ONNX backend serves on its own."""
    from sentence_transformers import CrossEncoder

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir} is not a model folder (no config.json)")
    if output is not None:
        copy_model_files(model_dir, Path(output))
    out_dir = Path(output or model_dir) / "onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    cross_encoder = CrossEncoder(str(model_dir), device="cpu", model_kwargs={"attn_implementation": "eager"})
    cross_encoder.model.eval()
    fp32_path = out_dir / "model.onnx"
    raw_path = out_dir / "model.unfused.onnx"
    exporter = _export_graph(cross_encoder, raw_path)
    fused_ops = fuse(raw_path, fp32_path, cross_encoder.model.config)
    raw_path.unlink()

    reference = _torch_logits(cross_encoder)
    result = ExportResult(paths=[fp32_path], exporter=exporter, fused_ops=fused_ops)
    result.max_logit_difference = _max_difference(_onnx_logits(cross_encoder, fp32_path), reference)
    if result.max_logit_difference > MAX_LOGIT_DIFFERENCE:
        for stale in (fp32_path, out_dir / "model_qint8.onnx"):
            stale.unlink(missing_ok=True)
        raise ExportMismatch(
            f"{fp32_path} scores differ from torch by {result.max_logit_difference:.2g} "
            f"(tolerance {MAX_LOGIT_DIFFERENCE}); not serving it"
        )
    if quantize:
        int8_path = quantize_int8(fp32_path, out_dir / "model_qint8.onnx")
        result.paths.append(int8_path)
        result.int8_max_logit_difference = _max_difference(_onnx_logits(cross_encoder, int8_path), reference)
    return result


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".h5", ".msgpack", ".onnx")


def copy_model_files(source: Path, folder: Path) -> None:
    """The top-level files of a model folder except its weights: configs, tokenizer, vocab."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and not path.name.endswith(WEIGHT_SUFFIXES):
            shutil.copy2(path, folder / path.name)


def quantize_int8(source: Path, target: Path, op_types: list[str] | None = None) -> Path:
    """Dynamic int8 quantization: weights per output channel, activations at run time
    (``op_types``: only these operators; default all that can be)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs generic advice on the root logger
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=op_types,
            # Fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape
            # inference; their outputs are fp32.
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)
    return target


def _export_graph(cross_encoder, path: Path) -> str:
    """Export to ``path``; returns which exporter did it."""
    sample = cross_encoder.tokenizer(["query"] * 2, ["a passage"] * 2, padding=True, return_tensors="pt")
    return export_module(_LogitsOnly(cross_encoder.model).eval(), sample, path, output="logits")


def export_module(module, sample, path: Path, *, output: str) -> str:
    """Export ``module`` (positional input_ids, attention_mask[, token_type_ids]) with dynamic
    batch and sequence axes, traced on the tokenised ``sample``; returns which exporter did it."""
    import torch

    wrapper = module
    names = [name for name in INPUT_NAMES if name in sample]
    args = tuple(sample[name] for name in names)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        try:
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                dynamo=False,
                opset_version=17,
                dynamic_axes={name: {0: "batch", 1: "sequence"} for name in names} | {output: {0: "batch"}},
                input_names=names,
                output_names=[output],
                verbose=False,
            )
            return "torchscript"
        except Exception:  # noqa: BLE001 -- a torch without the TorchScript exporter
            from torch.export import Dim

            batch, seq = Dim("batch"), Dim("sequence", max=4096)
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                dynamo=True,
                opset_version=18,
                external_data=False,
                dynamic_shapes={name: {0: batch, 1: seq} for name in names},
                input_names=names,
                output_names=[output],
                verbose=False,
            )
            return "dynamo"


def fuse(source: Path, target: Path, config) -> dict[str, int]:
    """Fused-operator counts written to ``target`` (a plain copy when the family is unknown)."""
    import shutil

    if getattr(config, "model_type", "") not in FUSABLE_MODEL_TYPES:
        shutil.copyfile(source, target)
        return {}
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=getattr(config, "num_attention_heads", 0),
        hidden_size=getattr(config, "hidden_size", 0),
    )
    model.save_model_to_file(str(target))
    return {op: n for op, n in model.get_fused_operator_statistics().items() if n}


def _check_features(cross_encoder, tensors: str):
    """The check pairs, tokenised and padded to one batch."""
    return cross_encoder.tokenizer(
        [q for q, _ in CHECK_PAIRS],
        [p for _, p in CHECK_PAIRS],
        padding=True,
        truncation=True,
        max_length=min(256, cross_encoder.tokenizer.model_max_length),
        return_tensors=tensors,
    )


def _torch_logits(cross_encoder):
    import torch

    with torch.no_grad():
        return cross_encoder.model(**_check_features(cross_encoder, "pt")).logits.reshape(-1).numpy()


def _onnx_logits(cross_encoder, path: Path):
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    feed = {k: np.asarray(v, dtype=np.int64) for k, v in _check_features(cross_encoder, "np").items() if k in wanted}
    return session.run(None, feed)[0].reshape(-1)


def _max_difference(a, b) -> float:
    import numpy as np

    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def model_inputs(input_ids, attention_mask, token_type_ids=None) -> dict:
    """The keyword arguments a transformer takes, positional tensors in (what the exporter traces);
    ``token_type_ids`` only where the model has them (DistilBERT has none)."""
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    return inputs


def _LogitsOnly(hf_model):
    """The transformer as a module taking positional tensors and returning logits."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            return self.inner(**model_inputs(input_ids, attention_mask, token_type_ids)).logits

    return LogitsOnly(hf_model)
