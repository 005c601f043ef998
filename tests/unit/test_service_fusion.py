import math

import pytest

from rrsearch.service import fusion


def test_rrf_sums_reciprocal_ranks():
    fused = dict(fusion.rrf({"bm25": ["a", "b"], "knn": ["b", "c"]}, k=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["c"] == pytest.approx(1 / 62)


def test_rrf_orders_best_first_and_breaks_ties_by_first_appearance():
    ranked = [doc for doc, _ in fusion.rrf({"bm25": ["a", "b"], "knn": ["c", "d"]}, k=1)]
    assert ranked == ["a", "c", "b", "d"]


def test_rrf_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        fusion.rrf({"x": ["a"]}, k=0)


def test_minmax_and_zscore():
    assert fusion.normalize([1.0, 3.0, 2.0], "minmax") == [0.0, 1.0, 0.5]
    z = fusion.normalize([1.0, 2.0, 3.0], "zscore")
    assert sum(z) == pytest.approx(0.0)
    assert math.sqrt(sum(v * v for v in z) / 3) == pytest.approx(1.0)
    assert fusion.normalize([5.0, 5.0], "minmax") == [1.0, 1.0]
    assert fusion.normalize([5.0, 5.0], "zscore") == [0.0, 0.0]
    with pytest.raises(ValueError, match="unknown normalization 'l2'; use 'minmax' or 'zscore'"):
        fusion.normalize([1.0], "l2")


def test_linear_weight_picks_the_list():
    bm25 = [("a", 10.0), ("b", 5.0), ("c", 1.0)]
    knn = [("c", 0.9), ("b", 0.8), ("a", 0.1)]
    assert [d for d, _ in fusion.linear(bm25, knn, weight=0.0)] == ["a", "b", "c"]
    assert [d for d, _ in fusion.linear(bm25, knn, weight=1.0)] == ["c", "b", "a"]


def test_linear_missing_document_gets_the_lists_floor():
    fused = dict(fusion.linear([("a", 2.0), ("b", 1.0)], [("c", 1.0), ("a", 0.0)], weight=0.5, method="minmax"))
    # c is missing from BM25: it gets BM25's lowest normalised score (0), plus 0.5 * 1.0 from kNN.
    assert fused["c"] == pytest.approx(0.5)
    assert fused["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert fused["b"] == pytest.approx(0.0 + 0.5 * 0.0)


def test_linear_zscore_is_scale_free():
    small = fusion.linear([("a", 2.0), ("b", 1.0)], [("b", 0.2), ("a", 0.1)], weight=0.5, method="zscore")
    large = fusion.linear([("a", 200.0), ("b", 100.0)], [("b", 0.2), ("a", 0.1)], weight=0.5, method="zscore")
    assert [d for d, _ in small] == [d for d, _ in large]
    assert dict(small)["a"] == pytest.approx(dict(large)["a"])


def test_linear_rejects_bad_weight():
    with pytest.raises(ValueError, match=r"weight must be in \[0, 1\], got 1\.5"):
        fusion.linear([], [], weight=1.5)
