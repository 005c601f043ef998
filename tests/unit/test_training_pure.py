"""Pure parts of reranker training: picking negatives, the held-out split, training rows,
evaluator samples, the model card."""

import random

import pytest

from rrsearch.core.console import load_settings
from rrsearch.core.settings import Settings
from rrsearch.training.fit import default_eval_steps, listwise_rows, split_heldout, strip_prefix
from rrsearch.training.mining import MinedQuery, MiningConfig, _matches, normalize_text, pick_negatives
from rrsearch.training.reranker import TrainConfig, TrainingError, heldout_samples, pair_rows, with_recipe
from rrsearch.training.reranker_card import render_model_card, write_model_card
from rrsearch.training.run import mining_config_from

RANKED = [f"d{i}" for i in range(1, 21)]  # d1 is rank 1


def pick(excluded=frozenset({"d2"}), **overrides):
    args = {"min_rank": 1, "max_rank": 10, "count": 3, "sampling": "top", "rng": random.Random(0)}
    args.update(overrides)
    return pick_negatives(RANKED, set(excluded), **args)


def test_top_sampling_takes_the_best_ranked_non_positives():
    assert pick() == ["d1", "d3", "d4"]


def test_rank_range_is_inclusive_and_one_based():
    assert pick(min_rank=5, max_rank=7, count=10) == ["d5", "d6", "d7"]


def test_random_sampling_is_seeded_within_the_range_and_keeps_rank_order():
    first = pick(sampling="random", rng=random.Random(7), count=4)
    again = pick(sampling="random", rng=random.Random(7), count=4)
    assert first == again
    assert len(first) == 4 and "d2" not in first
    assert all(int(doc[1:]) <= 10 for doc in first)
    assert first == sorted(first, key=lambda d: int(d[1:]))
    others = {tuple(pick(sampling="random", rng=random.Random(seed), count=4)) for seed in range(20)}
    assert len(others) > 1  # the sample does move with the seed


def test_fewer_candidates_than_asked_returns_them_all():
    assert pick_negatives(
        ["a", "b", "c"], {"b"}, min_rank=1, max_rank=30, count=8, sampling="random", rng=random.Random(0)
    ) == ["a", "c"]


def test_zero_negatives_and_unknown_sampling():
    assert pick(count=0) == []
    with pytest.raises(ValueError, match="unknown sampling"):
        pick(sampling="best")


def test_mining_config_rejects_an_empty_rank_range():
    with pytest.raises(ValueError, match="rank range 5..3 is empty"):
        MiningConfig(min_rank=5, max_rank=3)
    with pytest.raises(ValueError, match="rank range"):
        MiningConfig(min_rank=0)


def test_mining_config_comes_from_settings_with_overrides():
    config = mining_config_from(Settings(train_negatives=4, train_max_rank=50), max_rank=20)
    assert (config.negatives, config.min_rank, config.max_rank, config.sampling) == (4, 1, 20, "random")


def test_given_positive_is_recognised_in_a_hit_either_way_round():
    given = {normalize_text("Glaciers  carve U-shaped VALLEYS.")}
    assert _matches("glaciers carve u-shaped valleys.", given)
    assert _matches("Intro sentence. Glaciers carve U-shaped valleys. More.", given)  # positive inside the passage
    assert _matches("carve u-shaped", given)  # a passage of the positive
    assert not _matches("Bees dance to show where nectar is.", given)
    assert not _matches("   ", given)


def mined(n, negatives=2):
    return [
        MinedQuery(
            id=f"q{i}",
            query=f"query {i}",
            positives=[f"pos {i}"],
            negatives=[f"neg {i}.{j}" for j in range(negatives)],
            ranked=[f"neg {i}.0", f"pos {i}", f"neg {i}.1"],
        )
        for i in range(n)
    ]


def test_heldout_split_is_seeded_disjoint_and_complete():
    queries = mined(20)
    train, held = split_heldout(queries, 0.1, seed=3)
    assert len(held) == 2 and len(train) == 18
    assert {q.id for q in train} | {q.id for q in held} == {q.id for q in queries}
    assert not {q.id for q in train} & {q.id for q in held}
    assert split_heldout(queries, 0.1, seed=3)[1] == held
    assert split_heldout(queries, 0.1, seed=4)[1] != held or split_heldout(queries, 0.1, seed=5)[1] != held


