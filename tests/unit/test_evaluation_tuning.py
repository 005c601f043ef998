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
        collected[qid] = [
            Scored(
                f"{qid}-d{i}",
                fused=1.0 / (i + 1),
                rerank=(5.0 if i == 3 else rng.random()) if helpful else rng.random(),
            )
            for i in range(10)
        ]
    return qrels, collected


def test_a_reranker_that_finds_the_answer_is_given_weight():
    chosen, grid = tune(*_queries(30, helpful=True))
    assert chosen.weight > 0
    row = next(
        r
        for r in grid
        if (r["weight"], r["depth"], r["normalization"]) == (chosen.weight, chosen.depth, chosen.normalization)
    )
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


# --- offline orchestration (evaluation/offline.py) -------------------------------------------


def test_offline_settings_lift_the_live_guards_up_to_the_depth():
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.offline import OFFLINE_RERANK_TIMEOUT_MS, offline_settings

    base = Settings(max_top_k=50, max_candidates=80, knn_num_candidates=90, window_cache_size=16)
    job = offline_settings(base, depth=300, alias="scifact")
    assert (job.max_top_k, job.max_candidates, job.knn_num_candidates) == (300, 300, 300)
    assert job.window_cache_size == 0 and job.rerank_timeout_ms == OFFLINE_RERANK_TIMEOUT_MS
    assert job.index_alias == "scifact"
    shallow = offline_settings(base, depth=10)
    assert (shallow.max_top_k, shallow.max_candidates, shallow.knn_num_candidates) == (50, 80, 90)  # never lowered
    assert shallow.index_alias == base.index_alias


def test_library_modules_neither_exit_nor_use_click():
    """Only the commands (cli.py) parse options, print and exit; the rest raises core.errors."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in [*(root / "evaluation").glob("*.py"), *(root / "training").glob("*.py")]:
        if path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.name} imports {n}" for n in names if n.split(".")[0] == "click" or n == "rrsearch.core.console"
            ]
            if isinstance(node, ast.Attribute) and node.attr == "exit" and getattr(node.value, "id", "") == "sys":
                offenders.append(f"{path.name} calls sys.exit")
    assert offenders == []


# --- which queries trained a model (issue 26) ------------------------------------------------


def _collection(root, queries, qrels_split="train"):
    """A BEIR folder with ``queries`` (id -> text), each judged in ``qrels_split``; its Dataset."""
    import json

    from rrsearch.evaluation.dataset import Dataset

    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "t", "text": "x"}) + "\n")
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (root / "qrels" / f"{qrels_split}.tsv").write_text("".join(f"{q}\td1\t1\n" for q in queries))
    return Dataset(root, root / "corpus.jsonl", dict(queries), {q: {"d1": 1} for q in queries}, qrels_split)


def _trained_model(folder, collection, trained: dict[str, str]):
    """A model folder whose training.json is what ``rrs train-reranker`` writes for ``trained``."""
    import json
    from types import SimpleNamespace

    from rrsearch.training.run import collection_fingerprint, trained_queries_facts

    folder.mkdir()
    items = [SimpleNamespace(id=q, query=t) for q, t in trained.items()]
    data = {"source": collection.root.name, **trained_queries_facts(collection_fingerprint(collection.root, []), items)}
    (folder / "training.json").write_text(json.dumps({"data": data}))
    return folder


A = {str(i): f"claim {i} about cells" for i in range(1, 11)}
B = {str(i): f"question {i} about stars" for i in range(1, 226)}  # ids 1..225 again, other texts


def test_only_the_same_query_of_the_same_collection_counts_as_trained_on(tmp_path):
    from rrsearch.evaluation.offline import trained_on

    collection_a = _collection(tmp_path / "a", A)
    trained = {q: A[q] for q in ("1", "2", "3", "4", "5", "6", "7")}
    model = _trained_model(tmp_path / "model", collection_a, trained)

    other = trained_on(model, _collection(tmp_path / "b", B))
    assert other.ids == frozenset() and other.warning is None
    assert other.reason.startswith("none of the 225 queries") and "another collection" in other.reason

    own = trained_on(model, collection_a)
    assert own.ids == frozenset(trained) and own.reason.startswith("7 of the 10 queries")
    assert "the collection it was trained on (a)" in own.reason

    # A's test split: the same collection, but queries the model never trained on
    from dataclasses import replace

    test_split = replace(
        collection_a, queries={"8": A["8"], "9": A["9"]}, qrels={"8": {"d1": 1}, "9": {"d1": 1}}, split="test"
    )
    assert trained_on(model, test_split).ids == frozenset()

    # a query with a trained id but another text is another query; the word-for-word ones are the same
    rewritten = trained_on(model, _collection(tmp_path / "a-rewritten", {**A, "1": "a rewritten claim"}))
    assert rewritten.ids == frozenset(trained) - {"1"} and "fingerprints differ" in rewritten.reason


def test_an_old_training_json_trusts_its_ids_only_for_its_own_source_folder(tmp_path):
    import json

    from rrsearch.evaluation.offline import trained_on

    collection_a, collection_b = _collection(tmp_path / "a", A), _collection(tmp_path / "b", B)
    model = tmp_path / "old-model"
    model.mkdir()
    (model / "training.json").write_text(
        json.dumps({"data": {"source": str(collection_a.root), "trained_query_ids": ["1", "2", "3"]}})
    )
    own = trained_on(model, collection_a)
    assert own.ids == {"1", "2", "3"} and "predates query fingerprints" in own.warning
    other = trained_on(model, collection_b)
    assert other.ids == frozenset() and "ids alone cannot tell" in other.reason and other.warning
    assert trained_on(tmp_path, collection_b).ids == frozenset()  # no training.json at all


def test_tuning_refuses_a_split_made_only_of_trained_queries(tmp_path):
    import pytest

    from rrsearch.core.errors import DatasetError
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.offline import tune_reranker

    collection_a = _collection(tmp_path / "a", A)
    model = _trained_model(tmp_path / "model", collection_a, A)
    with pytest.raises(DatasetError, match="every query of the train split trained"):
        tune_reranker(Settings(), collection_a, index_alias="unused", candidates=10, reranker_name=str(model))
