"""Split documents into passages by the bi-encoder's own word pieces.

The bi-encoder truncates its input at ``max_seq_length`` word pieces, so a passage longer
than that is silently cut from its embedding. Passages are therefore sized in the model's
tokens: at most ``max_seq_length`` minus the special tokens minus what goes in front of the
passage (prompt and title), with ``overlap`` tokens shared by neighbours so a sentence on
a boundary is whole in at least one passage. Boundaries fall between words where possible,
and passage texts are exact slices of the document text (offsets from the tokenizer).

``plan_windows`` is the pure core (token positions in, windows out); ``Chunker`` applies
it with a private copy of the model's tokenizer.

Example::

    chunker = Chunker.for_model(model, overlap=32)
    [passages] = chunker.split([document])
    passages[0].text, passages[0].embed_text
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_PASSAGE_TOKENS = 32
DEFAULT_MAX_PASSAGE_CHARS = 5_000  # RRS_INGEST_MAX_PASSAGE_CHARS


def plan_windows(word_ids: Sequence[int | None], size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows ``[start, end)`` covering all tokens, each at most ``size`` long.

    Consecutive windows share about ``overlap`` tokens. A window's end (and the next one's
    start) moves back to the start of a word when that keeps the window over half full,
    so a word split into several pieces is not cut in two.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, size), got {overlap} for size {size}")
    n = len(word_ids)
    if n <= size:
        return [(0, n)] if n else []

    def word_start(position: int, floor: int) -> int:
        """``position`` moved back to the first piece of its word, not below ``floor``."""
        while position > floor and word_ids[position] is not None and word_ids[position] == word_ids[position - 1]:
            position -= 1
        return position

    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + size, n)
        if end < n:
            aligned = word_start(end, start + 1)
            if aligned - start > size // 2:
                end = aligned
        windows.append((start, end))
        if end >= n:
            return windows
        next_start = max(end - overlap, start + 1)
        aligned = word_start(next_start, start + 1)
        start = aligned if aligned > start else next_start


def bound_spans(spans: Sequence[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """Character spans ``[first, last)`` with every span longer than ``max_chars`` cut into
    consecutive pieces of at most that many characters.

    A run the tokenizer sees as one token (a 1 MB "word", a long base64 blob) would
    otherwise make one enormous passage, too long to highlight or rerank.

    >>> bound_spans([(0, 10), (8, 30)], 10)
    [(0, 10), (8, 18), (18, 28), (28, 30)]
    """
    bounded = []
    for first, last in spans:
        while last - first > max_chars:
            bounded.append((first, first + max_chars))
            first += max_chars
        bounded.append((first, last))
    return bounded


def passage_budget(*, max_seq_length: int, special_tokens: int, prefix_tokens: int, chunk_tokens: int | None) -> int:
    """Word pieces left for a passage's own text after special tokens and its prefix."""
    room = max_seq_length - special_tokens - prefix_tokens
    if chunk_tokens:
        room = min(room, chunk_tokens)
    return max(room, MIN_PASSAGE_TOKENS)


@dataclass(frozen=True)
class Passage:
    """One passage of a document: its slice of the text and what is embedded for it."""

    chunk: int
    chunk_count: int
    text: str
    embed_text: str
    start_char: int
    end_char: int


class Chunker:
    """Token-aware splitting with a private, untruncated copy of the model's tokenizer."""

    def __init__(
        self,
        tokenizer,
        *,
        max_seq_length: int,
        special_tokens: int = 2,
        chunk_tokens: int | None = None,
        overlap: int = 32,
        prompt: str = "",
        max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
    ):
        from tokenizers import Tokenizer

        # A copy: the model's own tokenizer carries truncation/padding settings we must not change.
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        self._tokenizer = Tokenizer.from_str(backend.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_seq_length = max_seq_length
        self.special_tokens = special_tokens
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        self.prompt = prompt
        self.max_passage_chars = max_passage_chars
        self.max_title_tokens = max(max_seq_length // 4, 1)
        self._prompt_tokens = len(self._encode([prompt])[0].ids) if prompt else 0

    @classmethod
    def for_model(
        cls,
        model,
        *,
        chunk_tokens: int | None = None,
        overlap: int = 32,
        prompt: str = "",
        max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
    ) -> Chunker:
        """A chunker sized for a SentenceTransformer's tokenizer and max_seq_length."""
        tokenizer = model.tokenizer
        special = tokenizer.num_special_tokens_to_add(False) if hasattr(tokenizer, "num_special_tokens_to_add") else 2
        return cls(
            tokenizer,
            max_seq_length=int(model.max_seq_length),
            special_tokens=special,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            prompt=prompt,
            max_passage_chars=max_passage_chars,
        )

    @property
    def default_size(self) -> int:
        """Passage size for a document without a title."""
        return passage_budget(
            max_seq_length=self.max_seq_length,
            special_tokens=self.special_tokens,
            prefix_tokens=self._prompt_tokens,
            chunk_tokens=self.chunk_tokens,
        )

    def _encode(self, texts: list[str]):
        return self._tokenizer.encode_batch(texts, add_special_tokens=False)

    def _title_prefix(self, title: str, encoding) -> tuple[str, int]:
        """The title as embedded (cut to max_title_tokens) and its token count."""
        if not title:
            return "", 0
        if len(encoding.ids) <= self.max_title_tokens:
            return title, len(encoding.ids)
        return title[: encoding.offsets[self.max_title_tokens - 1][1]], self.max_title_tokens

    def split(self, documents: Sequence) -> list[list[Passage]]:
        """Passages of each document (objects with ``title`` and ``text``), in order."""
        texts = self._encode([doc.text for doc in documents])
        titles = self._encode([doc.title or "" for doc in documents])
        result = []
        for doc, text_enc, title_enc in zip(documents, texts, titles):
            title, title_tokens = self._title_prefix(doc.title or "", title_enc)
            size = passage_budget(
                max_seq_length=self.max_seq_length,
                special_tokens=self.special_tokens,
                prefix_tokens=self._prompt_tokens + title_tokens,
                chunk_tokens=self.chunk_tokens,
            )
            overlap = min(self.overlap, size // 4)
            windows = plan_windows(text_enc.word_ids, size, overlap)
            offsets = text_enc.offsets
            prefix = f"{title}\n" if title else ""
            spans = bound_spans(
                [(offsets[start][0], offsets[end - 1][1]) for start, end in windows], self.max_passage_chars
            )
            passages = []
            for index, (first, last) in enumerate(spans):
                piece = doc.text[first:last]
                passages.append(Passage(index, len(spans), piece, prefix + piece, first, last))
            result.append(passages)
        return result
