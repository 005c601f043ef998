"""`rrs train-encoder` end to end on a real node: twelve documents ingested by the real ingest
code, eight judged queries, the packaged all-MiniLM-L6-v2 as the base, a few steps. Proves the
folder loads with sentence-transformers and encodes differently from the base (it trained), the
ONNX fp32 and int8 files exist and pass the export's checks, and the model card says what it was
trained on; bad inputs fail early with one line."""

import json

import beir_corpus
import numpy as np
import pytest
from click.testing import CliRunner

from rrsearch.rrs.cli import main

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


@pytest.fixture(scope="module")
def trained(es, es_settings, es_url, tmp_path_factory):
    """One training run through the CLI (module scope: the checks below share it)."""
    from rrsearch.core.indexes import delete_alias_and_versions
    from rrsearch.ingest.pipeline import run_ingest

    root = tmp_path_factory.mktemp("encoder")
    data = beir_corpus.write_beir(root / "tinyfacts", queries=QUERIES, qrels=QRELS, split="train")
    alias = "test-train-encoder"
    delete_alias_and_versions(es, alias)
    run_ingest([data / "corpus.jsonl"], es_settings, alias=alias, progress=False, es=es)
    es.indices.refresh(index=alias)
    output = root / "model"
    # two texts per forward pass: the cached (GradCache) loss, as the default recipe runs on SciFact
    env = {"ES_URL": es_url, "HF_HUB_OFFLINE": "1", "RRS_TRAIN_ENCODER_MINI_BATCH": "2"}
    result = CliRunner().invoke(
        main,
        [
            "train-encoder",
            str(data),
            "--index",
            alias,
            "--output",
            str(output),
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--title-queries",
            "4",
            "--eval-fraction",
            "0.25",
            "--eval-steps",
            "2",
            "--no-progress",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    yield {"facts": facts, "output": output, "data": data, "alias": alias, "env": env}
    delete_alias_and_versions(es, alias)


@pytest.mark.slow
def test_the_folder_is_a_trained_sentence_transformer(trained, bi_encoder):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(trained["output"]), device="cpu")
    texts = ["lava from volcanoes", "Worker bees perform a waggle dance."]
    ours = model.encode(texts, normalize_embeddings=True)
    base = bi_encoder.encode(texts, normalize_embeddings=True)
    assert ours.shape == (2, 384)
    assert not np.allclose(ours, base, atol=1e-4)  # the weights moved: it trained
    result = trained["facts"]["result"]
    assert result["steps"] >= 2 and result["train_queries"] == 6 and result["heldout_queries"] == 2
    assert result["title_queries"] >= 1 and result["before"]["ndcg@10"] > 0 and "ndcg@10" in result["after"]


@pytest.mark.slow
def test_onnx_exports_exist_and_pass_the_export_checks(trained):
    folder = trained["output"]
    card = json.loads((folder / "rrs_encoder.json").read_text())
    for name in ("onnx/model.onnx", "onnx/model_qint8.onnx"):
        assert (folder / name).stat().st_size > 1_000_000
        figures = card["checks"][name]
        assert figures["min_cosine"] >= figures["required"]
        assert trained["facts"]["onnx"][name] == figures
    assert card["check_texts"] > 16  # the export's own texts plus held-out passages of the domain
    assert "texts per forward pass (GradCache) | 2 |" in (folder / "README.md").read_text()


@pytest.mark.slow
def test_model_card_says_what_it_was_trained_on(trained):
    folder = trained["output"]
    readme = (folder / "README.md").read_text()
    assert "rrs train-encoder" in readme and "tinyfacts" in readme and trained["alias"] in readme
    assert "MultipleNegativesRankingLoss" in readme and "model_qint8.onnx" in readme
    facts = json.loads((folder / "training.json").read_text())
    assert facts["kind"] == "bi-encoder" and facts["data"]["source"] == "tinyfacts"
    assert len(facts["data"]["trained_query_fingerprints"]) == 6


def test_bad_inputs_fail_early_with_one_line(trained, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["train-encoder", str(trained["data"]), "--index", trained["alias"], "--output", str(trained["output"])],
        env=trained["env"],
    )
    assert result.exit_code == 2 and "folder is not empty" in result.output
    result = runner.invoke(
        main,
        ["train-encoder", str(trained["data"]), "--index", "no-such-alias", "--output", str(tmp_path / "m")],
        env=trained["env"],
    )
    assert result.exit_code == 2 and "no index behind alias 'no-such-alias'" in result.output
    result = runner.invoke(
        main,
        ["train-encoder", str(tmp_path / "nothing"), "--index", trained["alias"], "--output", str(tmp_path / "m")],
        env=trained["env"],
    )
    assert result.exit_code == 2 and "no such file or directory" in result.output