def test_heldout_split_edge_cases():
    assert split_heldout(mined(3), 0.0, seed=0) == (mined(3), [])
    train, held = split_heldout(mined(3), 0.01, seed=0)
    assert len(held) == 1 and len(train) == 2  # at least one held out when asked for
    train, held = split_heldout(mined(2), 0.9, seed=0)
    assert len(train) == 1  # never all of them
    assert split_heldout(mined(1), 0.5, seed=0) == (mined(1), [])
    with pytest.raises(TrainingError, match="no training queries"):
        split_heldout([], 0.1, seed=0)


def test_pair_rows_label_positives_one_and_negatives_zero():
    rows = pair_rows(mined(2, negatives=2))
    assert rows["query"] == ["query 0"] * 3 + ["query 1"] * 3
    assert rows["passage"][:3] == ["pos 0", "neg 0.0", "neg 0.1"]
    assert rows["label"] == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]


def test_listwise_rows_have_equal_columns_and_never_use_a_positive_as_negative():
    queries = mined(3, negatives=1)
    queries[0].positives.append("pos 0 bis")
    rows = listwise_rows(queries, negatives=2, seed=0)
    assert set(rows) == {"query", "positive", "negative_1", "negative_2"}
    assert len(rows["query"]) == 4  # one row per positive
    assert all(len(column) == 4 for column in rows.values())
    assert rows["negative_1"][:2] == ["neg 0.0", "neg 0.0"]  # own hard negative first
    for i, query in enumerate(rows["query"]):
        own_positives = {p for q in queries if q.query == query for p in q.positives}
        assert rows["negative_2"][i] not in own_positives


def test_heldout_samples_use_first_stage_lists_cut_to_depth():
    queries = mined(2)
    queries[1].ranked = []
    samples = heldout_samples(queries, depth=2)
    assert samples[0] == {"query": "query 0", "positive": ["pos 0"], "documents": ["neg 0.0", "pos 0"]}
    assert samples[1] == {"query": "query 1", "positive": ["pos 1"], "negative": ["neg 1.0", "neg 1.1"]}


def test_default_eval_steps_and_metric_prefix():
    assert default_eval_steps(rows=1000, batch_size=16, epochs=1) == 16  # 63 steps / 4
    assert default_eval_steps(rows=3, batch_size=16, epochs=1) == 1
    assert strip_prefix({"heldout_ndcg@10": 0.51234, "heldout_base_map": 0.2, "other": 1}, "heldout_") == {
        "ndcg@10": 0.5123,
        "base_map": 0.2,
    }


def test_train_config_from_settings_prefers_overrides():
    config = TrainConfig.from_settings(Settings(train_epochs=2, train_loss="mnrl"), epochs=3, seed=None)
    assert (config.epochs, config.loss, config.seed, config.max_length) == (3, "mnrl", 42, 128)


FACTS = {
    "name": "my-reranker",
    "date": "2026-11-26 12:00 UTC",
    "base_model": "all-MiniLM-L6-v2",
    "data": {
        "source": "/data/scifact",
        "format": "BEIR (train split)",
        "queries": 809,
        "alias": "scifact",
        "index": "scifact-v1",
        "dropped_missing": 0,
    },
    "mining": {
        "negatives": 8,
        "min_rank": 1,
        "max_rank": 30,
        "sampling": "random",
        "seed": 42,
        "mined_total": 6400,
        "seconds": 31.5,
    },
    "result": {
        "output_dir": "/models/my-reranker",
        "config": TrainConfig().__dict__ | {"eval_fraction": 0.1},
        "device": "cpu",
        "precision": "fp32",
        "train_queries": 728,
        "heldout_queries": 81,
        "train_rows": 7300,
        "steps": 457,
        "seconds": 1234.5,
        "stopped_early": False,
        "best_step": 400,
        "first_stage": {"ndcg@10": 0.61},
        "before": {"ndcg@10": 0.2},
        "after": {"ndcg@10": 0.66},
        "eval_history": [],
    },
}


def test_model_card_names_base_data_settings_metrics_and_date(tmp_path):
    card = render_model_card(FACTS)
    assert "base_model: all-MiniLM-L6-v2" in card
    assert "2026-11-26 12:00 UTC" in card
    assert "| judgments | /data/scifact |" in card
    assert "| hybrid rank range | 1..30 |" in card
    assert "| loss | bce |" in card and "| training time (s) | 1234.5 |" in card
    assert "| ndcg@10 | 0.6100 | 0.2000 | 0.6600 |" in card
    assert 'CrossEncoder("/models/my-reranker")' in card
    path = write_model_card(tmp_path, FACTS)
    assert path.read_text() == card
    assert (tmp_path / "training.json").exists()


