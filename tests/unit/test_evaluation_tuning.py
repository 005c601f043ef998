"""The blend is chosen only on evidence: a gain whose bootstrap lower bound is above zero."""

import random

from rrsearch.evaluation.tuning import Scored, gain_lower_bound, halves, tune


def test_lower_bound_sits_below_the_mean_and_above_zero_only_for_a_steady_gain():
    steady = [0.05] * 40 + [0.0] * 10
    assert 0 < gain_lower_bound(steady) < sum(steady) / len(steady)
    coin = [0.3, -0.3] * 10 + [0.05]  # a mean of +0.002 that is all noise
    assert gain_lower_bound(coin) < 0
    assert gain_lower_bound([]) == 0.0
    assert gain_lower_bound(coin, seed=1) == gain_lower_bound(coin, seed=1)  # seeded: the same choice every run


def _queries(n, helpful: bool, seed=0):
    """Each query: 10 candidates, the relevant one at fused rank 4; the cross-encoder finds it
    (helpful) or scores at random."""
    rng = random.Random(seed)
    qrels, collected = {}, {}
    for q in range(n):
        qid = f"q{q}"
        qrels[qid] = {f"{qid}-d3": 1}
        collected[qid] = [Scored(f"{qid}-d{i}", fused=1.0 / (i + 1),
                                 rerank=(5.0 if i == 3 else rng.random()) if helpful else rng.random())
                          for i in range(10)]
    return qrels, collected


def test_a_reranker_that_finds_the_answer_is_given_weight():
    chosen, grid = tune(*_queries(30, helpful=True))
    assert chosen.weight > 0
    row = next(r for r in grid if (r["weight"], r["depth"], r["normalization"])
               == (chosen.weight, chosen.depth, chosen.normalization))
    assert row["gain_choosing"] > 0 and row["gain_confirming_lower"] > 0


def test_a_random_reranker_is_given_none_even_when_a_setting_looks_better_by_luck():
    qrels, collected = _queries(12, helpful=False, seed=3)
    chosen, grid = tune(qrels, collected)
    lucky = max(grid, key=lambda row: row["gain_choosing"])
    assert lucky["weight"] > 0 and lucky["gain_choosing"] > 0  # the best-looking setting gained, by luck
    assert lucky["gain_confirming_lower"] <= 0 and chosen.weight == 0.0  # the other half does not confirm it


def test_halves_are_stable_disjoint_and_even():
    ids = [f"q{i}" for i in range(81)]
    first, second = halves(ids)
    assert (len(first), len(second)) == (41, 40) and not set(first) & set(second)
    assert halves(reversed(ids)) == (first, second)
