"""The pure parts of the cross-fitted blend: folds, merging out-of-fold scores, the choice."""

import random

import pytest

from rrsearch.core.errors import TrainingError
from rrsearch.evaluation.tuning import Scored
from rrsearch.training.crossfit import assign_folds, choose_cross_fitted, judged_qrels, merge_out_of_fold
from rrsearch.training.judgments import TrainingQuery


def test_folds_are_balanced_stable_and_independent_of_order():
    ids = [str(i) for i in range(101)]
    folds = assign_folds(ids, 2)
    assert set(folds) == set(ids)
    sizes = [list(folds.values()).count(f) for f in (0, 1)]
    assert sorted(sizes) == [50, 51]
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    assert assign_folds(shuffled, 2) == folds
    three = assign_folds(ids, 3)
    assert sorted(list(three.values()).count(f) for f in range(3)) == [33, 34, 34]
    # not just the input order dealt round-robin
    assert [folds[i] for i in ids[:10]] != [i % 2 for i in range(10)]


def test_folds_refuse_too_few_queries_or_folds():
    with pytest.raises(ValueError, match="at least 2 folds"):
        assign_folds(["a", "b"], 1)
    with pytest.raises(TrainingError, match="1 judged queries cannot fill 2 folds"):
        assign_folds(["a"], 2)


def test_merge_keeps_every_query_once_and_loses_none():
    a = {"q1": [Scored("d1", 1.0, 0.5)]}
    b = {"q2": [Scored("d2", 1.0, 0.2)]}
    merged = merge_out_of_fold([a, b], {"q1", "q2"})
    assert merged == {**a, **b}
    with pytest.raises(TrainingError, match="q1 was scored by two fold models"):
        merge_out_of_fold([a, a], {"q1"})
    with pytest.raises(TrainingError, match=r"1 judged query\(ies\) have no out-of-fold score, e.g. \['q3'\]"):
        merge_out_of_fold([a, b], {"q1", "q2", "q3"})


def test_judged_qrels_keep_queries_judged_by_id():
    queries = [TrainingQuery("q1", "a", ["d1", "d2"]), TrainingQuery("q2", "b", [], [], ["a text"])]
    assert judged_qrels(queries) == {"q1": {"d1": 1, "d2": 1}}


def _collected(n: int, *, helpful: bool, seed: int = 0) -> tuple[dict, dict]:
    """``n`` queries of 20 candidates; helpful: the fused order puts the positive at rank 6 and
    the cross-encoder first; else the fused order puts it first and the cross-encoder scores at
    random (so any weight can only lose)."""
    rng = random.Random(seed)
    qrels, collected = {}, {}
    for q in range(n):
        qid = f"q{q}"
        docs = [f"{qid}-d{i}" for i in range(20)]
        positive = 5 if helpful else 0
        qrels[qid] = {docs[positive]: 1}
        rerank = [rng.random() for _ in docs]
        if helpful:
            rerank[positive] = 2.0
        collected[qid] = [Scored(doc, 1.0 / (60 + rank), score) for rank, (doc, score) in enumerate(zip(docs, rerank))]
    return qrels, collected


def test_a_reranker_that_helps_on_every_out_of_fold_query_gets_weight():
    qrels, collected = _collected(200, helpful=True)
    best, facts = choose_cross_fitted(qrels, collected, folds=2, candidates=20, seconds=12.34)
    assert best.weight > 0
    assert facts["chosen_on"]["queries"] == 200 and facts["chosen_on"]["folds"] == 2
    assert facts["chosen_on"]["fold_seconds"] == 12.3
    assert facts["chosen_gain"]["gain_confirming_lower"] > 0
    assert facts["chosen_gain"]["ndcg@10"] > facts["hybrid_alone"]


def test_a_noise_reranker_stays_at_weight_zero():
    qrels, collected = _collected(200, helpful=False, seed=1)
    best, facts = choose_cross_fitted(qrels, collected, folds=2, candidates=20)
    assert best.weight == 0
    assert facts["chosen_gain"]["ndcg@10"] == facts["hybrid_alone"]
