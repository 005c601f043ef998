"""Offline runs of the search pipeline, in one place: ``rrs eval``, ``rrs eval --tune-rerank``,
the blend tuning at the end of ``rrs train-reranker`` and the benchmarks build their pipeline
and tune blends here.

Offline means one job drives the service's own :class:`~service.pipeline.SearchPipeline` over
a whole split, so the guards meant for live traffic are lifted (:func:`offline_settings`): no
rerank time budget (every query is fully reranked), no window cache (each query is searched
once), and the page, candidate and kNN limits raised to the depth the job asks for.

Tuning a blend is always the same three steps (:func:`tune_blend`): search every judged query
once keeping both scores (``tuning.collect``), choose on them (``tuning.choose``), write the
choice beside the model (``rrs_rerank.json``). Queries the model was trained on are left out
first (:func:`trained_on`): the same query means the same id *and* text, as
``training.json`` records them by fingerprint (ids alone name other queries elsewhere).

Nothing here prints or exits: problems are raised from ``core/errors.py`` (``DatasetError``,
``IndexMissing``, ``ClusterUnavailable``, ``RerankerUnavailable``, ...) and the commands turn
them into one line and an exit code. Example::

    with open_pipeline(settings, alias="scifact", depth=100, reranker="models/r") as offline:
        best, facts = tune_blend(offline.pipeline, dataset, model_dir="models/r", candidates=100,
                                 index="scifact", chosen_on={"split": "train"})
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rrsearch.core.errors import ClusterUnavailable, DatasetError, IndexMissing
from rrsearch.core.passage import VECTOR_FIELD
from rrsearch.core.settings import Settings
from rrsearch.evaluation.dataset import Dataset, dataset_fingerprint, query_fingerprint
from rrsearch.evaluation.runner import FusionParams
from rrsearch.service.blend import TRAINING_FACTS, BlendConfig

OFFLINE_RERANK_TIMEOUT_MS = 3_600_000.0  # an hour per query: never degrade to the fused order


def offline_settings(settings: Settings, *, depth: int, alias: str | None = None) -> Settings:
    """``settings`` for an offline job ``depth`` candidates deep: no rerank budget, no window
    cache, no corpus calibration started in the background, ``max_top_k`` / ``max_candidates`` /
    ``knn_num_candidates`` at least ``depth``;
    ``alias`` (when given) becomes the default index of the job's requests."""
    update: dict[str, Any] = {
        "max_top_k": max(settings.max_top_k, depth),
        "max_candidates": max(settings.max_candidates, depth),
        "knn_num_candidates": max(settings.knn_num_candidates, depth),
        "rerank_timeout_ms": OFFLINE_RERANK_TIMEOUT_MS,
        "window_cache_size": 0,
        "rerank_auto_calibrate": False,
    }
    if alias is not None:
        update["index_alias"] = alias
    return settings.model_copy(update=update)


@dataclass
class OfflinePipeline:
    """A search pipeline built for an offline job, with what was learnt building it.

    ``close()`` (or leaving a ``with`` block) closes the client and the reranker when this
    object created them, and leaves alone the ones the caller passed in."""

    settings: Settings  # the offline settings the pipeline runs with
    es: Any
    pipeline: Any  # a service.pipeline.SearchPipeline
    alias: str
    index: str | None = None  # the index behind the alias, when it was looked up
    es_version: str | None = None
    ingest_report: Any = None  # ingest.pipeline's report, when the corpus was ingested
    _closing: list = field(default_factory=list, repr=False)

    @property
    def bi_encoder(self):
        return self.pipeline.bi_encoder

    @property
    def reranker(self):
        return self.pipeline.reranker

    def close(self) -> None:
        while self._closing:
            self._closing.pop()()

    def __enter__(self) -> OfflinePipeline:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def open_pipeline(
    settings: Settings,
    *,
    alias: str,
    depth: int,
    es=None,
    bi_encoder=None,
    reranker=None,
    request_timeout: float | None = None,
) -> OfflinePipeline:
    """The offline pipeline over ``alias``, ``depth`` candidates deep.

    ``es`` and ``bi_encoder`` are made from the settings when not given; ``reranker`` is a
    loaded reranker, a model name or folder (loaded here; ``RerankerUnavailable`` when it
    cannot be), or None for a first stage only."""
    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.es_client import make_client
    from rrsearch.service.pipeline import SearchPipeline
    from rrsearch.service.rerank import load_reranker

    job = offline_settings(settings, depth=depth, alias=alias)
    closing: list = []
    try:
        if es is None:
            es = make_client(job, **({} if request_timeout is None else {"request_timeout": request_timeout}))
            closing.append(es.close)
        if isinstance(reranker, (str, Path)):
            reranker = load_reranker(str(reranker), job)
            closing.append(reranker.close)
        pipeline = SearchPipeline(job, es, bi_encoder or bi_encoder_from(job), reranker)
    except BaseException:
        for close in reversed(closing):
            close()
        raise
    return OfflinePipeline(job, es, pipeline, alias, _closing=closing)


