"""The bi-encoder's model card: what it was trained on, how, what it scored on the held-out
queries and how its ONNX export agrees with it, so a folder found later explains itself. The
shared pieces and the writing of ``training.json`` beside it (``rrs adapt`` reads it to know a
step is done): ``training/card.py``.

``render_encoder_card`` is pure (a dict in, markdown out); ``write_encoder_card`` writes both files.
"""

from __future__ import annotations

from pathlib import Path

from rrsearch.training.card import data_table, front_matter, metrics_table, table, write_card


def _retrieval_metric(name: str) -> bool:
    return "ndcg" in name or "recall" in name or "mrr" in name


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
    training = [
        ("loss", "MultipleNegativesRankingLoss (in-batch + hard negatives)"),
        ("hard negatives per row", config["hard_negatives"]),
        ("texts per forward pass (GradCache)", config.get("mini_batch") or "the whole batch"),
        ("hybrid rank range of negatives", f"{mining['min_rank']}..{mining['max_rank']} ({mining['sampling']})"),
        ("epochs", config["epochs"]),
        ("batch size", config["batch_size"]),
        ("learning rate", config["learning_rate"]),
        ("max sequence length", config["max_seq_length"] or "the model's own"),
        ("seed", config["seed"]),
        ("device (precision)", f"{result['device']} ({result['precision']})"),
        ("steps (best checkpoint)", f"{result['steps']} ({result['best_step'] or '-'})"),
        ("training time (s)", result["seconds"]),
    ]
    data_rows = data_table(
        facts, judged="training queries (judged)", heldout="held-out queries (never trained on)", origin=False
    )
    metrics = metrics_table({"base encoder": result["before"], "trained encoder": result["after"]}, _retrieval_metric)
    return f"""{front_matter(facts, pipeline_tag="sentence-similarity", tags="bi-encoder, retrieval, rrsearch")}

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

{data_rows}

## Training

{table(training)}

## Held-out retrieval

Each held-out query retrieves from a corpus of {result["heldout_corpus"]} passages: every held-out
query's top {config["eval_depth"]} hybrid documents and its positives (sentence-transformers'
`InformationRetrievalEvaluator`, cosine). Measure the whole corpus with `rrs eval` after reindexing.

{metrics}

## ONNX export

`onnx/model.onnx` (fp32) and `onnx/model_qint8.onnx` (int8), pooling and normalisation inside the
graph, checked against this model's own vectors (the check texts of `rrs encoder export-onnx` and
held-out passages of the domain):

{_onnx(facts.get("onnx") or {})}
"""


def write_encoder_card(output_dir: Path, facts: dict) -> Path:
    """Write README.md (replacing sentence-transformers' generic card) and training.json."""
    return write_card(output_dir, facts, render_encoder_card(facts))
