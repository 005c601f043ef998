"""``rrs train-reranker`` end to end, without click: judgments -> index check -> mining
-> training -> model folder with its card -> blend tuned on the held-out queries. The CLI,
the benchmark and the tests call :func:`run_training`; the pipelines (mining, tuning) and the
tuning itself are ``evaluation/offline.py``'s.

``training.json`` names the judgments by name (``data.source``) and fingerprint
(``data.dataset_fingerprint``), and lists a fingerprint of each trained query's id and text
(``data.trained_query_fingerprints``), so that ``rrs eval --tune-rerank`` leaves out exactly
those queries and no namesake of theirs in another collection.

Example::

    facts = run_training(Path("data/scifact"), Settings(), alias="scifact",
                         output_dir=Path("models/scifact-reranker"))
    facts["result"]["after"]["ndcg@10"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from rrsearch.core.settings import Settings, TrainingSettings
from rrsearch.training.judgments import load_judgments
from rrsearch.training.mining import MiningConfig, check_index, drop_missing, mine
from rrsearch.training.model_card import write_model_card
from rrsearch.training.trainer import TrainConfig, split_heldout, train_reranker


def mining_config_from(settings: Settings, **overrides) -> MiningConfig:
    """The ``train_*`` mining settings, with any non-None override on top."""
    group = settings.group(TrainingSettings, "train_")
    group["sampling"] = group["negative_sampling"]  # the setting names what is sampled
    values = {f.name: group[f.name] for f in fields(MiningConfig)}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return MiningConfig(**values)


@dataclass
class Gathered:
    """The judged queries mined over the alias, plus title queries: what a trainer reads."""

    queries: list
    mined: list
    titles: list
    missing: set
    index: str | None
    bi_encoder: object
    mined_total: int
    mining_seconds: float


def gather_training_data(
    queries,
    settings: Settings,
    *,
    alias: str,
    mining: MiningConfig,
    depth: int,
    es,
    bi_encoder=None,
    skip_missing: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Gathered:
    """Check the alias holds the judged documents, mine hard negatives for each judged query
    ``depth`` deep with the service's own first stage, and make ``mining.title_queries``
    title queries; shared by the reranker and the bi-encoder trainers."""
    from rrsearch.core.indexes import current_index
    from rrsearch.evaluation.offline import open_pipeline

    missing = check_index(es, alias, queries, skip_missing=skip_missing)
    if missing:
        before = len(queries)
        queries = drop_missing(queries, missing)
        log(f"skipped {len(missing)} judged id(s) missing from {alias!r}; {before - len(queries)} query(ies) dropped")
    # Mining runs the service's own first stage over this alias, with the limits opened
    # up to the depth training asks for (they guard the public API, not this job).
    offline = open_pipeline(settings, alias=alias, depth=depth, es=es, bi_encoder=bi_encoder)
    pipeline = offline.pipeline
    started = time.perf_counter()
    mined = mine(pipeline, queries, config=mining, depth=depth, es=es, progress=progress)
    mining_seconds = round(time.perf_counter() - started, 1)
    mined_total = sum(query.mined for query in mined)
    log(f"mined {mined_total} hard negatives for {len(mined)} queries in {mining_seconds} s")
    titles: list = []
    if mining.title_queries:
        from rrsearch.training.pseudo_queries import pseudo_queries

        started = time.perf_counter()
        judged = {doc for query in queries for doc in query.positive_ids}
        titles = pseudo_queries(
            pipeline, es, alias, count=mining.title_queries, config=mining, exclude=judged, progress=progress
        )
        log(f"{len(titles)} title queries from the corpus in {time.perf_counter() - started:.1f} s")
    return Gathered(
        list(queries), mined, titles, missing, current_index(es, alias), offline.bi_encoder, mined_total, mining_seconds
    )


def run_training(
    source: Path,
    settings: Settings,
    *,
    alias: str,
    output_dir: Path,
    split: str = "train",
    mining: MiningConfig | None = None,
    training: TrainConfig | None = None,
    skip_missing: bool = False,
    progress: bool = True,
    es=None,
    bi_encoder=None,
    log: Callable[[str], None] = print,
    tune_blend: bool = True,
    cross_fit: int = 0,
) -> dict:
    """Train a reranker on ``source``'s judgments over ``alias``; return the model card's facts.

    ``cross_fit`` (folds, 0 = off) chooses the blend on out-of-fold scores of every judged
    query (``training/crossfit.py``) instead of on the held-out slice.

    Raises ``DatasetError`` (bad judgments), ``MiningError`` (alias missing or empty, judged
    ids not in it), ``TrainingError`` (base model, no negatives) before any long work.
    """
    from rrsearch.core.es_client import make_client

    mining = mining or mining_config_from(settings)
    training = training or TrainConfig.from_settings(settings)
    source = Path(source)
    queries = load_judgments(source, split)
    collection = collection_fingerprint(source, queries)
    own_client = es is None
    es = es or make_client(settings, request_timeout=max(settings.es_request_timeout_s, 60.0))
    try:
        depth = max(mining.max_rank, training.eval_depth)
        gathered = gather_training_data(
            queries,
            settings,
            alias=alias,
            mining=mining,
            depth=depth,
            es=es,
            bi_encoder=bi_encoder,
            skip_missing=skip_missing,
            progress=progress,
            log=log,
        )
        queries, mined, titles, missing, index = (
            gathered.queries,
            gathered.mined,
            gathered.titles,
            gathered.missing,
            gathered.index,
        )
        bi_encoder, mined_total, mining_seconds = gathered.bi_encoder, gathered.mined_total, gathered.mining_seconds
    finally:
        if own_client:
            es.close()

    result = train_reranker(mined, training, output_dir, extra_train=titles, progress=progress, log=log)
    blend_facts = None
    if cross_fit:
        blend_facts = _cross_fit_blend(
            queries,
            mined,
            titles,
            training,
            output_dir,
            folds=cross_fit,
            settings=settings,
            alias=alias,
            depth=depth,
            bi_encoder=bi_encoder,
            es=None if own_client else es,
            progress=progress,
            log=log,
        )
    elif tune_blend:
        blend_facts = _tune_on_heldout(
            queries,
            mined,
            training,
            output_dir,
            settings=settings,
            alias=alias,
            depth=depth,
            bi_encoder=bi_encoder,
            es=None if own_client else es,
            progress=progress,
            log=log,
        )
    facts = {
        "name": Path(output_dir).name,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "base_model": training.base_model,
        "data": {
            "source": source.resolve().name,  # by name (and fingerprint), not by a path that may move
            "format": f"BEIR ({split} split)" if source.is_dir() else "JSONL",
            "queries": len(mined),
            "alias": alias,
            "index": index,
            "dropped_missing": len(missing),
            **trained_queries_facts(collection, split_heldout(list(mined), training.eval_fraction, training.seed)[0]),
        },
        "mining": {
            **asdict(mining),
            "mined_total": mined_total,
            "seconds": mining_seconds,
            "depth": depth,
            "title_queries_made": len(titles),
        },
        "result": result.to_dict(),
    }
    if blend_facts is not None:
        facts["blend"] = {
            key: blend_facts[key] for key in ("chosen_on", "hybrid_alone", "plain_rerank", "best", "chosen_gain")
        }
    write_model_card(Path(output_dir), facts)
    return facts


def collection_fingerprint(source: Path, queries) -> str:
    """The fingerprint of the collection the judgments come from: a BEIR folder's whole
    ``queries.jsonl`` (every split), or a JSONL file's queries (ids ``file:line``)."""
    from rrsearch.evaluation.dataset import dataset_fingerprint, queries_fingerprint

    if Path(source).is_dir():
        return dataset_fingerprint(source)
    return queries_fingerprint({query.id: query.text for query in queries})


def trained_queries_facts(collection: str, trained) -> dict:
    """What ``training.json`` records of the trained queries (``trained``: items with ``id`` and
    ``query``) for ``rrs eval --tune-rerank`` to leave them out: the collection's fingerprint
    and one fingerprint (id and text) per query -- ids alone name other queries elsewhere."""
    from rrsearch.evaluation.dataset import query_fingerprint

    return {
        "dataset_fingerprint": collection,
        "trained_query_fingerprints": sorted(query_fingerprint(query.id, query.query) for query in trained),
        "fingerprints": "query: sha256 of id + U+001F + text, first 32 hex digits; dataset: sha256 of its "
        "queries' fingerprints in id order (evaluation/dataset.py)",
    }


def _tune_on_heldout(
    queries,
    mined,
    training: TrainConfig,
    output_dir: Path,
    *,
    settings: Settings,
    alias: str,
    depth: int,
    bi_encoder,
    es,
    progress: bool,
    log,
) -> dict | None:
    """Choose the new model's blend on the held-out queries (the ones it did not train on)
    and write it beside the model (``rrs_rerank.json``), as ``rrs eval --tune-rerank`` does."""
    from rrsearch.evaluation.dataset import Dataset
    from rrsearch.evaluation.offline import open_pipeline, tune_blend

    _, heldout = split_heldout(list(mined), training.eval_fraction, training.seed)
    judged = {query.id: query for query in queries if query.positive_ids}
    heldout = [query for query in heldout if query.id in judged]
    if not heldout:
        log("no held-out queries with judged documents: the blend is left at plain rerank")
        return None
    candidates = max(settings.default_candidates, 10)
    dataset = Dataset(
        root=Path(output_dir),
        corpus_path=Path(output_dir),
        split="held-out",
        queries={q.id: q.query for q in heldout},
        qrels={q.id: dict.fromkeys(judged[q.id].positive_ids, 1) for q in heldout},
    )
    with open_pipeline(
        settings, alias=alias, depth=max(depth, candidates), es=es, bi_encoder=bi_encoder, reranker=Path(output_dir)
    ) as offline:
        best, facts = tune_blend(
            offline.pipeline,
            dataset,
            model_dir=output_dir,
            candidates=candidates,
            index=alias,
            chosen_on={
                "split": f"held-out ({len(heldout)} training queries not trained on)",
                "queries": len(heldout),
                "candidates": candidates,
            },
        )
    facts.pop("path")
    top = facts["best"]
    log(
        f"blend chosen on {len(heldout)} held-out queries: weight {best.weight}, depth {best.depth}, "
        f"{best.normalization} (nDCG@10 {facts['chosen_gain']['ndcg@10']}; hybrid {facts['hybrid_alone']}, plain "
        f"rerank {facts['plain_rerank']}, best of the grid {top['ndcg@10']} at weight {top['weight']}, "
        f"unconfirmed unless chosen)"
    )
    return facts


