"""The cross-encoder reranker: load, truncate, batch by length, score, within a budget.

Loading uses the real ``sentence_transformers.CrossEncoder(name_or_path)``; its tokenizer,
activation and transformer do the work. What this module adds for serving:

* explicit truncation: every pair is tokenised with ``truncation="longest_first"`` to
  ``max_length`` = min(setting, tokenizer limit, position embeddings), and each batch is
  checked before it moves to the device, so an over-long pair can never reach CUDA;
* pairs sorted by token length, then cut into batches (little padding);
* fp16/bf16 on CUDA, torch threads set on CPU, or an ONNX Runtime session (fp32 or int8,
  made by ``rrs rerank export-onnx``) in place of torch;
* one :class:`~service.batching.MicroBatcher` per process, so concurrent requests share
  batches, with a time budget per request and an adaptive depth when the queue is deep.

Example::

    reranker = load_reranker("/models/my-cross-encoder", settings)
    scores = reranker.score_pairs([("what is bm25", "BM25 is a ranking function ...")])
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import numpy as np

from core.errors import InputTooLong, QueueFull, RerankerUnavailable, RerankOverloaded, RerankTimeout
from core.settings import Settings
from service.batching import MicroBatcher, Pair
from service.blend import load_calibration


def max_pair_length(requested: int, tokenizer_limit: int | None, config) -> int:
    """The longest pair (in tokens) the model can take: the smallest of the limits."""
    limits = [requested]
    if tokenizer_limit and tokenizer_limit < 100_000:  # tokenizers without a limit report ~1e30
        limits.append(int(tokenizer_limit))
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        # RoBERTa-style models offset positions by padding_idx + 1.
        offset = (config.pad_token_id or 0) + 1 if "roberta" in getattr(config, "model_type", "") else 0
        limits.append(int(positions) - offset)
    return min(limits)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (pure)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def adaptive_depth(wanted: int, *, floor: int, queued_pairs: int, pairs_per_s: float | None, budget_s: float) -> int:
    """How many candidates to rerank so the work ahead plus ours fits the budget.

    Returns ``wanted`` when the queue is empty or throughput is unknown, a smaller number
    (not below ``floor``) when the queue is deep, and 0 when even ``floor`` cannot fit.
    """
    if queued_pairs <= 0 or not pairs_per_s:
        return wanted
    room = int(budget_s * pairs_per_s) - queued_pairs
    if room >= wanted:
        return wanted
    if room >= min(floor, wanted):
        return room
    return 0


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a CrossEncoder; one instance per process."""

    def __init__(self, model, *, name: str, settings: Settings, device: str, onnx_session=None):
        self.model = model
        self.name = name
        self.device = device
        self.tokenizer = model.tokenizer
        self.max_length = max_pair_length(
            settings.rerank_max_length, self.tokenizer.model_max_length, model.model.config
        )
        self.batch_size = settings.rerank_batch_size
        self.backend = "onnx" if onnx_session is not None else "torch"
        self.calibration = None  # BlendConfig from the model folder's rrs_rerank.json, if it has one
        self.dtype = "fp32"
        self._onnx = onnx_session
        self._onnx_inputs = {i.name for i in onnx_session.get_inputs()} if onnx_session is not None else set()
        self._activation = model.activation_fn
        self.min_depth = settings.rerank_min_candidates
        wait_ms = settings.rerank_max_wait_ms
        if wait_ms is None:
            wait_ms = 2.0 if device.startswith("cuda") else 0.0
        self.batcher = MicroBatcher(
            self.logits_pairs,  # raw; each request applies the activation it wants
            max_wait_s=wait_ms / 1000.0,
            max_batch_pairs=settings.rerank_max_batch_pairs,
            max_queue_pairs=settings.rerank_max_queue_pairs,
        )

    # --- scoring (synchronous; the batcher's worker calls this) -----------------------
    def tokenize(self, pairs: Sequence[Pair]) -> dict[str, list[list[int]]]:
        """Token ids per pair, truncated to ``max_length`` (no padding yet)."""
        queries = [q for q, _ in pairs]
        passages = [p for _, p in pairs]
        return dict(
            self.tokenizer(queries, passages, truncation="longest_first", max_length=self.max_length)
        )

    def score_pairs(self, pairs: Sequence[Pair], keep_going: Callable[[], bool] = lambda: True) -> list[float]:
        """Scores for ``pairs`` in input order (higher = more relevant), as ``CrossEncoder.predict`` gives them."""
        return self.activate(self.logits_pairs(pairs, keep_going))

    def activate(self, logits: Sequence[float]) -> list[float]:
        """The model's own activation (sigmoid for most one-label rerankers) over raw logits."""
        import torch

        if not len(logits):
            return []
        return self._activation(torch.tensor(list(logits), dtype=torch.float32)).reshape(-1).tolist()

    def logits_pairs(self, pairs: Sequence[Pair], keep_going: Callable[[], bool] = lambda: True) -> list[float]:
        """Raw logits for ``pairs`` in input order (``raw_scores`` of the /rerank API)."""
        if not pairs:
            return []
        encoded = self.tokenize(pairs)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        scores = np.empty(len(pairs), dtype=np.float32)
        for batch in length_sorted_batches(lengths, self.batch_size):
            if not keep_going():
                raise RerankTimeout("every request in this round gave up")
            features = self.tokenizer.pad(
                [{key: values[i] for key, values in encoded.items()} for i in batch],
                return_tensors="np" if self._onnx is not None else "pt",
            )
            width = features["input_ids"].shape[1]
            if width > self.max_length:  # never hand the device a sequence it cannot take
                raise ValueError(f"batch of width {width} exceeds max_length {self.max_length}")
            scores[batch] = self._forward(features)
        return scores.tolist()

    def _forward(self, features) -> np.ndarray:
        import torch

        if self._onnx is not None:
            feed = {k: np.asarray(v, dtype=np.int64) for k, v in features.items() if k in self._onnx_inputs}
            return np.asarray(self._onnx.run(None, feed)[0], dtype=np.float32).reshape(-1)
        with torch.inference_mode():
            features = {k: v.to(self.device) for k, v in features.items()}
            return self.model.model(**features).logits.float().reshape(-1).cpu().numpy()

    # --- serving (through the batcher, with a budget) --------------------------------
    @property
    def queued_pairs(self) -> int:
        return self.batcher.pending_pairs

    def plan_depth(self, wanted: int, budget_s: float) -> int:
        """Candidates to rerank now, given the queue ahead (see :func:`adaptive_depth`)."""
        return adaptive_depth(
            wanted,
            floor=self.min_depth,
            queued_pairs=self.batcher.pending_pairs,
            pairs_per_s=self.batcher.pairs_per_s,
            budget_s=budget_s,
        )

    def rerank(self, query: str, passages: Sequence[str], *, budget_s: float, raw: bool = False) -> list[float]:
        """Scores of ``passages`` for ``query`` within ``budget_s`` seconds (raw logits with ``raw``).

        Raises :class:`RerankTimeout` past the budget and :class:`RerankOverloaded` when the
        queue cannot take the pairs; the caller then keeps the fused order.
        """
        deadline = time.monotonic() + budget_s
        try:
            future = self.batcher.submit([(query, p) for p in passages], deadline)
        except QueueFull as exc:
            raise RerankOverloaded(str(exc)) from exc
        try:
            logits = future.result(timeout=max(deadline - time.monotonic(), 0.0))
        except FutureTimeout as exc:
            future.cancel()
            raise RerankTimeout(f"rerank took longer than {budget_s * 1000:.0f} ms") from exc
        return list(logits) if raw else self.activate(logits)

    def rank(self, query: str, texts: Sequence[str], *, budget_s: float, raw: bool = False, truncate: bool = True,
             direction: str = "right") -> list[float]:
        """Scores of ``texts`` in input order, with the options of the /rerank API.

        ``truncate=False`` refuses a pair longer than the model takes (:class:`InputTooLong`);
        ``direction="left"`` keeps a long text's end instead of its start."""
        if not truncate:
            for index, length in enumerate(self.pair_lengths(query, texts)):
                if length > self.max_length:
                    raise InputTooLong(f"texts[{index}] with the query is {length} tokens; the model takes "
                                       f"{self.max_length} (send truncate: true to cut it)", field="texts")
        elif direction == "left":
            texts = [self.keep_tail(query, text) for text in texts]
        return self.rerank(query, texts, budget_s=budget_s, raw=raw)

    def pair_lengths(self, query: str, texts: Sequence[str]) -> list[int]:
        """Tokens of each (query, text) pair, special tokens included, before truncation."""
        encoded = self.tokenizer([query] * len(texts), list(texts), truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def keep_tail(self, query: str, text: str) -> str:
        """``text`` cut from the left so the pair fits ``max_length`` (left truncation)."""
        room = self.max_length - len(self.tokenizer(query, add_special_tokens=True)["input_ids"]) - 1
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if room <= 0 or len(offsets) <= room:
            return text
        return text[offsets[-room][0]:]

    def close(self) -> None:
        self.batcher.close()


def _torch_dtype(wanted: str, device: str):
    import torch

    if wanted == "auto":
        wanted = "fp16" if device.startswith("cuda") else "fp32"
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[wanted], wanted


def load_reranker(name_or_path: str, settings: Settings) -> CrossEncoderReranker:
    """Load the cross-encoder the settings ask for, ready to serve.

    Raises :class:`RerankerUnavailable` with the reason when it cannot be loaded (offline
    and not cached, a wrong path, a model that is not a one-label cross-encoder, a
    missing ONNX file).
    """
    import torch
    from sentence_transformers import CrossEncoder

    from core.encoders import pick_device

    device = pick_device(settings.device)
    if settings.rerank_backend == "onnx":
        device = "cpu"
    if device == "cpu":
        torch.set_num_threads(settings.torch_threads or os.cpu_count() or 1)
    local = Path(name_or_path).exists()
    # Offline, the hub client retries for about a minute before giving up: probe once, and
    # then only a cached copy can load (at once, or not at all).
    cached_only = not local and not hub_reachable()
    try:
        model = CrossEncoder(name_or_path, device=device, local_files_only=cached_only)
    except Exception as exc:  # noqa: BLE001 -- any loading failure means the same to the operator
        hint = "" if local else (
            " (the model hub is not reachable and there is no cached copy; set RRS_CROSS_ENCODER to a local "
            "model folder, e.g. one made by `rrs train-reranker`)" if cached_only
            else " (not a local folder; a hub name needs network access or a cached copy)"
        )
        raise RerankerUnavailable(f"cannot load cross-encoder {name_or_path!r}{hint}: {exc}") from exc
    if model.num_labels != 1:
        raise RerankerUnavailable(
            f"{name_or_path!r} has {model.num_labels} output labels; a reranker needs exactly 1"
        )
    model.eval()
    onnx_session = None
    if settings.rerank_backend == "onnx":
        onnx_session = _onnx_session(name_or_path, settings)
    reranker = CrossEncoderReranker(
        model, name=_label(name_or_path), settings=settings, device=device, onnx_session=onnx_session
    )
    if local:
        reranker.calibration = load_calibration(name_or_path)
    if onnx_session is None:
        dtype, label = _torch_dtype(settings.rerank_dtype, device)
        if dtype != torch.float32:
            model.model.to(dtype)
        reranker.dtype = label
    else:
        reranker.dtype = "int8" if "qint8" in settings.rerank_onnx_file else "fp32"
    return reranker


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """One quick look at the model hub (none at all when HF_HUB_OFFLINE says so)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _label(name_or_path: str) -> str:
    path = Path(name_or_path)
    return path.name if path.exists() else name_or_path


def _onnx_session(model_dir: str, settings: Settings):
    path = Path(model_dir) / settings.rerank_onnx_file
    if not path.exists():
        raise RerankerUnavailable(
            f"ONNX file {path} not found; create it with `rrs rerank export-onnx {model_dir}`"
        )
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.torch_threads or os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
