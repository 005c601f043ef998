"""The cross-encoder reranker: load, truncate, batch by length, score, within a budget.

With torch, loading uses the real ``sentence_transformers.CrossEncoder(name_or_path)`` and
its transformer does the work. With ONNX Runtime only the folder's ``tokenizer.json``,
``config.json`` and ONNX file are read: torch is never imported. Both backends cut and
pad pairs with the same Rust tokenizer. What this module adds for serving:

* explicit truncation: every pair is tokenised with ``truncation="longest_first"`` to
  ``max_length`` = min(setting, tokenizer limit, position embeddings), and each batch is
  checked before it moves to the device, so an over-long pair can never reach CUDA;
* pairs sorted by token length, then cut into forward passes of at most ``rerank_batch_size``
  rows and ``rerank_max_batch_tokens`` padded tokens (little padding, bounded memory);
* fp16/bf16 on CUDA, torch threads set on CPU, or an ONNX Runtime session (fp32 or int8,
  made by ``rrs rerank export-onnx``) in place of torch;
* one :class:`~service.batching.MicroBatcher` per process, so concurrent requests share
  batches (bounded in pairs and in tokens: a request of long passages takes turns with the
  short ones), with a time budget per request and a depth that shrinks as searches crowd in
  (:func:`adaptive_depth`; the throughput it plans with is measured on every forward pass).
  Requests tokenise their own pairs (in their threads); the batcher counts those tokens.

Example::

    reranker = load_reranker("/models/my-cross-encoder", settings)
    scores = reranker.score_pairs([("what is bm25", "BM25 is a ranking function ...")])
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rrsearch.core.encoders import auto_dtype, pick_device, resolve_backend
from rrsearch.core.errors import InputTooLong, QueueFull, RerankerUnavailable, RerankOverloaded, RerankTimeout
from rrsearch.core.onnx_cache import content_fingerprint, cross_encoder_export
from rrsearch.core.onnx_models import engine_of, open_session, precision_of
from rrsearch.core.openvino_models import OPENVINO_FILE
from rrsearch.core.settings import Settings
from rrsearch.core.tokenization import (
    length_sorted_batches,
    load_tokenizer,
    pad_batch,
    pad_token_id,
    private_copy,
    truncating,
)
from rrsearch.service.batching import MicroBatcher, Pair
from rrsearch.service.blend import BlendConfig, calibration_index, load_calibration


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


CPU_MAX_LENGTH = 256  # bench/rerank_cap_bench.py: within 0.005 nDCG@10 of 512 on SciFact train queries
CUDA_MAX_LENGTH = 512


def default_max_length(device: str) -> int:
    """The pair cap when ``RRS_RERANK_MAX_LENGTH`` is unset: chosen by quality on a CPU, where every
    token costs time within the budget; the common 512 on CUDA."""
    return CUDA_MAX_LENGTH if device.startswith("cuda") else CPU_MAX_LENGTH


def adaptive_depth(
    pair_tokens: Sequence[int],
    *,
    floor: int,
    queued_tokens: int,
    tokens_per_s: float | None,
    budget_s: float,
    concurrent: int = 1,
    headroom: float = 0.8,
) -> int:
    """How many of the candidates (their pairs' token counts, best first) to rerank so that
    every search in flight gets its share of the budget.

    Under load, quality degrades gradually instead of all at once: the tokens one budget can
    score (``headroom`` of ``budget_s * tokens_per_s``; the rest absorbs noise and the other
    stages sharing the cores) are split among the ``concurrent`` searches that want a rerank,
    this one included, and this one also has to fit, within the same headroom, behind the
    ``queued_tokens`` ahead of it.
    The result is all the candidates when that fits, the top ones that fit down to ``floor``,
    and 0 -- skip the stage -- only when even ``floor`` does not fit while others wait. An
    idle model always tries ``floor``: the pass measures the throughput again, so one slow
    estimate cannot shut the stage for good. No estimate yet means all the candidates.

    >>> adaptive_depth([100] * 100, floor=10, queued_tokens=0, tokens_per_s=10_000, budget_s=3)
    100
    >>> adaptive_depth([100] * 100, floor=10, queued_tokens=15_000, tokens_per_s=10_000, budget_s=3, concurrent=4)
    60
    >>> adaptive_depth([100] * 100, floor=10, queued_tokens=0, tokens_per_s=10_000, budget_s=3, concurrent=32)
    0
    """
    wanted = len(pair_tokens)
    if not tokens_per_s:
        return wanted
    usable = headroom * budget_s * tokens_per_s
    allowance = min(usable / max(concurrent, 1), usable - queued_tokens)
    depth, used = 0, 0
    for tokens in pair_tokens:
        used += tokens
        if used > allowance:
            break
        depth += 1
    if depth >= min(floor, wanted):
        return depth
    idle = queued_tokens <= 0 and concurrent <= 1
    return min(floor, wanted) if idle else 0


ACTIVATIONS = {
    "Sigmoid": lambda logits: 1.0 / (1.0 + np.exp(-logits)),
    "Identity": lambda logits: logits,
}


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a cross-encoder; one instance per process.

    ``forward`` maps padded numpy features to one logit per row (a torch model or an ONNX
    session behind it); ``model`` is the torch ``CrossEncoder`` when there is one."""

    def __init__(
        self,
        forward: Callable[[dict], np.ndarray],
        tokenizer,
        *,
        name: str,
        settings: Settings,
        device: str,
        config,
        activation: str,
        model=None,
        tokenizer_limit: int | None = None,
        backend: str = "torch",
    ):
        self.model = model
        self.name = name
        self.device = device
        self.max_length = max_pair_length(
            settings.rerank_max_length or default_max_length(device), tokenizer_limit, config
        )
        self._whole = private_copy(tokenizer)
        self._truncating = truncating(tokenizer, self.max_length)
        self._pad_id = pad_token_id(self._whole)
        self.batch_size = settings.rerank_batch_size or (32 if device.startswith("cuda") else 8)
        self.max_batch_tokens = settings.rerank_max_batch_tokens
        self.backend = backend
        self.calibration: BlendConfig | None = None  # from the model folder's rrs_rerank.json, if it has one
        self.calibration_index: str | None = None  # the alias whose judged queries chose it
        self.identity: str | None = None  # name@content fingerprint of a local folder (service/blend_policy.py)
        self.folder: str | None = None  # the local model folder it was loaded from (its training.json)
        self.dtype = "fp32"
        self._forward = forward
        if activation not in ACTIVATIONS:
            raise RerankerUnavailable(f"{name!r} uses activation {activation!r}; supported: {sorted(ACTIVATIONS)}")
        self._activation = ACTIVATIONS[activation]
        self.min_depth = settings.rerank_min_candidates
        wait_ms = settings.rerank_max_wait_ms
        if wait_ms is None:
            wait_ms = 2.0 if device.startswith("cuda") else 0.0
        self.batcher = MicroBatcher(
            self.logits_encoded,  # tokenised pairs in, raw logits out; each request applies the activation it wants
            max_wait_s=wait_ms / 1000.0,
            max_batch_pairs=settings.rerank_max_batch_pairs,
            max_batch_tokens=settings.rerank_max_batch_tokens,
            max_queue_pairs=settings.rerank_max_queue_pairs,
        )

    # --- scoring (synchronous; the batcher's worker calls this) -----------------------
    def tokenize(self, pairs: Sequence[Pair]) -> list:
        """One encoding per pair, truncated to ``max_length`` (longest first; no padding yet)."""
        return self._truncating.encode_batch([(q, p) for q, p in pairs])

    def score_pairs(self, pairs: Sequence[Pair], keep_going: Callable[[], bool] = lambda: True) -> list[float]:
        """Scores for ``pairs`` in input order (higher = more relevant), as ``CrossEncoder.predict`` gives them."""
        return self.activate(self.logits_pairs(pairs, keep_going))

    def activate(self, logits: Sequence[float]) -> list[float]:
        """The model's own activation (sigmoid for most one-label rerankers) over raw logits."""
        if not len(logits):
            return []
        return self._activation(np.asarray(logits, dtype=np.float32)).reshape(-1).tolist()

    def logits_pairs(self, pairs: Sequence[Pair], keep_going: Callable[[], bool] = lambda: True) -> list[float]:
        """Raw logits for ``pairs`` in input order (``raw_scores`` of the /rerank API)."""
        return self.logits_encoded(self.tokenize(pairs), keep_going) if pairs else []

    def logits_encoded(self, encoded: Sequence, keep_going: Callable[[], bool] = lambda: True) -> list[float]:
        """Raw logits for pairs already tokenised by :meth:`tokenize` (what the batcher's worker runs)."""
        if not encoded:
            return []
        scores = np.empty(len(encoded), dtype=np.float32)
        for batch in length_sorted_batches([len(e.ids) for e in encoded], self.batch_size, self.max_batch_tokens):
            if not keep_going():
                raise RerankTimeout("every request in this round gave up")
            features = pad_batch([encoded[i] for i in batch], self._pad_id)
            width = features["input_ids"].shape[1]
            if width > self.max_length:  # never hand the device a sequence it cannot take
                raise ValueError(f"batch of width {width} exceeds max_length {self.max_length}")
            started = time.perf_counter()
            scores[batch] = self._forward(features)
            # The depth planner's rate, from every pass: known even when no whole batch finishes in time.
            self.batcher.observe(sum(len(encoded[i].ids) for i in batch), time.perf_counter() - started)
        return scores.tolist()

    def warm_up(self, pairs: int = 4) -> None:
        """Score a few pairs of the longest kind before serving: the first forward pass pays
        one-off costs, and the second gives the depth planner a throughput (a cautious one: the
        longest pairs) before the first search, which would otherwise be planned blind."""
        encoded = self.tokenize([("warm up", " ".join(["passage"] * self.max_length))] * pairs)
        self._forward(pad_batch(encoded, self._pad_id))
        self.logits_encoded(encoded)

    # --- serving (through the batcher, with a budget) --------------------------------
    @property
    def queued_pairs(self) -> int:
        return self.batcher.pending_pairs

    def rerank_top(self, query: str, passages: Sequence[str], *, budget_s: float, concurrent: int = 1) -> list[float]:
        """Scores of the first passages (best first) that fit this search's share of the
        budget while ``concurrent`` searches share the model (see :func:`adaptive_depth`):
        all of them when they fit, fewer under load. Raises :class:`RerankOverloaded` when
        not even ``rerank_min_candidates`` fit, and :class:`RerankTimeout` past the budget."""
        deadline = time.monotonic() + budget_s
        encoded = self.tokenize([(query, p) for p in passages])
        tokens = [len(e.ids) for e in encoded]
        depth = adaptive_depth(
            tokens,
            floor=self.min_depth,
            queued_tokens=self.batcher.live_tokens,
            tokens_per_s=self.batcher.tokens_per_s,
            budget_s=budget_s,
            concurrent=concurrent,
        )
        if depth == 0:
            raise RerankOverloaded(
                f"{concurrent} searches share the reranker; not even {self.min_depth} candidates fit"
            )
        return self.activate(self._logits(encoded[:depth], tokens[:depth], deadline, budget_s))

    def rerank(self, query: str, passages: Sequence[str], *, budget_s: float, raw: bool = False) -> list[float]:
        """Scores of ``passages`` for ``query`` within ``budget_s`` seconds (raw logits with ``raw``).

        Raises :class:`RerankTimeout` past the budget and :class:`RerankOverloaded` when the
        queue cannot take the pairs; the caller then keeps the fused order.
        """
        deadline = time.monotonic() + budget_s
        encoded = self.tokenize([(query, p) for p in passages])  # in the caller's thread; the batcher counts tokens
        logits = self._logits(encoded, [len(e.ids) for e in encoded], deadline, budget_s)
        return list(logits) if raw else self.activate(logits)

    def _logits(self, encoded: Sequence, tokens: Sequence[int], deadline: float, budget_s: float) -> list[float]:
        try:
            future = self.batcher.submit(encoded, deadline, tokens=tokens)
        except QueueFull as exc:
            raise RerankOverloaded(str(exc)) from exc
        try:
            return future.result(timeout=max(deadline - time.monotonic(), 0.0))
        except FutureTimeout as exc:
            future.cancel()
            raise RerankTimeout(f"rerank took longer than {budget_s * 1000:.0f} ms") from exc

    def rank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        budget_s: float,
        raw: bool = False,
        truncate: bool = True,
        direction: str = "right",
        max_text_tokens: int | None = None,
    ) -> list[float]:
        """Scores of ``texts`` in input order, with the options of the /rerank API.

        ``truncate=False`` refuses a pair longer than the model takes (:class:`InputTooLong`);
        ``direction="left"`` keeps a long text's end instead of its start; ``max_text_tokens``
        first cuts each text to that many tokens (Cohere's ``max_tokens_per_doc``)."""
        if max_text_tokens is not None and max_text_tokens < self.max_length:
            texts = [self.keep_head(text, max_text_tokens) for text in texts]
        if not truncate:
            for index, length in enumerate(self.pair_lengths(query, texts)):
                if length > self.max_length:
                    raise InputTooLong(
                        f"texts[{index}] with the query is {length} tokens; the model takes "
                        f"{self.max_length} (send truncate: true to cut it)",
                        field="texts",
                    )
        elif direction == "left":
            texts = [self.keep_tail(query, text) for text in texts]
        return self.rerank(query, texts, budget_s=budget_s, raw=raw)

    def pair_lengths(self, query: str, texts: Sequence[str]) -> list[int]:
        """Tokens of each (query, text) pair, special tokens included, before truncation."""
        return [len(e.ids) for e in self._whole.encode_batch([(query, text) for text in texts])]

    def keep_head(self, text: str, tokens: int) -> str:
        """``text`` cut after its first ``tokens`` tokens (special tokens not counted)."""
        offsets = self._whole.encode(text, add_special_tokens=False).offsets
        if len(offsets) <= tokens:
            return text
        return text[: offsets[tokens - 1][1]] if tokens > 0 else ""

    def keep_tail(self, query: str, text: str) -> str:
        """``text`` cut from the left so the pair fits ``max_length`` (left truncation)."""
        room = self.max_length - len(self._whole.encode(query).ids) - 1
        offsets = self._whole.encode(text, add_special_tokens=False).offsets
        if room <= 0 or len(offsets) <= room:
            return text
        return text[offsets[-room][0] :]

    def close(self) -> None:
        self.batcher.close()


