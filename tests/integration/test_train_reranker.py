"""`rrs train-reranker` end to end on a real node: a handful of documents ingested by the
real ingest code into a fresh alias, judgments written by the test, a tiny random
cross-encoder as the base, one short epoch. Proves mining (negatives come from the
hybrid first stage and never include a judged positive), training, saving, loading by
path, and that the loaded model reorders the candidates; bad inputs fail early."""

import json
from types import SimpleNamespace

import beir_corpus
import pytest
from click.testing import CliRunner

from rrsearch.rrs.cli import main
from rrsearch.training.judgments import load_judgments
from rrsearch.training.mining import MiningConfig, MiningError, check_index, first_passages, mine, search_request
from rrsearch.training.reranker import TrainConfig
from rrsearch.training.reranker_run import run_training

DOCS = beir_corpus.DOCS
QUERIES = [
    ("q1", "how do bees tell the hive where flowers are"),
    ("q2", "opening moves in chess"),
    ("q3", "algae living inside corals"),
    ("q4", "lava from volcanoes"),
    ("q5", "glaciers shaping valleys"),
    ("q6", "bread leavened with wild yeast"),
    ("q7", "pollination by bumblebees"),
    ("q8", "fish eating algae on reefs"),
]
QRELS = [
    ("q1", "d2", 1),
    ("q2", "d5", 1),
    ("q3", "d6", 1),
    ("q4", "d1", 1),
    ("q4", "d8", 1),
    ("q5", "d3", 1),
    ("q6", "d4", 1),
    ("q6", "d9", 0),
    ("q7", "d7", 1),
    ("q8", "d12", 1),
]
TEXTS = {doc: f"{title}. {text}" for doc, title, text in DOCS}


def write_beir(root, qrels=QRELS):
    return beir_corpus.write_beir(root, queries=QUERIES, qrels=qrels, split="train")


@pytest.fixture
def corpus_alias(es, es_settings, alias, tmp_path):
    """A fresh alias holding DOCS, ingested by the real ingest pipeline."""
    from rrsearch.ingest.pipeline import run_ingest

    corpus = write_beir(tmp_path / "data") / "corpus.jsonl"
    report = run_ingest([corpus], es_settings, alias=alias, progress=False, es=es)
    assert report.documents == len(DOCS)
    es.indices.refresh(index=alias)
    return alias


def search_pipeline(es_settings, es, bi_encoder, alias, reranker=None):
    from rrsearch.service.pipeline import SearchPipeline

    settings = es_settings.model_copy(
        update={"index_alias": alias, "window_cache_size": 0, "rerank_timeout_ms": 600_000.0}
    )
    return SearchPipeline(settings, es, bi_encoder, reranker)


def test_mining_takes_hybrid_results_minus_the_judged_positives(es, es_settings, bi_encoder, corpus_alias, tmp_path):
    queries = load_judgments(write_beir(tmp_path / "data"), "train")
    assert check_index(es, corpus_alias, queries) == set()
    pipeline = search_pipeline(es_settings, es, bi_encoder, corpus_alias)
    config = MiningConfig(negatives=3, min_rank=1, max_rank=6, sampling="top", seed=1)
    mined = {m.id: m for m in mine(pipeline, queries, config=config, depth=10, progress=False)}
    assert set(mined) == {q for q, _ in QUERIES}
    for query_id, text in QUERIES:
        item = mined[query_id]
        positives = {TEXTS[d] for q, d, s in QRELS if q == query_id and s > 0}
        judged_negatives = {TEXTS[d] for q, d, s in QRELS if q == query_id and s == 0}
        assert item.query == text
        assert set(item.positives) == positives
        assert not set(item.negatives) & positives
        assert judged_negatives <= set(item.negatives)
        assert item.mined == 3  # 12 documents: always three non-positives in the top 6
        # "top" sampling: the mined negatives are the first non-positives of the hybrid order
        response = pipeline.search(search_request(text, depth=10, candidates=100))
        hybrid = [TEXTS[hit.parent_id] for hit in response.hits]
        assert item.ranked == hybrid
        expected = [t for t in hybrid[:6] if t not in positives and t not in judged_negatives][:3]
        assert item.negatives[len(judged_negatives) :] == expected


