"""``rrs train-reranker`` end to end, without click: the shared run (``training/run.py``:
judgments -> index check -> mining -> training) -> model folder with its card -> the blend,
chosen on the held-out queries or cross-fitted on all of them. The CLI, ``rrs adapt``, the
benchmark and the tests call :func:`run_training`; the pipelines (mining, tuning) and the
tuning itself are ``evaluation/offline.py``'s.

Example::

    facts = run_training(Path("data/scifact"), Settings(), alias="scifact",
                         output_dir=Path("models/scifact-reranker"))
    facts["result"]["after"]["ndcg@10"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rrsearch.core.settings import Settings
from rrsearch.evaluation.tuning import verdict_line
from rrsearch.training.fit import split_heldout
from rrsearch.training.mining import MiningConfig
from rrsearch.training.reranker import TrainConfig, train_reranker
from rrsearch.training.reranker_card import write_model_card
from rrsearch.training.run import Gathered, TrainingRun, mining_config_from

NEXT_SOURCE = "the serving policy's next source serves (rrs calibrate, else the default blend)"
BLEND_FACTS = ("chosen_on", "hybrid_alone", "plain_rerank", "best", "chosen_gain", "verdict")  # what the card keeps


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
    training = training or TrainConfig.from_settings(settings)
    log(
        f"recipe {training.recipe}: {training.loss}, {training.epochs:g} epochs, batch {training.batch_size}, "
        f"lr {training.learning_rate:g}, {training.max_length} tokens"
    )
    run = TrainingRun(Path(source), settings, alias, Path(output_dir), split, skip_missing, progress, es, log)
    gathered = run.gather(mining or mining_config_from(settings), eval_depth=training.eval_depth, bi_encoder=bi_encoder)
    result = train_reranker(
        gathered.mined, training, output_dir, extra_train=gathered.titles, progress=progress, log=log
    )
    blend_facts = None
    if cross_fit:
        blend_facts = _cross_fit_blend(run, gathered, training, folds=cross_fit)
    elif tune_blend:
        blend_facts = _tune_on_heldout(run, gathered, training)
    facts = run.facts(gathered, result)
    if blend_facts is not None:
        facts["blend"] = {key: blend_facts[key] for key in BLEND_FACTS if key in blend_facts}
    write_model_card(Path(output_dir), facts)
    return facts


def _tune_on_heldout(run: TrainingRun, gathered: Gathered, training: TrainConfig) -> dict | None:
    """Choose the new model's blend on the held-out queries (the ones it did not train on)
    and write it beside the model (``rrs_rerank.json``), as ``rrs eval --tune-rerank`` does."""
    from rrsearch.evaluation.dataset import Dataset
    from rrsearch.evaluation.offline import open_pipeline, tune_blend

    settings, output_dir, alias, log = run.settings, run.output_dir, run.alias, run.log
    _, heldout = split_heldout(list(gathered.mined), training.eval_fraction, training.seed)
    judged = {query.id: query for query in gathered.queries if query.positive_ids}
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
    depth = max(gathered.depth, candidates)
    with open_pipeline(
        settings, alias=alias, depth=depth, es=run.es, bi_encoder=gathered.bi_encoder, reranker=Path(output_dir)
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
        f"unconfirmed unless chosen); {verdict_line(facts, NEXT_SOURCE)}"
    )
    return facts


def _cross_fit_blend(run: TrainingRun, gathered: Gathered, training: TrainConfig, *, folds: int) -> dict:
    """Choose the served model's blend on out-of-fold scores of every judged query and write
    it beside the model (``rrs_rerank.json``): ``folds`` more trainings, one per fold."""
    from rrsearch.service.blend import write_calibration
    from rrsearch.service.blend_policy import default_blend
    from rrsearch.training.crossfit import WORK_DIR, choose_cross_fitted, cross_fit_scores

    settings, output_dir, log = run.settings, run.output_dir, run.log
    started = time.perf_counter()
    collected, qrels = cross_fit_scores(
        gathered.queries,
        gathered.mined,
        gathered.titles,
        training,
        Path(output_dir) / WORK_DIR,
        folds=folds,
        settings=settings,
        alias=run.alias,
        depth=gathered.depth,
        es=run.es,
        bi_encoder=gathered.bi_encoder,
        progress=run.progress,
        log=log,
    )
    seconds = time.perf_counter() - started
    best, facts = choose_cross_fitted(
        qrels,
        collected,
        folds=folds,
        candidates=max(settings.default_candidates, 10),
        seconds=seconds,
        default=default_blend(settings),
    )
    write_calibration(output_dir, best, facts, index=run.alias)
    gain = facts["chosen_gain"]
    log(
        f"cross-fitted blend on {len(collected)} queries ({folds} folds, {seconds:.0f} s): weight {best.weight}, depth "
        f"{best.depth}, {best.normalization} (nDCG@10 {gain['ndcg@10']}, hybrid {facts['hybrid_alone']}, confirming "
        f"half's gain {gain['gain_confirming']} with lower bound {gain['gain_confirming_lower']}); "
        f"{verdict_line(facts, NEXT_SOURCE)}"
    )
    return facts