def _torch_dtype(wanted: str, device: str, cpu_auto: str | None = None):
    """The torch dtype and its label: ``wanted``, or for 'auto' fp16 on CUDA, ``cpu_auto`` (the
    ``auto`` backend's CPU precision) or fp32 on a CPU."""
    import torch

    if wanted == "auto":
        wanted = "fp16" if device.startswith("cuda") else cpu_auto or "fp32"
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[wanted], wanted


def load_reranker(name_or_path: str, settings: Settings) -> CrossEncoderReranker:
    """Load the cross-encoder the settings ask for, ready to serve.

    Raises :class:`RerankerUnavailable` with the reason when it cannot be loaded (offline
    and not cached, a wrong path, a model that is not a one-label cross-encoder, a
    missing ONNX file).
    """
    local = Path(name_or_path).exists()
    backend = resolve_backend(settings.rerank_backend, settings.device, settings.cpu_engine)
    if backend in ("onnx", "openvino"):
        folder, model_file = name_or_path, settings.rerank_onnx_file
        if settings.rerank_backend == "auto" or backend == "openvino":  # the int8 export, made on first use
            may_download = local or hub_reachable()
            folder = str(_export_for_cpu(name_or_path, settings, may_download=may_download, engine=backend))
            model_file = OPENVINO_FILE if backend == "openvino" else model_file
        reranker = _load_onnx(folder, settings, model_file)
        reranker.name = _label(name_or_path)
    else:
        reranker = _load_torch(name_or_path, settings, local)
    if local:
        reranker.folder = name_or_path
        reranker.calibration = load_calibration(name_or_path)
        reranker.calibration_index = calibration_index(name_or_path)
        # corpus calibrations are keyed by content: a retrained model in the same folder has none
        reranker.identity = f"{_label(name_or_path)}@{content_fingerprint(Path(name_or_path))[:16]}"
    return reranker


