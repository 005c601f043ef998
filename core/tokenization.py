"""Fast (Rust) tokenizers without torch: load, copy, and pad a batch into numpy arrays.

ONNX serving must not build a torch model, so it cannot lean on ``transformers``'
tokenizer objects for padding tensors. Every model this project serves has a
``tokenizer.json`` (the exporters write one), which the ``tokenizers`` library reads on
its own. The same private copies serve the torch path, so both backends cut and pad
text identically.

Example::

    tokenizer = load_tokenizer("/models/minilm")          # truncation and padding off
    encodings = tokenizer.encode_batch(["a passage", "another"])
    features = pad_batch(encodings, pad_id=pad_token_id(tokenizer))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

FEATURE_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def load_tokenizer(model_dir: str | Path):
    """The folder's ``tokenizer.json``, with truncation and padding switched off."""
    from tokenizers import Tokenizer

    path = Path(model_dir) / "tokenizer.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (the ONNX exporters write it beside the model)")
    return _plain(Tokenizer.from_file(str(path)))


def private_copy(tokenizer):
    """A copy of a ``transformers`` fast tokenizer's (or a ``tokenizers``) tokenizer, untruncated and
    unpadded: the original carries settings its owner may change."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    return _plain(Tokenizer.from_str(backend.to_str()))


def _plain(tokenizer):
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def truncating(tokenizer, max_length: int):
    """A copy of ``tokenizer`` that cuts inputs (pairs: longest first) to ``max_length`` tokens."""
    copy = private_copy(tokenizer)
    copy.enable_truncation(max_length, strategy="longest_first")
    return copy


def pad_token_id(tokenizer) -> int:
    """The id padding uses: the tokenizer's own pad token, else 0 (BERT's [PAD])."""
    padding = tokenizer.padding
    if padding and padding.get("pad_id") is not None:
        return int(padding["pad_id"])
    for token in ("[PAD]", "<pad>", "<|endoftext|>"):
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return 0


def pad_batch(encodings: Sequence, pad_id: int) -> dict[str, np.ndarray]:
    """``input_ids``, ``attention_mask`` and ``token_type_ids`` padded on the right to the longest."""
    width = max((len(e.ids) for e in encodings), default=0)
    features = {
        "input_ids": np.full((len(encodings), width), pad_id, dtype=np.int64),
        "attention_mask": np.zeros((len(encodings), width), dtype=np.int64),
        "token_type_ids": np.zeros((len(encodings), width), dtype=np.int64),
    }
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        features["input_ids"][row, :n] = encoding.ids
        features["attention_mask"][row, :n] = encoding.attention_mask
        features["token_type_ids"][row, :n] = encoding.type_ids
    return features


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so little is padded: each
    of at most ``batch_size`` rows and, with ``max_tokens``, that many padded tokens (rows x its
    longest); one row over ``max_tokens`` goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        width = lengths[current[0]] if current else lengths[index]  # longest first: the first row sets the width
        full = len(current) >= batch_size or (max_tokens is not None and (len(current) + 1) * width > max_tokens)
        if current and full:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches
