"""``rrs train-reranker`` end to end, without click: judgments -> index check -> mining
-> training -> model folder with its card. The CLI, the benchmark and the tests call
:func:`run_training`.

Example::

    facts = run_training(Path("data/scifact"), Settings(), alias="scifact",
                         output_dir=Path("models/scifact-reranker"))
    facts["result"]["after"]["ndcg@10"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import datetime, timezone
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
) -> dict:
    """Train a reranker on ``source``'s judgments over ``alias``; return the model card's facts.

    Raises ``DatasetError`` (bad judgments), ``MiningError`` (alias missing or empty, judged
    ids not in it), ``TrainingError`` (base model, no negatives) before any long work.
    """
    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.es_client import make_client
    from rrsearch.core.indexes import current_index
    from rrsearch.service.pipeline import SearchPipeline

    mining = mining or mining_config_from(settings)
    training = training or TrainConfig.from_settings(settings)
    source = Path(source)
    queries = load_judgments(source, split)
    own_client = es is None
    es = es or make_client(settings, request_timeout=max(settings.es_request_timeout_s, 60.0))
    try:
        missing = check_index(es, alias, queries, skip_missing=skip_missing)
        if missing:
            before = len(queries)
            queries = drop_missing(queries, missing)
            log(f"skipped {len(missing)} judged id(s) missing from {alias!r}; {before - len(queries)} query(ies) dropped")
        # Mining runs the service's own first stage over this alias, with the limits opened
        # up to the depth training asks for (they guard the public API, not this job).
        depth = max(mining.max_rank, training.eval_depth)
        search_settings = settings.model_copy(update={
            "index_alias": alias,
            "max_top_k": max(settings.max_top_k, depth),
            "max_candidates": max(settings.max_candidates, depth),
            "window_cache_size": 0,
        })
        bi_encoder = bi_encoder or bi_encoder_from(settings)
        pipeline = SearchPipeline(search_settings, es, bi_encoder, None)
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
            titles = pseudo_queries(pipeline, es, alias, count=mining.title_queries, config=mining, exclude=judged,
                                    progress=progress)
            log(f"{len(titles)} title queries from the corpus in {time.perf_counter() - started:.1f} s")
        index = current_index(es, alias)
    finally:
        if own_client:
            es.close()

    result = train_reranker(mined, training, output_dir, extra_train=titles, progress=progress, log=log)
    blend_facts = None
    if tune_blend:
        blend_facts = _tune_on_heldout(queries, mined, training, output_dir, settings=search_settings, alias=alias,
                                       bi_encoder=bi_encoder, progress=progress, log=log)
    facts = {
        "name": Path(output_dir).name,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "base_model": training.base_model,
        "data": {
            "source": str(source),
            "format": f"BEIR ({split} split)" if source.is_dir() else "JSONL",
            "queries": len(mined),
            "alias": alias,
            "index": index,
            "dropped_missing": len(missing),
            # ``rrs eval --tune-rerank`` leaves these out: a model flatters itself on what it learnt from
            "trained_query_ids": [query.id for query in split_heldout(list(mined), training.eval_fraction,
                                                                      training.seed)[0]],
        },
        "mining": {**asdict(mining), "mined_total": mined_total, "seconds": mining_seconds, "depth": depth,
                   "title_queries_made": len(titles)},
        "result": result.to_dict(),
    }
    if blend_facts is not None:
        facts["blend"] = {key: blend_facts[key] for key in ("chosen_on", "hybrid_alone", "plain_rerank", "best",
                                                            "chosen_gain")}
    write_model_card(Path(output_dir), facts)
    return facts


def _tune_on_heldout(queries, mined, training: TrainConfig, output_dir: Path, *, settings: Settings, alias: str,
                     bi_encoder, progress: bool, log) -> dict | None:
    """Choose the new model's blend on the held-out queries (the ones it did not train on)
    and write it beside the model (``rrs_rerank.json``), as ``rrs eval --tune-rerank`` does."""
    from rrsearch.core.es_client import make_client
    from rrsearch.evaluation.dataset import Dataset
    from rrsearch.evaluation.tuning import choose, collect
    from rrsearch.service.blend import write_calibration
    from rrsearch.service.pipeline import SearchPipeline
    from rrsearch.service.rerank import load_reranker

    _, heldout = split_heldout(list(mined), training.eval_fraction, training.seed)
    judged = {query.id: query for query in queries if query.positive_ids}
    heldout = [query for query in heldout if query.id in judged]
    if not heldout:
        log("no held-out queries with judged documents: the blend is left at plain rerank")
        return None
    candidates = max(settings.default_candidates, 10)
    dataset = Dataset(root=Path(output_dir), corpus_path=Path(output_dir), split="held-out",
                      queries={q.id: q.query for q in heldout},
                      qrels={q.id: {doc: 1 for doc in judged[q.id].positive_ids} for q in heldout})
    tune_settings = settings.model_copy(update={"rerank_timeout_ms": 3_600_000.0,
                                                "max_top_k": max(settings.max_top_k, candidates)})
    es = make_client(tune_settings)
    try:
        pipeline = SearchPipeline(tune_settings, es, bi_encoder, load_reranker(str(output_dir), tune_settings))
        collected = collect(pipeline, dataset, candidates=candidates, index=alias)
    finally:
        es.close()
    best, facts = choose(dataset.qrels, collected, {"split": f"held-out ({len(heldout)} training queries not trained on)",
                                                     "queries": len(heldout), "candidates": candidates})
    write_calibration(output_dir, best, facts)
    top = facts["best"]
    log(f"blend chosen on {len(heldout)} held-out queries: weight {best.weight}, depth {best.depth}, "
        f"{best.normalization} (nDCG@10 {facts['chosen_gain']['ndcg@10']}; hybrid {facts['hybrid_alone']}, plain "
        f"rerank {facts['plain_rerank']}, best of the grid {top['ndcg@10']} at weight {top['weight']}, "
        f"unconfirmed unless chosen)")
    return facts
