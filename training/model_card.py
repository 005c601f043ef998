"""The model folder's README.md: what a trained reranker is, so a folder found later
explains itself (base, data, settings, held-out metrics, date, how to use it).

``render_model_card`` is pure (a dict in, markdown out); ``write_model_card`` also
writes ``training.json`` beside it with the same facts for machines.
"""

from __future__ import annotations

import json
from pathlib import Path

from rrsearch.service.blend import TRAINING_FACTS

CARD_NAME = "README.md"
FACTS_NAME = TRAINING_FACTS


def _table(rows: list[tuple[str, object]]) -> str:
    lines = ["| setting | value |", "| --- | --- |"]
    lines += [f"| {name} | {'-' if value is None else value} |" for name, value in rows]
    return "\n".join(lines)


def _metrics_table(first_stage: dict, before: dict, after: dict) -> str:
    names = sorted({*first_stage, *before, *after})
    if not names:
        return "No held-out queries: nothing was measured (the eval fraction was 0 or too few queries)."
    lines = [
        "| metric | first stage (hybrid order) | base model reranking | trained model reranking |",
        "| --- | --- | --- | --- |",
    ]
    for name in names:
        cells = [f"{table[name]:.4f}" if name in table else "-" for table in (first_stage, before, after)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_model_card(facts: dict) -> str:
    """Markdown for ``facts``: keys ``name``, ``date``, ``base_model``, ``data``,
    ``mining``, ``result`` (a :class:`~training.trainer.TrainResult` as a dict)."""
    result = facts["result"]
    config = result["config"]
    data = facts["data"]
    mining = facts["mining"]
    return f"""---
library_name: sentence-transformers
pipeline_tag: text-ranking
tags: [cross-encoder, reranker, rrsearch]
base_model: {facts["base_model"]}
---

# {facts["name"]}

A cross-encoder reranker fine-tuned by `rrs train-reranker` on {facts["date"]}, from
`{facts["base_model"]}`, with hard negatives mined from the Elasticsearch alias
`{data["alias"]}` by the project's hybrid retrieval (BM25 + kNN, fused, one hit per document).

Use it by path:

```bash
RRS_CROSS_ENCODER={result["output_dir"]} rrs serve
```

```python
from sentence_transformers import CrossEncoder
model = CrossEncoder("{result["output_dir"]}")
scores = model.predict([("a query", "a passage")])
```

## Data

{
        _table(
            [
                ("judgments", data["source"]),
                ("format", data["format"]),
                ("queries with a positive", data["queries"]),
                ("training queries", result["train_queries"]),
                ("title queries from the corpus (training only)", result.get("title_queries", 0)),
                ("held-out queries", result["heldout_queries"]),
                ("training rows", result["train_rows"]),
                ("index alias (index)", f"{data['alias']} ({data.get('index') or '-'})"),
                ("dropped judgments (ids missing from the index)", data.get("dropped_missing", 0)),
            ]
        )
    }

## Hard negatives

{
        _table(
            [
                ("negatives per query", mining["negatives"]),
                ("hybrid rank range", f"{mining['min_rank']}..{mining['max_rank']}"),
                ("sampling", mining["sampling"]),
                ("mined in total", mining.get("mined_total")),
                ("mining time (s)", mining.get("seconds")),
            ]
        )
    }

## Training

{
        _table(
            [
                ("loss", config["loss"]),
                ("epochs", config["epochs"]),
                ("batch size", config["batch_size"]),
                ("learning rate", config["learning_rate"]),
                ("warmup ratio", config["warmup_ratio"]),
                ("max length (tokens per pair)", config["max_length"]),
                ("seed", config["seed"]),
                ("device (precision)", f"{result['device']} ({result['precision']})"),
                ("steps", result["steps"]),
                ("best checkpoint step", result["best_step"]),
                ("stopped early", result["stopped_early"]),
                ("training time (s)", result["seconds"]),
            ]
        )
    }

## Held-out metrics

The held-out queries ({result["heldout_queries"]}) are a seeded {config["eval_fraction"]:.0%} slice of the
training queries, never trained on. Each one's top {config["eval_depth"]} hybrid documents are
reranked by sentence-transformers' `CrossEncoderRerankingEvaluator`, which adds judged positives the
first stage missed to the list (`always_rerank_positives`): the reranking columns are therefore an
upper bound, not directly comparable with the first-stage column, which counts those positives as
missed. Compare on a test split with `rrs eval --reranker {result["output_dir"]}`.

{_metrics_table(result["first_stage"], result["before"], result["after"])}
"""


def write_model_card(output_dir: Path, facts: dict) -> Path:
    """Write README.md (replacing the generic one) and training.json; return the card's path."""
    output_dir = Path(output_dir)
    card = output_dir / CARD_NAME
    card.write_text(render_model_card(facts), encoding="utf-8")
    (output_dir / FACTS_NAME).write_text(json.dumps(facts, indent=2, default=str), encoding="utf-8")
    return card
