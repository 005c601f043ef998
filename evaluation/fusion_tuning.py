"""Choose the fusion (RRF, or linear with its weight and normalisation) on judged queries, and
store it in the index's ``_meta`` so the service serves it by default.

Linear fusion was at or above RRF on every collection measured (SciFact +0.012), yet RRF is the
default and nothing chose between them on the user's data. Each judged query is searched
twice (BM25 alone, kNN alone, ``candidates`` deep, one passage per hit); every fusion of the
grid is then replayed offline from those two lists and scored with nDCG@10 on documents. The
best on the split is kept: 19 settings of one family, so the winner's curse is small next to
the 110 blends of ``evaluation/tuning.py``; the test split reports what it gives.

    chosen, facts = tune_fusion(pipeline, dataset, index="scifact", candidates=100)
    write_fusion(es, "scifact", chosen, facts)
"""

from __future__ import annotations

from datetime import UTC, datetime

from rrsearch.evaluation.dataset import Dataset
from rrsearch.evaluation.metrics import evaluate
from rrsearch.service import fusion
from rrsearch.service.pipeline import FUSION_META_KEY
from rrsearch.service.schemas import Fusion, SearchRequest

LINEAR_WEIGHTS = tuple(round(0.1 * step, 1) for step in range(1, 10))  # kNN's share
NORMALIZATIONS = ("minmax", "zscore")

Lists = dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]], dict[str, str]]]


def grid(rrf_k: int) -> list[Fusion]:
    """RRF at the configured constant, then linear at every weight and normalisation."""
    return [Fusion(method="rrf", k=rrf_k)] + [
        Fusion(method="linear", weight=w, normalization=n) for n in NORMALIZATIONS for w in LINEAR_WEIGHTS
    ]


def fuse(bm25: list[tuple[str, float]], knn: list[tuple[str, float]], setting: Fusion) -> list[str]:
    """Passage ids in the order ``setting`` fuses the two lists (pure)."""
    return [doc for doc, _ in fusion.fuse({"bm25": bm25, "knn": knn}, setting, default_k=fusion.DEFAULT_K)]


def score(qrels: dict[str, dict[str, int]], lists: Lists, setting: Fusion) -> float:
    """nDCG@10 on documents of ``setting`` over every query's two lists (pure)."""
    rankings = {
        qid: [parents[passage] for passage in fuse(bm25, knn, setting)] for qid, (bm25, knn, parents) in lists.items()
    }
    return evaluate(qrels, rankings)["ndcg@10"]


def retrieve(pipeline, dataset: Dataset, *, index: str, candidates: int, progress=None) -> Lists:
    """Each query's BM25 and kNN lists (passage id, score) and each passage's document."""
    lists: Lists = {}
    for qid, text in dataset.queries.items():
        pair = []
        parents: dict[str, str] = {}
        for mode in ("bm25", "knn"):
            request = SearchRequest(
                query=text[: pipeline.settings.max_query_chars],  # CISI has longer queries than the service takes
                mode=mode,
                rerank=False,
                collapse=False,
                highlight=False,
                top_k=candidates,
                candidates=candidates,
                index=index,
            )
            hits = pipeline.search(request).hits
            pair.append([(hit.id, hit.score) for hit in hits])
            parents.update({hit.id: hit.parent_id for hit in hits})
        lists[qid] = (pair[0], pair[1], parents)
        if progress is not None:
            progress.update(1)
    return lists


def choose(qrels: dict[str, dict[str, int]], lists: Lists, *, rrf_k: int) -> tuple[Fusion, list[dict]]:
    """The best setting on these queries (ties: RRF, then the earlier in the grid), and every
    setting's figure, best first (pure)."""
    settings = grid(rrf_k)
    rows = [{**setting.model_dump(), "ndcg@10": round(score(qrels, lists, setting), 4)} for setting in settings]
    best = max(range(len(rows)), key=lambda i: (rows[i]["ndcg@10"], -i))
    return settings[best], sorted(rows, key=lambda row: -row["ndcg@10"])


def tune_fusion(pipeline, dataset: Dataset, *, index: str, candidates: int, progress=None) -> tuple[Fusion, dict]:
    """Retrieve once, choose on ``dataset``'s split, and the facts stored with the choice."""
    rrf_k = pipeline.settings.rrf_k
    lists = retrieve(pipeline, dataset, index=index, candidates=candidates, progress=progress)
    chosen, rows = choose(dataset.qrels, lists, rrf_k=rrf_k)
    facts = {
        "chosen": chosen.model_dump(),
        "chosen_on": {"split": dataset.split, "queries": len(lists), "candidates": candidates, "metric": "ndcg@10"},
        "rrf": next(row["ndcg@10"] for row in rows if row["method"] == "rrf"),
        "grid": rows,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return chosen, facts


def write_fusion(es, alias: str, facts: dict) -> list[str]:
    """Store the choice in the ``_meta`` of every index behind ``alias`` (other keys kept);
    returns the indices written."""
    written = []
    for name, body in sorted(es.indices.get_mapping(index=alias).items()):
        meta = dict(body.get("mappings", {}).get("_meta", {}))
        meta[FUSION_META_KEY] = {key: facts[key] for key in ("chosen", "chosen_on", "rrf", "date")}
        es.indices.put_mapping(index=name, meta=meta)
        written.append(name)
    return written
