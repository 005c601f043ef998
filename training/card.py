"""What the two model cards share: the folder's README.md and ``training.json`` written side by
side (the same facts, for people and for machines), the front matter, the tables, and the Data
section. ``training/reranker_card.py`` and ``training/encoder_card.py`` write the rest.

The renderers are pure (a dict in, markdown out):

    >>> print(table([("epochs", 1), ("seed", None)]))
    | setting | value |
    | --- | --- |
    | epochs | 1 |
    | seed | - |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rrsearch.service.blend import TRAINING_FACTS

CARD_NAME = "README.md"
FACTS_NAME = TRAINING_FACTS
NOTHING_MEASURED = "No held-out queries: nothing was measured (the eval fraction was 0 or too few queries)."


def table(rows: list[tuple[str, object]]) -> str:
    """A two-column settings table; None shows as ``-``."""
    lines = ["| setting | value |", "| --- | --- |"]
    lines += [f"| {name} | {'-' if value is None else value} |" for name, value in rows]
    return "\n".join(lines)


def metrics_table(columns: dict[str, dict], keep: Callable[[str], bool] = lambda name: True) -> str:
    """One row per metric (those ``keep`` accepts), one column per figure set (heading -> figures)."""
    names = [name for name in sorted(set().union(*columns.values())) if keep(name)]
    if not names:
        return NOTHING_MEASURED
    lines = ["| metric | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for name in names:
        cells = [f"{figures[name]:.4f}" if name in figures else "-" for figures in columns.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def front_matter(facts: dict, *, pipeline_tag: str, tags: str) -> str:
    """The hub's metadata block and the title."""
    return f"""---
library_name: sentence-transformers
pipeline_tag: {pipeline_tag}
tags: [{tags}]
base_model: {facts["base_model"]}
---

# {facts["name"]}"""


def data_table(
    facts: dict, *, judged: str = "training queries", heldout: str = "held-out queries", origin: bool = True
) -> str:
    """The Data section: the judgments, how many queries trained and were held out, the rows, the
    judgments dropped (``origin``: also the judgments' format and the alias they were mined from)."""
    data, result = facts["data"], facts["result"]
    rows: list[tuple[str, object]] = [("judgments", data["source"])]
    rows += [("format", data["format"])] if origin else []
    rows += [
        ("queries with a positive", data["queries"]),
        (judged, result["train_queries"]),
        ("title queries from the corpus (training only)", result.get("title_queries", 0)),
        (heldout, result["heldout_queries"]),
        ("training rows", result["train_rows"]),
    ]
    rows += [("index alias (index)", f"{data['alias']} ({data.get('index') or '-'})")] if origin else []
    rows.append(("dropped judgments (ids missing from the index)", data.get("dropped_missing", 0)))
    return table(rows)


def write_card(output_dir: Path, facts: dict, markdown: str) -> Path:
    """Write README.md (replacing sentence-transformers' generic card) and training.json; return the card's path."""
    output_dir = Path(output_dir)
    card = output_dir / CARD_NAME
    card.write_text(markdown, encoding="utf-8")
    (output_dir / FACTS_NAME).write_text(json.dumps(facts, indent=2, default=str), encoding="utf-8")
    return card
