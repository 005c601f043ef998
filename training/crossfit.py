"""Cross-fitted blend: every judged training query gets an out-of-sample reranker score.

Holding out 10% of the judged queries to confirm a blend leaves too few to see a real gain
(on SciFact: 40 confirming queries, a +0.016 gain with a lower bound of -0.033). Cross-fitting
spends two more trainings instead: the queries are dealt into ``k`` folds (by a hash of their
ids); fold ``i``'s model trains on the other folds and scores fold ``i``'s queries. Every
judged query then has candidates scored by a model that never saw it, and the blend is chosen
and confirmed on all of them by the rule of ``evaluation/tuning.py`` (the best mean gain on
one hash half, kept only when the other half's one-sided 95% bootstrap lower bound of the gain
is above 0; else weight 0). The model that is served trains on every query with the same
recipe and carries that choice (``rrs_rerank.json``).

The pure parts (:func:`assign_folds`, :func:`merge_out_of_fold`, :func:`choose_cross_fitted`)
are unit-tested; :func:`cross_fit_scores` trains and scores.

Example::

    collected, qrels = cross_fit_scores(queries, mined, titles, config, work_dir, folds=2, ...)
    best, facts = choose_cross_fitted(qrels, collected, folds=2, seconds=...)
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rrsearch.core.errors import TrainingError

WORK_DIR = ".crossfit"  # inside the output folder while the fold models exist


def assign_folds(query_ids: Sequence[str], folds: int) -> dict[str, int]:
    """Query id -> fold (pure): ids ordered by a hash of the id and dealt round-robin, so folds
    differ in size by at most one, and a query's fold depends neither on the input order nor
    on the machine."""
    if folds < 2:
        raise ValueError("cross-fitting needs at least 2 folds")
    ranked = sorted(set(query_ids), key=lambda qid: hashlib.sha256(f"fold:{qid}".encode()).hexdigest())
    if len(ranked) < folds:
        raise TrainingError(f"{len(ranked)} judged queries cannot fill {folds} folds")
    return {qid: position % folds for position, qid in enumerate(ranked)}


def merge_out_of_fold(per_fold: Sequence[Mapping[str, list]], expected: set[str]) -> dict[str, list]:
    """One collection of out-of-fold scores from each fold's (pure); every expected query
    exactly once, or an error naming the first that is not (nothing is dropped silently)."""
    merged: dict[str, list] = {}
    for fold, collected in enumerate(per_fold):
        for qid, entries in collected.items():
            if qid in merged:
                raise TrainingError(f"query {qid} was scored by two fold models (fold {fold} again)")
            merged[qid] = list(entries)
    missing = expected - set(merged)
    if missing:
        raise TrainingError(f"{len(missing)} judged query(ies) have no out-of-fold score, e.g. {sorted(missing)[:3]}")
    return merged


def choose_cross_fitted(
    qrels: dict[str, dict[str, int]],
    collected: dict[str, list],
    *,
    folds: int,
    candidates: int,
    seconds: float | None = None,
    default=None,
):
    """The blend chosen and confirmed on every query's out-of-fold scores (pure; the rule is
    ``tuning.choose``'s, with its verdict against the ``default`` blend), with how it was chosen
    in ``chosen_on``."""
    from rrsearch.evaluation.tuning import choose

    chosen_on = {
        "split": f"cross-fitted ({folds} folds): every judged training query, each scored by a model "
        f"that did not train on it",
        "queries": len(collected),
        "folds": folds,
        "candidates": candidates,
    }
    if seconds is not None:
        chosen_on["fold_seconds"] = round(seconds, 1)
    return choose(qrels, collected, chosen_on, default=default)


def judged_qrels(queries) -> dict[str, dict[str, int]]:
    """Query id -> {positive document id: 1} for the queries judged by document id."""
    return {query.id: dict.fromkeys(query.positive_ids, 1) for query in queries if query.positive_ids}


def cross_fit_scores(
    queries,
    mined,
    titles,
    training,
    work_dir: Path,
    *,
    folds: int,
    settings,
    alias: str,
    depth: int,
    es,
    bi_encoder,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, list], dict[str, dict[str, int]]]:
    """Train one model per fold on the other folds' queries (plus every title query), score its
    own fold's queries with it (every candidate kept with its fused and cross-encoder score),
    and return the merged out-of-fold scores with the qrels they are judged by."""
    from tqdm import tqdm

    from rrsearch.core.onnx_cache import forget_export
    from rrsearch.evaluation.dataset import Dataset
    from rrsearch.evaluation.offline import open_pipeline
    from rrsearch.evaluation.tuning import collect
    from rrsearch.training.reranker import train_reranker

    qrels = judged_qrels(queries)
    if not qrels:
        raise TrainingError("cross-fitting needs judgments by document id (a BEIR folder); none found")
    fold_of = assign_folds(list(qrels), folds)
    candidates = max(settings.default_candidates, 10)
    texts = {query.id: query.text for query in queries}
    per_fold = []
    work_dir = Path(work_dir)
    for fold in range(folds):
        own = {qid for qid, f in fold_of.items() if f == fold}
        train = [query for query in mined if query.id not in own]
        fold_dir = work_dir / f"fold-{fold}"
        log(f"cross-fit fold {fold + 1}/{folds}: training on {len(train)} queries, scoring {len(own)}")
        started = time.perf_counter()
        train_reranker(train, training, fold_dir, extra_train=titles, progress=progress, log=log)
        dataset = Dataset(
            root=work_dir,
            corpus_path=work_dir,
            split=f"fold-{fold}",
            queries={qid: texts[qid] for qid in sorted(own)},
            qrels={qid: qrels[qid] for qid in own},
        )
        with (
            open_pipeline(
                settings, alias=alias, depth=max(depth, candidates), es=es, bi_encoder=bi_encoder, reranker=fold_dir
            ) as offline,
            tqdm(total=len(own), desc=f"score fold {fold + 1}", unit="q", disable=not progress) as bar,
        ):
            per_fold.append(collect(offline.pipeline, dataset, candidates=candidates, index=alias, progress=bar))
        forget_export("cross-encoder", fold_dir, settings.home)  # the fold's int8 export (~110 MB) goes with it
        log(f"fold {fold + 1}/{folds} done in {time.perf_counter() - started:.0f} s")
    shutil.rmtree(work_dir, ignore_errors=True)
    return merge_out_of_fold(per_fold, set(qrels)), qrels
