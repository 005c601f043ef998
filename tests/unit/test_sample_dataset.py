"""The sample corpus is a judged dataset (BEIR layout): the demo trains its reranker on the train
split, and `rrs eval sample` reads both splits. Every judgment must point at a real passage."""

from __future__ import annotations

from rrsearch.evaluation.dataset import load_dataset


def test_the_sample_is_a_judged_dataset_with_disjoint_splits(repo_root):
    train = load_dataset(repo_root / "sample", "train")  # checks every judged id against the corpus
    test = load_dataset(repo_root / "sample", "test")
    assert (len(train.queries), len(test.queries)) == (28, 12)
    assert not set(train.queries) & set(test.queries)
    for dataset in (train, test):
        assert all(max(grades.values()) == 2 for grades in dataset.qrels.values())  # each has an answer