def _cross_fit_blend(
    queries,
    mined,
    titles,
    training: TrainConfig,
    output_dir: Path,
    *,
    folds: int,
    settings: Settings,
    alias: str,
    depth: int,
    bi_encoder,
    es,
    progress: bool,
    log,
) -> dict:
    """Choose the served model's blend on out-of-fold scores of every judged query and write
    it beside the model (``rrs_rerank.json``): ``folds`` more trainings, one per fold."""
    from rrsearch.service.blend import write_calibration
    from rrsearch.training.crossfit import WORK_DIR, choose_cross_fitted, cross_fit_scores

    started = time.perf_counter()
    collected, qrels = cross_fit_scores(
        queries,
        mined,
        titles,
        training,
        Path(output_dir) / WORK_DIR,
        folds=folds,
        settings=settings,
        alias=alias,
        depth=depth,
        es=es,
        bi_encoder=bi_encoder,
        progress=progress,
        log=log,
    )
    seconds = time.perf_counter() - started
    best, facts = choose_cross_fitted(
        qrels, collected, folds=folds, candidates=max(settings.default_candidates, 10), seconds=seconds
    )
    write_calibration(output_dir, best, facts)
    gain = facts["chosen_gain"]
    log(
        f"cross-fitted blend on {len(collected)} queries ({folds} folds, {seconds:.0f} s): weight {best.weight}, depth "
        f"{best.depth}, {best.normalization} (nDCG@10 {gain['ndcg@10']}, hybrid {facts['hybrid_alone']}, confirming "
        f"half's gain {gain['gain_confirming']} with lower bound {gain['gain_confirming_lower']})"
    )
    return facts
