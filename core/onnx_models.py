"""Models served by ONNX Runtime: a tokenizer file and a graph, never a torch model.

A bi-encoder exported by ``rrs encoder export-onnx`` is a folder with ``tokenizer.json``,
``rrs_encoder.json`` (what was exported: source name, pooling, dims, max length, and the
check figures) and ``onnx/model.onnx`` (fp32) / ``onnx/model_qint8.onnx`` (int8). Its
graph ends in the sentence embedding (pooling and normalisation included), so serving it
is: tokenize, sort by length, pad, run.

Example::

    encoder = OnnxBiEncoder("/models/minilm-onnx", "onnx/model_qint8.onnx")
    vectors = encoder.encode(["a passage"], batch_size=64, normalize_embeddings=True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from rrsearch.core.tokenization import length_sorted_batches, load_tokenizer, pad_batch, pad_token_id, truncating

ENCODER_CARD = "rrs_encoder.json"


def read_encoder_card(model_dir: str | Path) -> dict | None:
    """The folder's ``rrs_encoder.json`` (written by the ONNX export), or None."""
    path = Path(model_dir) / ENCODER_CARD
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def precision_of(onnx_file: str) -> str:
    """'int8' for a quantized file (``*qint8*``, ``*int8*``), else 'fp32'."""
    return "int8" if "int8" in Path(onnx_file).name else "fp32"


def engine_of(path: str | Path) -> str:
    """Which runtime serves a model file: 'openvino' for an OpenVINO IR (``.xml``), else 'onnx'."""
    return "openvino" if Path(path).suffix == ".xml" else "onnx"


def open_session(path: str | Path, threads: int | None = None):
    """A CPU session for ``path``: ONNX Runtime with every graph optimisation on, or for an
    OpenVINO IR the OpenVINO runtime behind the same two methods (:mod:`core.openvino_models`)."""
    if engine_of(path) == "openvino":
        from rrsearch.core.openvino_models import OpenVinoSession

        return OpenVinoSession(path, threads)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxBiEncoder:
    """The slice of ``SentenceTransformer``'s interface the project uses, served by ONNX Runtime
    (or by OpenVINO, for an ``.xml`` file: ``backend`` says which)."""

    def __init__(self, model_dir: str | Path, onnx_file: str, *, threads: int | None = None):
        model_dir = Path(model_dir)
        card = read_encoder_card(model_dir)
        if card is None:
            raise FileNotFoundError(
                f"{model_dir / ENCODER_CARD} not found: export the model first with `rrs encoder export-onnx`"
            )
        path = model_dir / onnx_file
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} not found; create it with `rrs encoder export-onnx`")
        self.card = card
        self.backend = engine_of(onnx_file)
        self.precision = precision_of(onnx_file)
        self.max_seq_length = int(card["max_seq_length"])
        self.tokenizer = load_tokenizer(model_dir)
        self._encoder = truncating(self.tokenizer, self.max_seq_length)
        self._pad_id = pad_token_id(self.tokenizer)
        self._session = open_session(path, threads)
        self._inputs = {i.name for i in self._session.get_inputs()}

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.card["dims"])

    def encode(self, texts, *, batch_size: int = 64, normalize_embeddings: bool = True, **_ignored) -> np.ndarray:
        """Embeddings of ``texts`` in input order (float32)."""
        encodings = self._encoder.encode_batch(list(texts))
        vectors = np.empty((len(encodings), self.get_sentence_embedding_dimension()), dtype=np.float32)
        for batch in length_sorted_batches([len(e.ids) for e in encodings], batch_size):
            features = pad_batch([encodings[i] for i in batch], self._pad_id)
            feed = {name: value for name, value in features.items() if name in self._inputs}
            vectors[batch] = self._session.run(None, feed)[0]
        if normalize_embeddings and not self.card.get("normalized"):
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
