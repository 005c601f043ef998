"""The trained bi-encoder's README.md: what it was trained on, how, what it scored on the
held-out queries and how its ONNX export agrees with it, so a folder found later explains
itself. ``render_encoder_card`` is pure; ``write_encoder_card`` also writes ``training.json``
with the same facts for machines (``rrs adapt`` reads it to know a step is done)."""

from __future__ import annotations

import json
from pathlib import Path

from rrsearch.training.model_card import CARD_NAME, FACTS_NAME, _table


def _metrics(before: dict, after: dict) -> str:
    names = [name for name in sorted({*before, *after}) if "ndcg" in name or "recall" in name or "mrr" in name]
    if not names:
        return "No held-out queries: nothing was measured (the eval fraction was 0 or too few queries)."
    lines = ["| metric | base encoder | trained encoder |", "| --- | --- | --- |"]
    for name in names:
        cells = [f"{table[name]:.4f}" if name in table else "-" for table in (before, after)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _onnx(checks: dict) -> str:
    if not checks:
        return "Not exported (run `rrs encoder export-onnx` on this folder)."
    lines = ["| file | min cosine to torch | mean cosine | required |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {name} | {f['min_cosine']:.4f} | {f['mean_cosine']:.4f} | {f['required']} |" for name, f in checks.items()
    ]
    return "\n".join(lines)


def render_encoder_card(facts: dict) -> str:
    """Markdown for the facts :func:`training.encoder_run.run_encoder_training` returns."""
    result, data, mining = facts["result"], facts["data"], facts["mining"]
    config = result["config"]
    return f"""---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags: [bi-encoder, retrieval, rrsearch]
base_model: {facts["base_model"]}
---

# {facts["name"]}

A bi-encoder fine-tuned by `rrs train-encoder` on {facts["date"]} from `{facts["base_model"]}`, on the
judgments `{data["source"]}` ({data["format"]}) and title queries of the corpus behind the alias
`{data["alias"]}` (index `{data.get("index") or "-"}`), with MultipleNegativesRankingLoss: in-batch
negatives plus hard negatives mined by the project's hybrid retrieval.

Serve it by reindexing the corpus with it (the index records the model; the service refuses
a query encoder that does not match the index):

```bash
RRS_BI_ENCODER={result["output_dir"]} rrs ingest CORPUS --index {data["alias"]} --reindex
RRS_BI_ENCODER={result["output_dir"]} rrs serve
```

## Data

{
        _table(
            [
                ("judgments", data["source"]),
                ("queries with a positive", data["queries"]),
                ("training queries (judged)", result["train_queries"]),
                ("title queries from the corpus (training only)", result["title_queries"]),
                ("held-out queries (never trained on)", result["heldout_queries"]),
                ("training rows", result["train_rows"]),
                ("dropped judgments (ids missing from the index)", data.get("dropped_missing", 0)),
            ]
        )
    }

## Training

{
        _table(
            [
                ("loss", "MultipleNegativesRankingLoss (in-batch + hard negatives)"),
                ("hard negatives per row", config["hard_negatives"]),
                ("texts per forward pass (GradCache)", config.get("mini_batch") or "the whole batch"),
                (
                    "hybrid rank range of negatives",
                    f"{mining['min_rank']}..{mining['max_rank']} ({mining['sampling']})",
                ),
                ("epochs", config["epochs"]),
                ("batch size", config["batch_size"]),
                ("learning rate", config["learning_rate"]),
                ("max sequence length", config["max_seq_length"] or "the model's own"),
                ("seed", config["seed"]),
                ("device (precision)", f"{result['device']} ({result['precision']})"),
                ("steps (best checkpoint)", f"{result['steps']} ({result['best_step'] or '-'})"),
                ("training time (s)", result["seconds"]),
            ]
        )
    }

## Held-out retrieval

Each held-out query retrieves from a corpus of {result["heldout_corpus"]} passages: every held-out
query's top {config["eval_depth"]} hybrid documents and its positives (sentence-transformers'
`InformationRetrievalEvaluator`, cosine). Measure the whole corpus with `rrs eval` after reindexing.

{_metrics(result["before"], result["after"])}

## ONNX export

`onnx/model.onnx` (fp32) and `onnx/model_qint8.onnx` (int8), pooling and normalisation inside the
graph, checked against this model's own vectors (the check texts of `rrs encoder export-onnx` and
held-out passages of the domain):

{_onnx(facts.get("onnx") or {})}
"""


def write_encoder_card(output_dir: Path, facts: dict) -> Path:
    """Write README.md (replacing sentence-transformers' generic card) and training.json."""
    output_dir = Path(output_dir)
    card = output_dir / CARD_NAME
    card.write_text(render_encoder_card(facts), encoding="utf-8")
    (output_dir / FACTS_NAME).write_text(json.dumps(facts, indent=2, default=str), encoding="utf-8")
    return card