def default_alias(dataset_dir: Path) -> str:
    """``eval-<folder name>``, made a valid index name."""
    name = re.sub(r"[^a-z0-9_.-]+", "-", Path(dataset_dir).resolve().name.lower()).strip("-._") or "dataset"
    return f"eval-{name}"


def open_dataset_pipeline(
    settings: Settings,
    dataset: Dataset,
    *,
    index_alias: str | None,
    candidates: int,
    reranker_name: str | None,
    progress: bool = True,
) -> OfflinePipeline:
    """What every evaluation of ``dataset`` drives: connect, index the corpus (into
    ``eval-<folder>``, through the real ingest; a re-run finds it done) unless ``index_alias``
    already holds it, check the alias holds documents, load the models.

    Raises ``ClusterUnavailable`` (no cluster), ``IndexMissing`` (an empty or missing alias),
    ``RerankerUnavailable`` (the cross-encoder cannot be loaded)."""
    from rrsearch.core.es_client import make_client, resolve_url, server_version
    from rrsearch.core.es_errors import describe
    from rrsearch.core.indexes import current_index

    alias = index_alias or default_alias(dataset.root)
    job = offline_settings(settings, depth=candidates)
    es = make_client(job)
    try:
        try:
            version = server_version(es)
        except ClusterUnavailable:
            raise
        except Exception as exc:  # connection errors of any kind, refusals: the line that names the fix
            problem = describe(exc, resolve_url(job))
            raise ClusterUnavailable(problem.message if problem else f"Elasticsearch is not reachable: {exc}") from exc
        ingest_report = None
        if index_alias is None:
            from rrsearch.ingest.pipeline import run_ingest

            ingest_report = run_ingest([dataset.corpus_path], job, alias=alias, progress=progress, es=es)
        live = current_index(es, alias)
        if live is None or es.count(index=alias)["count"] == 0:
            raise IndexMissing(f"alias {alias!r} holds no documents: ingest the corpus or drop --index")
        offline = open_pipeline(settings, alias=alias, depth=candidates, es=es, reranker=reranker_name or None)
    except BaseException:
        es.close()
        raise
    offline._closing.insert(0, es.close)
    offline.index, offline.es_version, offline.ingest_report = live, version, ingest_report
    return offline


