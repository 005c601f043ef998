"""OpenVINO int8: the ONNX fp32 export quantized by NNCF, served by the OpenVINO runtime.

Why: on a CPU with AVX-512 VNNI and no AMX it is the fastest engine within 0.005 nDCG@10
of fp32 (bench/README.md, "CPU engines and where the time goes"). Its int8 is static:
activations are quantized with ranges measured once, at export, on calibration inputs.
Those come from the packaged sample corpus (``core/calibration/corpus.jsonl``): passages for
the bi-encoder, and for the cross-encoder each passage behind its own title (a matching
pair) or the next one's (a mismatched pair). No judged query takes part.

The export folder is the ONNX export's (tokenizer, configs, ``rrs_encoder.json``) plus
``openvino/model_int8.xml`` and ``.bin``, and ``openvino/export.json`` with its checks.
:class:`OpenVinoSession` serves it with the two methods of an ONNX Runtime session the
serving code calls, so tokenizing, batching and padding stay one code path.

Example::

    export_openvino_int8(Path("cache/bi-encoder-1a2b"), Path("cache/openvino-bi-encoder-1a2b"), "bi-encoder")
    session = OpenVinoSession(Path("cache/openvino-bi-encoder-1a2b") / OPENVINO_FILE, threads=2)
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rrsearch.core.errors import ExportMismatch
from rrsearch.core.onnx_export import copy_model_files
from rrsearch.core.passage import passage_text
from rrsearch.core.tokenization import load_tokenizer, pad_batch, pad_token_id, truncating

OPENVINO_FILE = "openvino/model_int8.xml"
CALIBRATION_CORPUS = Path(__file__).parent / "calibration" / "corpus.jsonl"
CALIBRATION_TEXTS = 128  # 8 batches of 16: NNCF's ranges settle well before (bench/README.md)
CALIBRATION_BATCH = 16
CROSS_ENCODER_LENGTH = 256  # the CPU's rerank cap (RRS_RERANK_MAX_LENGTH's default there)
MIN_INT8_COSINE = 0.97  # the ONNX int8 export's floor for a passage (core/encoder_export.py)


def openvino_available() -> bool:
    """Whether the OpenVINO runtime and NNCF are installed (both are dependencies; a trimmed install
    may lack them). Found, not imported: importing NNCF pulls in torch, 1.7 s that a process serving
    a cached export never needs."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("nncf", "openvino"))


def import_openvino():
    """The ``openvino`` module, imported with OpenVINO's and NNCF's usage telemetry off.

    Importing openvino (through its converter) sends an event to Google Analytics and starts a
    sender thread, by default, unless ``~/intel/openvino_telemetry`` says otherwise: a search
    service should not report its starts to a third party, and that idle thread made every process
    that served an OpenVINO model wait at its exit. Both packages fall back to their own no-op
    telemetry when ``openvino_telemetry`` cannot be imported, which is what marking it absent in
    ``sys.modules`` does (a process that imported it before us keeps it)."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino


class OpenVinoSession:
    """An OpenVINO model compiled for the CPU, called like an ONNX Runtime session. One
    inference request, taken in turn: each call already uses every thread it was given."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import os

        ov = import_openvino()
        config = {"INFERENCE_NUM_THREADS": threads or os.cpu_count() or 1, "PERFORMANCE_HINT": "LATENCY"}
        compiled = ov.Core().compile_model(str(path), "CPU", config)
        self._request = compiled.create_infer_request()
        self._names = [port.get_any_name() for port in compiled.inputs]
        self._lock = threading.Lock()

    def get_inputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=name) for name in self._names]

    def run(self, _output_names, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:  # the request's output buffers are reused by the next call: copy them out
            return [np.array(output) for output in self._request.infer(feed).values()]


def calibration_passages(limit: int = CALIBRATION_TEXTS) -> list[dict]:
    lines = CALIBRATION_CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()][:limit]


def calibration_batches(folder: Path, kind: str, max_length: int) -> list[dict[str, np.ndarray]]:
    """Padded model inputs for NNCF: passages (bi-encoder) or (title, passage) pairs, half of them mismatched."""
    tokenizer = truncating(load_tokenizer(folder), max_length)
    passages = calibration_passages()
    if kind == "bi-encoder":
        items: list = [passage_text(p) for p in passages]
    else:
        items = [
            (passages[i if i % 2 == 0 else (i + 1) % len(passages)]["title"], passage["text"])
            for i, passage in enumerate(passages)
        ]
    pad = pad_token_id(tokenizer)
    return [
        pad_batch(tokenizer.encode_batch(items[start : start + CALIBRATION_BATCH]), pad)
        for start in range(0, len(items), CALIBRATION_BATCH)
    ]


def export_openvino_int8(onnx_folder: Path, out: Path, kind: str) -> dict:
    """Quantize ``onnx_folder``'s ``onnx/model.onnx`` into ``out`` (with the folder's tokenizer,
    configs and card); a bi-encoder whose int8 vectors stray from fp32's is refused."""
    import contextlib
    import io
    import logging

    ov = import_openvino()
    import nncf

    copy_model_files(onnx_folder, out)  # tokenizer, configs, card: no weights
    card = json.loads((onnx_folder / "rrs_encoder.json").read_text()) if kind == "bi-encoder" else {}
    max_length = int(card.get("max_seq_length") or CROSS_ENCODER_LENGTH)
    batches = calibration_batches(onnx_folder, kind, max_length)
    model = ov.convert_model(str(onnx_folder / "onnx" / "model.onnx"))
    logging.getLogger("nncf").setLevel(logging.ERROR)  # advice, per export
    with contextlib.redirect_stdout(io.StringIO()):  # and its progress bars: the export logs one line
        quantized = nncf.quantize(
            model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches)
        )
    target = out / OPENVINO_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(target), compress_to_fp16=False)
    checks = _agreement(onnx_folder / "onnx" / "model.onnx", target, batches[:2], kind)
    (target.parent / "export.json").write_text(json.dumps({"kind": kind, **checks}, indent=2) + "\n")
    if kind == "bi-encoder" and checks["min_cosine"] < MIN_INT8_COSINE:
        raise ExportMismatch(
            f"the OpenVINO int8 export of {onnx_folder} moves a passage to cosine {checks['min_cosine']:.3f} "
            f"of fp32 (floor {MIN_INT8_COSINE}); not serving it (set RRS_CPU_ENGINE=onnx-int8)"
        )
    return checks


def _agreement(fp32: Path, int8: Path, batches: list[dict], kind: str) -> dict:
    """How far int8 outputs are from fp32's on calibration batches: least cosine (vectors) or largest logit gap."""
    import onnxruntime as ort

    reference = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    names = {i.name for i in reference.get_inputs()}
    served = OpenVinoSession(int8, threads=None)
    a = np.concatenate([reference.run(None, {k: v for k, v in b.items() if k in names})[0] for b in batches])
    b = np.concatenate([served.run(None, {k: v for k, v in b.items() if k in names})[0] for b in batches])
    if kind == "bi-encoder":
        cosines = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return {"min_cosine": round(float(cosines.min()), 5), "texts": len(a)}
    return {"max_logit_difference": round(float(np.abs(a - b).max()), 5), "pairs": len(a)}
