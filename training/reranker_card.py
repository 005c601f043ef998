"""The reranker's model card: what a trained cross-encoder is, so a folder found later explains
itself (base, data, settings, held-out metrics, date, how to use it). The shared pieces and the
writing of ``training.json`` beside it: ``training/card.py``.

``render_model_card`` is pure (a dict in, markdown out); ``write_model_card`` writes both files.
"""

from __future__ import annotations

from pathlib import Path

from rrsearch.training.card import data_table, front_matter, metrics_table, table, write_card


def render_model_card(facts: dict) -> str:
    """Markdown for ``facts``: keys ``name``, ``date``, ``base_model``, ``data``,
    ``mining``, ``result`` (a :class:`~training.reranker.TrainResult` as a dict)."""
    result = facts["result"]
    config = result["config"]
    data = facts["data"]
    mining = facts["mining"]
    negatives = [
        ("negatives per query", mining["negatives"]),
        ("hybrid rank range", f"{mining['min_rank']}..{mining['max_rank']}"),
        ("sampling", mining["sampling"]),
        ("mined in total", mining.get("mined_total")),
        ("mining time (s)", mining.get("seconds")),
    ]
    training = [
        ("recipe (RRS_TRAIN_RECIPE)", config.get("recipe")),
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
    metrics = {
        "first stage (hybrid order)": result["first_stage"],
        "base model reranking": result["before"],
        "trained model reranking": result["after"],
    }
    return f"""{front_matter(facts, pipeline_tag="text-ranking", tags="cross-encoder, reranker, rrsearch")}

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

{data_table(facts)}

## Hard negatives

{table(negatives)}

## Training

{table(training)}

## Held-out metrics

The held-out queries ({result["heldout_queries"]}) are a seeded {config["eval_fraction"]:.0%} slice of the
training queries, never trained on. Each one's top {config["eval_depth"]} hybrid documents are
reranked by sentence-transformers' `CrossEncoderRerankingEvaluator`, which adds judged positives the
first stage missed to the list (`always_rerank_positives`): the reranking columns are therefore an
upper bound, not directly comparable with the first-stage column, which counts those positives as
missed. Compare on a test split with `rrs eval --reranker {result["output_dir"]}`.

{metrics_table(metrics)}
"""


def write_model_card(output_dir: Path, facts: dict) -> Path:
    """Write README.md (replacing the generic one) and training.json; return the card's path."""
    return write_card(output_dir, facts, render_model_card(facts))