def _export_for_cpu(name_or_path: str, settings: Settings, *, may_download: bool, engine: str) -> Path:
    try:
        return cross_encoder_export(name_or_path, settings, may_download=may_download, engine=engine)
    except RerankerUnavailable:
        raise
    except Exception as exc:  # a failed export or check: the reason is the message
        raise RerankerUnavailable(
            f"cannot export cross-encoder {name_or_path!r} to {engine} for this CPU: {exc} "
            f"(set RRS_RERANK_BACKEND=torch to serve it with torch, or RRS_CPU_ENGINE=onnx-int8)"
        ) from exc


def _load_torch(name_or_path: str, settings: Settings, local: bool) -> CrossEncoderReranker:
    import torch
    from sentence_transformers import CrossEncoder

    device = pick_device(settings.device)
    if device == "cpu":
        torch.set_num_threads(settings.torch_threads or os.cpu_count() or 1)
    # Offline, the hub client retries for about a minute before giving up: probe once, and
    # then only a cached copy can load (at once, or not at all).
    cached_only = not local and not hub_reachable()
    try:
        model = CrossEncoder(name_or_path, device=device, local_files_only=cached_only)
    except Exception as exc:  # any loading failure means the same to the operator
        hint = (
            ""
            if local
            else (
                " (the model hub is not reachable and there is no cached copy; set RRS_CROSS_ENCODER to a local "
                "model folder, e.g. one made by `rrs train-reranker`)"
                if cached_only
                else " (not a local folder; a hub name needs network access or a cached copy)"
            )
        )
        raise RerankerUnavailable(f"cannot load cross-encoder {name_or_path!r}{hint}: {exc}") from exc
    _check_one_label(name_or_path, model.num_labels)
    model.eval()
    dtype, label = _torch_dtype(
        settings.rerank_dtype, device, auto_dtype(settings.rerank_backend, settings.device, settings.cpu_engine)
    )
    if dtype != torch.float32:
        model.model.to(dtype)

    inputs = set(model.tokenizer.model_input_names)  # e.g. no token_type_ids for DistilBERT

    def forward(features: dict) -> np.ndarray:
        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v).to(device) for k, v in features.items() if k in inputs}
            return model.model(**tensors).logits.float().reshape(-1).cpu().numpy()

    reranker = CrossEncoderReranker(
        forward,
        model.tokenizer,
        name=_label(name_or_path),
        settings=settings,
        device=device,
        config=model.model.config,
        activation=type(model.activation_fn).__name__,
        model=model,
        tokenizer_limit=model.tokenizer.model_max_length,
    )
    reranker.dtype = label
    return reranker