def test_model_card_without_heldout_says_nothing_was_measured():
    facts = {**FACTS, "result": {**FACTS["result"], "first_stage": {}, "before": {}, "after": {}}}
    assert "nothing was measured" in render_model_card(facts)


def test_title_queries_draw_is_seeded_skips_excluded_and_ignores_input_order():
    from rrsearch.training.pseudo_queries import draw

    documents = {f"d{i}": (f"title {i}", f"text {i}") for i in range(20)}
    reversed_documents = dict(reversed(list(documents.items())))
    first = draw(documents, 5, exclude={"d3", "d4"}, seed=7)
    assert len(first) == len(set(first)) == 5 and not {"d3", "d4"} & set(first)
    assert draw(reversed_documents, 5, exclude={"d3", "d4"}, seed=7) == first
    assert draw(documents, 5, exclude={"d3", "d4"}, seed=8) != first
    assert sorted(draw(documents, 50, exclude={"d0"}, seed=7)) == sorted(set(documents) - {"d0"})  # all that is left
    with pytest.raises(ValueError, match="title_queries"):
        MiningConfig(title_queries=-1)


def test_recipe_auto_is_quick_on_cpu_and_changes_nothing():
    settings = with_recipe(Settings(device="cpu"))
    assert settings.train_recipe == "quick"
    config = TrainConfig.from_settings(settings)
    assert (config.recipe, config.max_length, config.epochs) == ("quick", 128, 2.0)
    assert mining_config_from(settings).negatives == 6
    assert settings.train_cross_fit is False


def test_recipe_auto_is_strong_on_a_gpu_for_every_setting_nobody_chose():
    settings = with_recipe(Settings(device="cuda", train_epochs=1))  # as an option or RRS_TRAIN_EPOCHS would
    config = TrainConfig.from_settings(settings)
    assert config.recipe == "strong"
    assert (config.max_length, config.batch_size, config.learning_rate) == (256, 64, 3e-5)
    assert config.epochs == 1  # chosen, so kept
    mining = mining_config_from(settings)
    assert (mining.negatives, mining.sampling, mining.title_queries) == (16, "random", 0)
    assert settings.train_cross_fit is True


def test_recipe_strong_applies_on_cpu_and_keeps_what_the_environment_set(monkeypatch):
    monkeypatch.setenv("RRS_TRAIN_NEGATIVES", "4")
    settings = with_recipe(load_settings(train_recipe="strong", device="cpu", train_max_length=192))
    config = TrainConfig.from_settings(settings)
    assert (config.recipe, config.max_length, config.epochs) == ("strong", 192, 3.0)
    assert mining_config_from(settings).negatives == 4


def test_recipe_quick_on_a_gpu_keeps_the_quick_defaults():
    settings = with_recipe(Settings(device="cuda", train_recipe="quick"))
    assert (TrainConfig.from_settings(settings).max_length, mining_config_from(settings).negatives) == (128, 6)


def test_a_blend_chosen_on_the_held_out_queries_gets_twice_the_slice_unless_one_was_set(monkeypatch):
    from rrsearch.core.settings import BLEND_HELDOUT_FRACTION
    from rrsearch.training.reranker import with_blend_heldout

    quick = with_recipe(Settings(device="cpu"))
    assert quick.train_eval_fraction == 0.1
    tuned = with_blend_heldout(quick, tuned_on_heldout=True)
    assert tuned.train_eval_fraction == BLEND_HELDOUT_FRACTION == 0.2
    assert TrainConfig.from_settings(tuned).eval_fraction == 0.2
    # no tuning (--no-tune, the demo) or a cross-fitted blend: the held-out slice only evaluates
    assert with_blend_heldout(quick, tuned_on_heldout=False).train_eval_fraction == 0.1
    # an option or RRS_TRAIN_EVAL_FRACTION is kept
    assert with_blend_heldout(load_settings(train_eval_fraction=0.1), tuned_on_heldout=True).train_eval_fraction == 0.1
    monkeypatch.setenv("RRS_TRAIN_EVAL_FRACTION", "0.15")
    assert with_blend_heldout(load_settings(), tuned_on_heldout=True).train_eval_fraction == 0.15
