"""`rrs adapt` on a real node and a tiny BEIR dataset (twelve documents, eight train and four
test queries), tiny recipes: the packaged MiniLM trained a step or two, a tiny random
cross-encoder as the reranker's base. Proves the whole loop runs (before table, a new index
version embedded by the adapted encoder, a reranker whose blend was chosen on cross-fitted
scores of every train query, after table), and that a second run redoes nothing."""

import json

import beir_corpus
import pytest
from click.testing import CliRunner

from rrsearch.rrs.cli import main
from rrsearch.training.adapt import STATE_FILE, STEPS

TRAIN = [
    ("q1", "how do bees tell the hive where flowers are", "d2"),
    ("q2", "opening moves in chess", "d5"),
    ("q3", "algae living inside corals", "d6"),
    ("q4", "lava from volcanoes", "d1"),
    ("q5", "glaciers shaping valleys", "d3"),
    ("q6", "bread leavened with wild yeast", "d4"),
    ("q7", "pollination by bumblebees", "d7"),
    ("q8", "fish eating algae on reefs", "d12"),
]
TEST = [
    ("t1", "who wins a pawn endgame", "d10"),
    ("t2", "dense loaves with little gluten", "d9"),
    ("t3", "ice flowing from Antarctica", "d11"),
    ("t4", "caves made by cooling lava", "d8"),
]


@pytest.fixture(scope="module")
def adapted(es, es_settings, es_url, tmp_path_factory, tiny_cross_encoder_dir):
    """The tiny dataset ingested with the packaged encoder, then one `rrs adapt` run."""
    from rrsearch.core.indexes import current_index, delete_alias_and_versions
    from rrsearch.ingest.pipeline import run_ingest

    root = tmp_path_factory.mktemp("adapt")
    data = beir_corpus.write_beir(
        root / "tinyfacts",
        queries=[(q, t) for q, t, _ in TRAIN + TEST],
        qrels=[(q, d, 1) for q, _, d in TRAIN],
        split="train",
    )
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, _, d in TEST)
    )
    alias = "test-adapt"
    delete_alias_and_versions(es, alias)
    run_ingest([data / "corpus.jsonl"], es_settings, alias=alias, progress=False, es=es)
    first_index = current_index(es, alias)
    env = {"ES_URL": es_url, "HF_HUB_OFFLINE": "1", "RRS_TRAIN_ENCODER_BATCH_SIZE": "4", "RRS_TRAIN_BATCH_SIZE": "8"}
    args = [
        "adapt",
        str(data),
        "--index",
        alias,
        "--output",
        str(root / "out"),
        "--encoder-epochs",
        "1",
        "--encoder-title-queries",
        "0",
        "--reranker-base",
        str(tiny_cross_encoder_dir),
        "--reranker-epochs",
        "1",
        "--reranker-title-queries",
        "0",
        "--eval-steps",
        "2",
        "--no-export",
        "--no-progress",
    ]
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    yield {
        "outcome": json.loads(result.stdout),
        "log": result.stderr,
        "args": args,
        "env": env,
        "alias": alias,
        "first_index": first_index,
        "out": root / "out",
    }
    delete_alias_and_versions(es, alias)


@pytest.mark.slow
def test_adapt_runs_every_step_and_reports_each_stage(adapted, es):
    from rrsearch.core.indexes import current_index, index_meta

    outcome = adapted["outcome"]
    assert list(outcome["steps"]) == list(STEPS)
    assert all(f"[{n}/5] {name} ..." in adapted["log"] for n, name in enumerate(STEPS, 1))
    for table in (outcome["before"], outcome["after"]):
        assert set(table) == {"BM25", "kNN", "hybrid (RRF)", "served (hybrid + reranker blend)"}
        assert all(0 <= row["ndcg@10"] <= 1 for row in table.values())
    assert outcome["before"]["BM25"] == outcome["after"]["BM25"]  # the text index did not change
    # a new index version behind the alias, embedded by the adapted encoder
    served = outcome["served"]
    assert served["index"] == current_index(es, adapted["alias"]) != adapted["first_index"]
    assert index_meta(es, adapted["alias"])["bi_encoder"] == "encoder"
    assert (adapted["out"] / "encoder" / "training.json").is_file()


@pytest.mark.slow
def test_the_reranker_blend_was_chosen_on_every_train_query_out_of_fold(adapted):
    calibration = json.loads((adapted["out"] / "reranker" / "rrs_rerank.json").read_text())
    chosen_on = calibration["chosen_on"]
    assert chosen_on["split"].startswith("cross-fitted (2 folds)")
    assert chosen_on["queries"] == len(TRAIN) and chosen_on["folds"] == 2
    assert calibration["chosen"] == adapted["outcome"]["served"]["blend"]
    assert not (adapted["out"] / "reranker" / ".crossfit").exists()  # fold models removed


@pytest.mark.slow
def test_a_second_run_redoes_nothing_and_prints_the_table(adapted):
    state = (adapted["out"] / STATE_FILE).read_text()
    model = adapted["out"] / "encoder" / "model.safetensors"
    stamp = model.stat().st_mtime_ns
    result = CliRunner().invoke(main, adapted["args"], env=adapted["env"])
    assert result.exit_code == 0, result.output
    assert all(f"{name}: done before" in result.stderr for name in STEPS)
    assert " ..." not in result.stderr
    assert (adapted["out"] / STATE_FILE).read_text() == state and model.stat().st_mtime_ns == stamp
    assert "nDCG@10 on the test split" in result.stdout and "kNN" in result.stdout
    assert f"RRS_BI_ENCODER={adapted['out'] / 'encoder'}" in result.stdout
