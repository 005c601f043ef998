"""The bi-encoder on its own, with text-embeddings-inference's options (``POST /embed``).

:class:`Embedder` wraps the bi-encoder a process already serves (``bi_encoder_from``: the
backend, precision and batch size of the settings, as search and ingest load it) and adds
what TEI's ``/embed`` asks of it: a length check (``truncate`` false refuses an input longer
than the model takes), left truncation, ``normalize``, and named prompts.

Prompts are ours, not the model's: ``prompt_name="query"`` prefixes ``RRS_QUERY_PROMPT`` (what
``POST /search`` embeds a query with), ``"passage"`` prefixes ``RRS_PASSAGE_PROMPT`` (what
``rrs ingest`` embeds a passage with); no ``prompt_name`` embeds the text as given, as TEI
does without a default prompt. The passage text itself (``title + "\\n" + chunk``, see
ingest/chunking.py) is the caller's to build. With the default settings both prompts are empty,
so the three give the same vector.

Example::

    embedder = Embedder(bi_encoder_from(settings), settings)
    embedder.embed(["vitamin d"], prompt_name="query")      # == the vector /search uses
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrsearch.core.encoders import PROBE_TEXT, embedding_dims, encode_batch_size, encode_passages, model_label
from rrsearch.core.errors import InputTooLong, LimitError
from rrsearch.core.tokenization import private_copy


class Embedder:
    """Vectors of texts with TEI's ``/embed`` options; one instance per process, thread-safe."""

    def __init__(self, model, settings) -> None:
        self.model = model
        self.name = model_label(settings.bi_encoder)
        self.backend = getattr(model, "backend", "torch")
        self.precision = getattr(model, "precision", "fp32")
        self.dims = embedding_dims(model)
        self.max_length = int(model.max_seq_length)
        self.batch_size = encode_batch_size(settings, model)
        self.prompts = {"query": settings.query_prompt, "passage": settings.passage_prompt}
        self._whole = private_copy(model.tokenizer)  # untruncated: lengths as the caller's text has them
        self._special = len(self._whole.encode("").ids)  # [CLS] [SEP] for BERT

    def warm_up(self) -> None:
        """One encode, so the first request does not pay for lazy initialisation."""
        self.embed([PROBE_TEXT])

    def prompt(self, name: str | None) -> str:
        """The prefix ``prompt_name`` stands for ('' for None); a :class:`LimitError` for another name."""
        if name is None:
            return ""
        if name not in self.prompts:
            raise LimitError(
                "prompt_name",
                f"prompt_name {name!r} is not available; this server has 'query' (RRS_QUERY_PROMPT, "
                f"what /search embeds a query with) and 'passage' (RRS_PASSAGE_PROMPT, what rrs ingest "
                f"embeds a passage with)",
            )
        return self.prompts[name]

    def lengths(self, texts: Sequence[str], prompt: str = "") -> list[int]:
        """Tokens of each text with the prompt and the special tokens, before truncation."""
        return [len(e.ids) for e in self._whole.encode_batch([prompt + text for text in texts])]

    def keep_tail(self, text: str, prompt: str = "") -> str:
        """``text`` cut from the left so that the prompt and what is left fit (left truncation;
        the prompt is kept whole)."""
        room = self.max_length - self._special - len(self._whole.encode(prompt, add_special_tokens=False).ids)
        offsets = self._whole.encode(text, add_special_tokens=False).offsets
        if room <= 0 or len(offsets) <= room:
            return text
        return text[offsets[-room][0] :]

    def embed(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        truncate: bool = False,
        direction: str = "right",
        prompt_name: str | None = None,
    ) -> np.ndarray:
        """One float32 vector per text, in input order.

        ``truncate=False`` refuses a text (with its prompt) longer than the model takes
        (:class:`InputTooLong`); true cuts it: ``direction="right"`` keeps its start (what the
        encoder itself does, and what ingest and search get), ``"left"`` its end.
        ``normalize=False`` returns the model's own output: a model whose pipeline ends in a
        ``Normalize`` module (all-MiniLM-L6-v2 does) gives unit vectors either way."""
        prompt = self.prompt(prompt_name)
        if not truncate:
            for index, length in enumerate(self.lengths(texts, prompt)):
                if length > self.max_length:
                    raise InputTooLong(
                        f"inputs[{index}] is {length} tokens; the model takes {self.max_length} "
                        f"(send truncate: true to cut it)",
                        field="inputs",
                    )
        elif direction == "left":
            texts = [self.keep_tail(text, prompt) for text in texts]
        return encode_passages(self.model, list(texts), prompt=prompt, batch_size=self.batch_size, normalize=normalize)

    def describe(self) -> dict:
        """What ``/info`` says of it."""
        return {
            "model_id": self.name,
            "backend": self.backend,
            "precision": self.precision,
            "dims": self.dims,
            "max_input_length": self.max_length,
            "prompts": dict(self.prompts),
        }