def _load_onnx(model_dir: str, settings: Settings, model_file: str) -> CrossEncoderReranker:
    """The tokenizer file and the graph only (ONNX, or an OpenVINO IR): no torch model is built
    (nor torch imported)."""
    folder = Path(model_dir)
    path = folder / model_file
    if not path.exists():
        raise RerankerUnavailable(f"model file {path} not found; create it with `rrs rerank export-onnx {model_dir}`")
    config = _read_json(folder / "config.json")
    _check_one_label(model_dir, len(config.get("id2label") or {}) or config.get("num_labels", 1))
    session = open_session(path, settings.torch_threads)
    inputs = {i.name for i in session.get_inputs()}

    def forward(features: dict) -> np.ndarray:
        feed = {k: v for k, v in features.items() if k in inputs}
        return np.asarray(session.run(None, feed)[0], dtype=np.float32).reshape(-1)

    try:
        tokenizer = load_tokenizer(folder)
    except FileNotFoundError as exc:
        raise RerankerUnavailable(str(exc)) from exc
    reranker = CrossEncoderReranker(
        forward,
        tokenizer,
        name=_label(model_dir),
        settings=settings,
        device="cpu",
        config=SimpleNamespace(**config),
        activation=onnx_activation(folder),
        backend=engine_of(model_file),
        tokenizer_limit=_read_json(folder / "tokenizer_config.json").get("model_max_length"),
    )
    reranker.dtype = precision_of(model_file)
    return reranker


def onnx_activation(folder: Path) -> str:
    """The activation sentence-transformers recorded for the model ('Sigmoid' when it recorded none,
    as ``CrossEncoder`` does for one-label models)."""
    recorded = (
        _read_json(folder / "config_sentence_transformers.json").get("activation_fn")
        or _read_json(folder / "config.json").get("sentence_transformers", {}).get("activation_fn")
        or _read_json(folder / "config.json").get("sbert_ce_default_activation_function")
        or "Sigmoid"
    )
    return recorded.rsplit(".", 1)[-1]


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _check_one_label(name: str, labels: int) -> None:
    if labels != 1:
        raise RerankerUnavailable(f"{name!r} has {labels} output labels; a reranker needs exactly 1")


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
