"""Shared by bench/cpu_profile.py and bench/cpu_engines.py: the machine, the pairs, the FLOPs.

* :func:`machine` -- CPU model, the flags that decide ``auto`` (AMX, AVX-512 VNNI/bf16, AVX2),
  cores, load average, library versions;
* :func:`bm25_top` -- real rerank candidates without Elasticsearch: Okapi BM25 (k1 0.9, b 0.4,
  lower-cased ``\\w+`` tokens, no stemming) over the SciFact corpus, computed in numpy;
* :func:`forward_flops` -- what one forward pass of a BERT-family encoder costs, from its config
  and the padded batch shapes actually run: 2 x (non-embedding weights) per token, plus
  attention's 4 x s^2 x hidden per sequence and layer;
* :func:`nominal_peak` / :func:`gemm_ceiling` -- the floor those FLOPs are compared with: the
  data-sheet peak of this core (where the micro-architecture is known) and the rate a large
  matrix multiplication reaches here, measured in the same run.
"""

from __future__ import annotations

import math
import os
import platform
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

FLAGS_OF_INTEREST = ("amx_tile", "amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx_vnni", "avx2")
MAX_LENGTH = 256  # the CPU rerank cap (service/rerank.py CPU_MAX_LENGTH)


def cpuinfo() -> dict:
    text = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    info: dict = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "vendor_id", "cpu family", "model", "cpu MHz", "flags") and key not in info:
            info[key] = value
    return info


def machine() -> dict:
    """What the figures were measured on (and how busy it was when this was called)."""
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    versions = {}
    for module in ("torch", "onnxruntime", "openvino", "ctranslate2", "nncf", "transformers", "tokenizers"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 -- not installed (or not loadable) here
            pass
    return {
        "cpu": info.get("model name"),
        "vendor": info.get("vendor_id"),
        "family_model": f"{info.get('cpu family')}/{info.get('model')}",
        "mhz": float(info.get("cpu MHz") or 0) or None,
        "cores": os.cpu_count(),
        "flags": {flag: flag in flags for flag in FLAGS_OF_INTEREST},
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": versions,
    }


def nominal_peak(info: dict | None = None) -> dict | None:
    """Data-sheet peak FLOP/s (int8: op/s) of all cores, for the micro-architectures we know.

    AMD Zen 4 (family 25, models 0x10-0x1f, 0x60-0x7f, 0xa0-0xaf): two 256-bit FMA pipes per
    core (AVX-512 runs double-pumped): 32 fp32 FLOP, 64 bf16 FLOP (VDPBF16PS) and 128 int8 op
    (VPDPBUSD) per cycle per core, at the reported (base) clock. None elsewhere: there the
    measured GEMM ceiling is the only floor."""
    info = info or cpuinfo()
    try:
        family, model = int(info.get("cpu family", 0)), int(info.get("model", 0))
        mhz = float(info.get("cpu MHz") or 0)
    except ValueError:
        return None
    zen4 = (
        info.get("vendor_id") == "AuthenticAMD"
        and family == 25
        and (0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF)
    )
    if not zen4 or not mhz:
        return None
    hz = mhz * 1e6 * (os.cpu_count() or 1)
    return {"microarchitecture": "Zen 4", "clock_mhz": mhz, "fp32": 32 * hz, "bf16": 64 * hz, "int8": 128 * hz}


GEMM_SHAPES = (
    (2048, 384, 1536),
    (2048, 1536, 384),
    (2048, 384, 384),
)  # (M, K, N): MiniLM's own matmuls, 8 rows x 256 tokens


def gemm_ceiling(threads: int | None = None, repeats: int = 10) -> dict:
    """FLOP/s (int8: op/s) of the matrix multiplications MiniLM-L6-H384 runs at 8 rows x 256 tokens
    (best shape, best of ``repeats``), measured here: torch fp32 and bf16, and ONNX Runtime's
    dynamically quantized int8 MatMul (the kernel our int8 export runs, activation quantization included)."""
    import torch

    threads = threads or os.cpu_count() or 1
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    out: dict = {"shapes": [list(s) for s in GEMM_SHAPES], "threads": threads}
    try:
        for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            best = 0.0
            for m, k, n in GEMM_SHAPES:
                a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
                a @ b
                best = max(best, 2.0 * m * k * n / min(_timed(lambda a=a, b=b: a @ b) for _ in range(repeats)))
            out[label] = best
    finally:
        torch.set_num_threads(previous)
    try:
        out["int8"] = max(_ort_int8_gemm(m, k, n, threads, repeats) for m, k, n in GEMM_SHAPES)
    except Exception as exc:  # noqa: BLE001 -- reported, not fatal
        out["int8_error"] = repr(exc)
    return out


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _ort_int8_gemm(m: int, k: int, n: int, threads: int, repeats: int) -> float:
    import logging
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's generic advice
    with tempfile.TemporaryDirectory() as folder:
        fp32, int8 = Path(folder) / "g.onnx", Path(folder) / "g8.onnx"
        onnx.save(model, fp32)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    session.run(None, {"x": x})
    return 2.0 * m * k * n / min(_timed(lambda: session.run(None, {"x": x})) for _ in range(repeats))


# --- the model's cost -----------------------------------------------------------------------
def weights_per_token(config) -> int:
    """Multiply-accumulates per token of one pass through the encoder's layers (its non-embedding
    weight matrices: Q, K, V, output, two feed-forward)."""
    hidden, inter, layers = int(config.hidden_size), int(config.intermediate_size), int(config.num_hidden_layers)
    return layers * (4 * hidden * hidden + 2 * hidden * inter)


def forward_flops(config, shapes) -> float:
    """FLOPs of the forward passes whose padded ``shapes`` ([(rows, width), ...]) were run."""
    hidden, layers = int(config.hidden_size), int(config.num_hidden_layers)
    dense = 2 * weights_per_token(config)
    return float(sum(rows * width * dense + rows * layers * 4 * width * width * hidden for rows, width in shapes))


def config_of(folder) -> object:
    import json
    from types import SimpleNamespace

    return SimpleNamespace(**json.loads((Path(folder) / "config.json").read_text()))


# --- real candidates -------------------------------------------------------------------------
_WORD = re.compile(r"\w+")


class BM25:
    """Okapi BM25 over a list of texts (k1 0.9, b 0.4: Anserini's defaults), numpy only."""

    def __init__(self, texts: list[str], k1: float = 0.9, b: float = 0.4):
        self.k1, self.b = k1, b
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        lengths = np.zeros(len(texts), dtype=np.float32)
        rows: dict[str, tuple[list[int], list[int]]] = {}
        for doc, text in enumerate(texts):
            counts = Counter(_WORD.findall(text.lower()))
            lengths[doc] = sum(counts.values())
            for term, tf in counts.items():
                entry = rows.setdefault(term, ([], []))
                entry[0].append(doc)
                entry[1].append(tf)
        self.norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()), 1.0))
        self.n = len(texts)
        for term, (docs, tfs) in rows.items():
            self.postings[term] = (np.asarray(docs), np.asarray(tfs, dtype=np.float32))

    def top(self, query: str, k: int = 100) -> list[int]:
        scores = np.zeros(self.n, dtype=np.float32)
        for term in set(_WORD.findall(query.lower())):
            if term not in self.postings:
                continue
            docs, tfs = self.postings[term]
            idf = math.log(1 + (self.n - len(docs) + 0.5) / (len(docs) + 0.5))
            scores[docs] += idf * tfs * (self.k1 + 1) / (tfs + self.norm[docs])
        order = np.argsort(-scores, kind="stable")[:k]
        return [int(i) for i in order]