def test_title_queries_ask_for_their_own_text_without_any_title(es, es_settings, bi_encoder, corpus_alias):
    from rrsearch.training.pseudo_queries import pseudo_queries

    pipeline = search_pipeline(es_settings, es, bi_encoder, corpus_alias)
    config = MiningConfig(negatives=2, max_rank=6, seed=1)
    made = pseudo_queries(pipeline, es, corpus_alias, count=4, config=config, exclude={"d2", "d9"}, progress=False)
    titles = {doc: (title, text) for doc, title, text in DOCS}
    assert len(made) == 4
    for item in made:
        doc = item.id.removeprefix("title:")
        title, text = titles[doc]
        assert doc not in {"d2", "d9"} and len(title.split()) >= 2  # excluded and one-word titles never drawn
        assert item.query == title and item.positives == [text]
        bodies = {other_text for other, _, other_text in DOCS if other != doc}
        assert len(item.negatives) == 2 and set(item.negatives) <= bodies  # other documents, titles left out
    again = pseudo_queries(pipeline, es, corpus_alias, count=4, config=config, exclude={"d2", "d9"}, progress=False)
    assert [(m.id, m.negatives) for m in again] == [(m.id, m.negatives) for m in made]  # seeded


def test_train_save_load_by_path_and_rerank(
    es, es_settings, bi_encoder, corpus_alias, tmp_path, tiny_cross_encoder_dir
):
    from sentence_transformers import CrossEncoder

    from rrsearch.service.rerank import load_reranker
    from rrsearch.service.schemas import SearchRequest

    output = tmp_path / "reranker"
    training = TrainConfig(
        base_model=str(tiny_cross_encoder_dir),
        epochs=1,
        batch_size=4,
        learning_rate=5e-3,
        eval_fraction=0.25,
        eval_depth=8,
        eval_steps=2,
        early_stopping_patience=0,
        seed=3,
        max_length=64,
        device="cpu",
    )
    facts = run_training(
        write_beir(tmp_path / "data"),
        es_settings,
        alias=corpus_alias,
        output_dir=output,
        mining=MiningConfig(negatives=3, max_rank=8, seed=3, title_queries=5),
        training=training,
        progress=False,
        es=es,
        bi_encoder=bi_encoder,
        log=lambda _m: None,
    )

    result = facts["result"]
    assert result["train_queries"] == 6 and result["heldout_queries"] == 2
    assert facts["mining"]["mined_total"] == 8 * 3
    # Title queries: the titled (2+ words) documents no judgment names are d9, d10, d11 -- three, not five.
    assert result["title_queries"] == facts["mining"]["title_queries_made"] == 3
    assert result["train_rows"] >= 6 * (1 + 3) + 3 * (1 + 3)  # each query: its positive(s) and three negatives
    assert result["steps"] >= 1 and result["best_step"] is not None
    assert set(result["after"]) >= {"ndcg@10", "mrr@10", "map"} and set(result["first_stage"]) >= {"ndcg@10"}
    assert [entry["step"] for entry in result["eval_history"]] == sorted(
        entry["step"] for entry in result["eval_history"]
    )
    assert not (output / ".checkpoints").exists()
    card = (output / "README.md").read_text()
    assert str(tiny_cross_encoder_dir) in card and corpus_alias in card and "Held-out metrics" in card
    assert json.loads((output / "training.json").read_text())["result"]["steps"] == result["steps"]
    # The blend was chosen on the two held-out queries and stored beside the model: one query to
    # choose on and one to confirm with cannot show a reliable gain, so the choice is weight 0.
    calibration = json.loads((output / "rrs_rerank.json").read_text())
    assert facts["blend"]["chosen_on"]["queries"] == 2 and calibration["chosen"] == {
        key: facts["blend"]["chosen_gain"][key] for key in ("weight", "depth", "normalization")
    }
    assert (
        calibration["chosen"]["weight"] == 0.0 and facts["blend"]["best"]["ndcg@10"] >= facts["blend"]["hybrid_alone"]
    )
    # training.json names the judgments by name and fingerprint, and fingerprints each trained query:
    # on its own train split, exactly the six trained queries are recognised (the two held out are not).
    from rrsearch.evaluation.dataset import dataset_fingerprint, load_dataset
    from rrsearch.evaluation.offline import trained_on
    from rrsearch.training.fit import split_heldout

    data = json.loads((output / "training.json").read_text())["data"]
    assert data["source"] == "data" and data["dataset_fingerprint"] == dataset_fingerprint(tmp_path / "data")
    assert len(data["trained_query_fingerprints"]) == len(QUERIES) - 2 and "trained_query_ids" not in data
    trained_ids, heldout_ids = (
        {q.id for q in part}
        for part in split_heldout(
            [SimpleNamespace(id=q, query=t) for q, t in QUERIES], training.eval_fraction, training.seed
        )
    )
    recognised = trained_on(output, load_dataset(tmp_path / "data", "train", check_corpus=False))
    assert recognised.ids == trained_ids and not recognised.ids & heldout_ids and len(trained_ids) == 6

    # Loadable by path with the real code, and training moved the weights.
    pairs = [(text, TEXTS[d]) for (q, text), (_, d, _) in zip(QUERIES, QRELS)]
    trained = CrossEncoder(str(output))
    base = CrossEncoder(str(tiny_cross_encoder_dir))
    assert trained.num_labels == 1
    assert trained.predict(pairs).tolist() != pytest.approx(base.predict(pairs).tolist(), abs=1e-4)

    # The service loads it by path, and its scores reorder the hybrid candidates.
    settings = es_settings.model_copy(
        update={"index_alias": corpus_alias, "rerank_timeout_ms": 600_000.0, "window_cache_size": 0}
    )
    reranker = load_reranker(str(output), settings)
    try:
        pipeline = search_pipeline(es_settings, es, bi_encoder, corpus_alias, reranker)
        changed = 0
        for _, text in QUERIES:
            plain = pipeline.search(SearchRequest(query=text, top_k=12, candidates=12, rerank=False, highlight=False))
            calibrated = pipeline.search(
                SearchRequest(query=text, top_k=12, candidates=12, rerank=True, highlight=False)
            )
            assert not calibrated.reranked and calibrated.degraded is None  # weight 0: the model is not run
            assert [h.parent_id for h in calibrated.hits] == [h.parent_id for h in plain.hits]
            ranked = pipeline.search(
                SearchRequest(query=text, top_k=12, candidates=12, rerank=True, highlight=False, rerank_weight=1.0)
            )
            assert ranked.reranked and ranked.degraded is None and ranked.blend.weight == 1.0
            scores = [hit.score for hit in ranked.hits if hit.stages.rerank]
            assert scores == sorted(scores, reverse=True)
            assert {h.parent_id for h in ranked.hits} == {h.parent_id for h in plain.hits}
            changed += [h.parent_id for h in ranked.hits] != [h.parent_id for h in plain.hits]
        assert changed >= 1
    finally:
        reranker.close()