def evaluate_dataset(
    settings: Settings,
    dataset: Dataset,
    *,
    index_alias: str | None,
    candidates: int,
    reranker_name: str | None,
    configs: tuple[str, ...],
    fusion: FusionParams,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Build or check the index, load the models, run every configuration; returns
    (results, the exact settings of the run)."""
    from rrsearch.core.encoders import model_label
    from rrsearch.evaluation.runner import run_all, warm_query_embeddings

    with open_dataset_pipeline(
        settings,
        dataset,
        index_alias=index_alias,
        candidates=candidates,
        reranker_name=reranker_name,
        progress=progress,
    ) as offline:
        pipeline, es, alias, live = offline.pipeline, offline.es, offline.alias, offline.index
        embedding_latency = None
        if any(config != "bm25" for config in configs):
            embedding_latency = warm_query_embeddings(pipeline, dataset, index=alias)
        results = run_all(
            pipeline,
            dataset,
            configs=configs,
            with_rerank=pipeline.reranker is not None,
            candidates=candidates,
            index=alias,
            fusion=fusion,
            show_progress=progress,
        )
        mapping = es.indices.get_mapping(index=live)[live]["mappings"]
        run_settings = {
            "dataset": str(dataset.root),
            "split": dataset.split,
            "queries": len(dataset.queries),
            "index": alias,
            "index_version": live,
            "documents_in_index": es.count(index=alias)["count"],
            "elasticsearch_version": offline.es_version,
            "analyzer": mapping["properties"]["text"].get("analyzer", "standard"),
            "vector_index_type": mapping["properties"][VECTOR_FIELD].get("index_options", {}).get("type"),
            "bi_encoder": model_label(offline.settings.bi_encoder),
            "cross_encoder": reranker_name,
            "candidates": candidates,
            "bm25_fields": offline.settings.bm25_fields,
            "knn_num_candidates": offline.settings.knn_num_candidates,
            "fusion": {
                "rrf_k": fusion.rrf_k,
                "linear_weight": fusion.linear_weight,
                "normalization": fusion.normalization,
            },
            "query_embedding_ms": embedding_latency,
            "latency_note": "per query, search pipeline only; query embeddings are computed once beforehand",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
        }
        if offline.ingest_report is not None:
            run_settings["ingest"] = {"indexed": offline.ingest_report.indexed, "chunks": offline.ingest_report.chunks}
    return results, run_settings


def tune_blend(
    pipeline,
    dataset: Dataset,
    *,
    model_dir: str | Path,
    candidates: int,
    index: str,
    chosen_on: dict,
    rrf_k: int | None = None,
    progress: bool = False,
    dated: bool = False,
) -> tuple[BlendConfig, dict]:
    """Search each of ``dataset``'s queries once with both scores kept, choose the blend on
    them, and write it into ``model_dir`` (``rrs_rerank.json``; with the time of day when
    ``dated``). Returns the choice and the facts written with it, plus ``path`` (the file)."""
    from tqdm import tqdm

    from rrsearch.evaluation.tuning import choose, collect, fusion_of
    from rrsearch.service.blend import write_calibration
    from rrsearch.service.blend_policy import default_blend

    chosen_on = {**chosen_on, "fusion": fusion_of(pipeline, index, rrf_k=rrf_k)}
    with tqdm(total=len(dataset.queries), desc="queries", unit="q", disable=not progress) as bar:
        collected = collect(pipeline, dataset, candidates=candidates, index=index, rrf_k=rrf_k, progress=bar)
    best, facts = choose(dataset.qrels, collected, chosen_on, default=default_blend(pipeline.settings))
    if dated:
        facts["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    facts["path"] = str(write_calibration(model_dir, best, facts, index=index))
    return best, facts


# --- which queries trained the model ----------------------------------------------------


@dataclass(frozen=True)
class TrainedOn:
    """The queries of a dataset a model was trained on (left out of its tuning), and why."""

    ids: frozenset[str]
    reason: str  # one sentence: how they were recognised, or why none were
    warning: str | None = None  # said when the answer is a guess (an old training.json)


def trained_on(model_dir: str | Path, dataset: Dataset) -> TrainedOn:
    """Which of ``dataset``'s queries the reranker in ``model_dir`` was trained on.

    A query counts only when it is the same query: the same id *and* the same text.
    ``training.json`` lists a fingerprint (a hash of id and text) of each trained query, and a
    query of ``dataset`` is left out when its own fingerprint is listed. Ids alone mean nothing
    across collections (BEIR numbers queries 1, 2, ... in many): a query with a trained id and
    another text is kept. ``training.json`` also names the collection the judgments came from,
    by name and fingerprint (of all its queries, every split): the reason says whether
    ``dataset`` is that collection. A query repeated word for word under its id in another
    collection (a copy or subset of it) is still left out, and the reason says so: the model
    has seen exactly that query, and one query less costs the tuning less than a flattered one.

    A ``training.json`` from before the fingerprints (``trained_query_ids`` only) cannot be
    matched by text: its ids are trusted only when its recorded source is this very folder
    (then they are the same queries, and are left out by id, with a warning); for any other
    folder nothing is left out, with a warning saying why.
    """
    path = Path(model_dir) / TRAINING_FACTS
    if not path.is_file():
        return TrainedOn(frozenset(), f"no {TRAINING_FACTS} in the model folder: no trained queries known")
    try:
        data = json.loads(path.read_text(encoding="utf-8")).get("data") or {}
    except (ValueError, AttributeError):
        return TrainedOn(
            frozenset(),
            f"{path} is unreadable: no trained queries known",
            warning=f"{path} is not the JSON rrs train-reranker writes; nothing left out",
        )
    if "trained_query_fingerprints" in data:
        trained = set(data["trained_query_fingerprints"])
        left_out = frozenset(qid for qid, text in dataset.queries.items() if query_fingerprint(qid, text) in trained)
        name = data.get("source") or "unnamed"
        try:
            same = data.get("dataset_fingerprint") == dataset_fingerprint(dataset.root)
        except DatasetError:  # a dataset made in memory, with no queries.jsonl
            same = False
        where = (
            f"the collection it was trained on ({name})"
            if same
            else f"another collection than the one it was trained on ({name}; fingerprints differ)"
        )
        if not left_out:
            return TrainedOn(
                left_out,
                f"none of the {len(dataset.queries)} queries has the id and text of a query "
                f"the model was trained on; they come from {where}",
            )
        return TrainedOn(
            left_out,
            f"{len(left_out)} of the {len(dataset.queries)} queries have the id and text of a "
            f"query the model was trained on; they come from {where}",
        )
    ids = set(data.get("trained_query_ids") or [])
    if not ids:
        return TrainedOn(frozenset(), f"{TRAINING_FACTS} lists no trained queries")
    source = data.get("source")
    if source and Path(source).resolve() == Path(dataset.root).resolve():
        left_out = frozenset(ids & set(dataset.queries))
        return TrainedOn(
            left_out,
            f"{len(left_out)} trained query id(s) of an old {TRAINING_FACTS} (ids only) whose source is this folder",
            warning=f"{path} predates query fingerprints: queries left out by id alone (this folder "
            f"is its source); retrain to record fingerprints",
        )
    return TrainedOn(
        frozenset(),
        f"an old {TRAINING_FACTS} lists trained query ids only, from "
        f"{source or 'an unnamed source'}, not this folder: ids alone cannot tell the same "
        f"query, so none is left out",
        warning=f"{path} predates query fingerprints and was trained on {source or 'an unnamed source'}: "
        f"no query left out; retrain to record fingerprints",
    )


def tune_reranker(
    settings: Settings,
    dataset: Dataset,
    *,
    index_alias: str | None,
    candidates: int,
    reranker_name: str,
    rrf_k: int | None = None,
    progress: bool = True,
) -> dict:
    """``rrs eval --tune-rerank``: choose the blend of the reranker folder ``reranker_name`` on
    ``dataset`` and write it into the folder; returns the facts written (``chosen_on`` says how
    many queries were used, how many were left out as trained on, and why).

    Queries the model was trained on are left out first (:func:`trained_on`): a model looks
    better on what it learnt from than it will on new queries. Raises ``DatasetError`` when
    no query is left."""
    trained = trained_on(reranker_name, dataset)
    kept = {qid: text for qid, text in dataset.queries.items() if qid not in trained.ids}
    if not kept:
        raise DatasetError(f"every query of the {dataset.split} split trained {reranker_name}: tune on another")
    dataset = replace(dataset, queries=kept, qrels={qid: docs for qid, docs in dataset.qrels.items() if qid in kept})
    chosen_on = {
        "dataset": str(dataset.root),
        "split": dataset.split,
        "queries": len(kept),
        "candidates": candidates,
        "left_out_trained_on": len(trained.ids),
        "left_out_reason": trained.reason,
    }
    if trained.warning:
        chosen_on["warning"] = trained.warning
    with open_dataset_pipeline(
        settings,
        dataset,
        index_alias=index_alias,
        candidates=candidates,
        reranker_name=reranker_name,
        progress=progress,
    ) as offline:
        _best, facts = tune_blend(
            offline.pipeline,
            dataset,
            model_dir=reranker_name,
            candidates=candidates,
            index=offline.alias,
            chosen_on=chosen_on,
            rrf_k=rrf_k,
            progress=progress,
            dated=True,
        )
    return facts
