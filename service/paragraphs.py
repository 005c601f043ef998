"""Split one document into paragraphs, the units in-document search ranks (pure functions).

Text and Markdown split at blank lines; HTML at its block elements (paragraphs, list items,
headings, table cells, quotes, preformatted blocks), scripts and styles dropped. A paragraph
longer than ``max_chars`` is cut at sentence ends (or hard, for a run without any), so every
unit fits what a cross-encoder reads.

    >>> split_text("One.\\n\\nTwo words.\\n\\n\\n")
    ['One.', 'Two words.']
"""

from __future__ import annotations

import re

BLOCK_TAGS = ["p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "td", "th", "dd", "dt", "figcaption"]
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_text(text: str, max_chars: int = 2000) -> list[str]:
    """Paragraphs of plain text or Markdown: blank-line separated, trimmed, none empty."""
    parts = [part.strip() for part in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    return [piece for part in parts if part for piece in _bounded(part, max_chars)]


def split_html(html: str, max_chars: int = 2000) -> list[str]:
    """Paragraphs of an HTML page: the text of each innermost block element, in order."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    blocks = [tag for tag in soup.find_all(BLOCK_TAGS) if not tag.find(BLOCK_TAGS)]
    texts = [" ".join(tag.get_text().split()) for tag in blocks]
    if not blocks:  # no block markup: fall back to the text's own blank lines
        return split_text(soup.get_text("\n"), max_chars)
    return [piece for text in texts if text for piece in _bounded(text, max_chars)]


def split_document(content: str, kind: str, max_chars: int = 2000) -> list[str]:
    """``kind`` is ``html``, ``md`` or ``txt``."""
    return split_html(content, max_chars) if kind == "html" else split_text(content, max_chars)


def _bounded(paragraph: str, max_chars: int) -> list[str]:
    if len(paragraph) <= max_chars:
        return [paragraph]
    pieces, current = [], ""
    for sentence in SENTENCE_END.split(paragraph):
        while len(sentence) > max_chars:  # one sentence (or a run without any) longer than the bound
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    return pieces