def test_cli_trains_and_prints_heldout_figures(es, corpus_alias, tmp_path, tiny_cross_encoder_dir, cli_env):
    data = write_beir(tmp_path / "data")
    output = tmp_path / "cli-model"
    result = CliRunner().invoke(
        main,
        [
            "train-reranker",
            str(data),
            "--index",
            corpus_alias,
            "--output",
            str(output),
            "--base",
            str(tiny_cross_encoder_dir),
            "--negatives",
            "2",
            "--max-rank",
            "6",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--max-length",
            "64",
            "--eval-fraction",
            "0.25",
            "--patience",
            "0",
            "--no-progress",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"saved {output}" in result.output and "held-out nDCG@10 (2 queries)" in result.output
    assert (output / "config.json").exists() and (output / "README.md").exists()
    again = CliRunner().invoke(main, ["train-reranker", str(data), "--index", corpus_alias, "--output", str(output)])
    assert again.exit_code == 2 and "folder is not empty" in again.output


# --- bad input fails early and says why ----------------------------------------------------


def cli(*args):
    return CliRunner().invoke(main, ["train-reranker", *map(str, args), "--no-progress"])


def test_judged_ids_missing_from_the_index_fail_early(es, corpus_alias, tmp_path, cli_env):
    data = write_beir(tmp_path / "data", [*QRELS, ("q1", "d404", 1), ("q2", "d405", 1)])
    queries = load_judgments(data, "train")
    with pytest.raises(MiningError, match=r"2 of 12 judged document id\(s\) are not in alias .*d404, d405"):
        check_index(es, corpus_alias, queries)
    assert check_index(es, corpus_alias, queries, skip_missing=True) == {"d404", "d405"}
    result = cli(data, "--index", corpus_alias, "--output", tmp_path / "out")
    assert result.exit_code == 2
    assert "judged document id(s) are not in alias" in result.output and "--skip-missing" in result.output
    assert not (tmp_path / "out").exists()


def test_empty_alias_fails_early(es, es_settings, bi_encoder, alias, tmp_path, cli_env):
    from rrsearch.core.encoders import embedding_dims, model_label
    from rrsearch.core.indexes import ensure_alias, passage_index_body

    body = passage_index_body(es, es_settings, dims=embedding_dims(bi_encoder), model=model_label("all-MiniLM-L6-v2"))
    ensure_alias(es, alias, body)
    result = cli(write_beir(tmp_path / "data"), "--index", alias, "--output", tmp_path / "out")
    assert result.exit_code == 2 and f"alias '{alias}' is empty" in result.output


def test_missing_alias_fails_early(alias, tmp_path, cli_env):
    result = cli(write_beir(tmp_path / "data"), "--index", alias, "--output", tmp_path / "out")
    assert result.exit_code == 2 and f"no index behind alias '{alias}'" in result.output


def test_no_judgments_fail_with_the_file(corpus_alias, tmp_path, cli_env):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = cli(empty, "--index", corpus_alias, "--output", tmp_path / "out")
    assert result.exit_code == 2 and "empty.jsonl: no judgments" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "q", "positive": "p"}) + "\n" + json.dumps({"query": "q"}) + "\n")
    result = cli(bad, "--index", corpus_alias, "--output", tmp_path / "out")
    assert result.exit_code == 2 and "bad.jsonl:2: positive: Field required" in result.output


def test_jsonl_judgments_mine_around_given_positive_texts(es, es_settings, bi_encoder, corpus_alias, tmp_path):
    path = tmp_path / "judgments.jsonl"
    path.write_text(
        json.dumps(
            {
                "query": "how do bees tell the hive where flowers are",
                "positive": "Worker bees perform a waggle dance to tell the hive where nectar is.",
            }
        )
        + "\n"
        + json.dumps(
            {
                "query": "lava from volcanoes",
                "positive": "made-up positive text",
                "positive_ids": ["d8"],
                "negatives": ["A given negative."],
            }
        )
        + "\n"
    )
    queries = load_judgments(path)
    check_index(es, corpus_alias, queries)
    pipeline = search_pipeline(es_settings, es, bi_encoder, corpus_alias)
    bees, lava = mine(pipeline, queries, config=MiningConfig(negatives=11, max_rank=12), progress=False)
    assert TEXTS["d2"] not in bees.negatives  # the given text was recognised among the hits
    assert len(bees.negatives) == 11
    assert lava.positives == ["made-up positive text"]
    assert lava.negatives[0] == "A given negative." and TEXTS["d8"] not in lava.negatives
    assert first_passages(es, corpus_alias, ["d8"]) == {"d8": TEXTS["d8"]}
