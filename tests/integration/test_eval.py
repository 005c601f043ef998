"""`rrs eval` end to end on a tiny BEIR dataset the test writes, against the real node."""

import json

import pytest
from beir_corpus import DOCS, write_beir
from click.testing import CliRunner

from rrsearch.core.es_client import resolve_url
from rrsearch.rrs.cli import main

QUERIES = [
    ("q1", "waggle dance of worker bees"),
    ("q2", "sicilian defence chess"),
    ("q3", "zooxanthellae living in corals"),
]
QRELS = [("q1", "d2", 1), ("q2", "d5", 2), ("q3", "d6", 1)]


def write_dataset(root, qrels=QRELS, queries=QUERIES):
    return write_beir(root, queries=queries, qrels=qrels, split="test", docs=DOCS[:6])


@pytest.fixture
def env(es, es_settings, alias, monkeypatch):
    """The CLI talks to the test node; yields a unique name for dataset folders, whose
    eval index (``eval-<name>``) is deleted afterwards."""
    from rrsearch.core.indexes import delete_alias_and_versions

    monkeypatch.setenv("ES_URL", resolve_url(es_settings))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield alias
    delete_alias_and_versions(es, f"eval-{alias}")


def run(*args):
    return CliRunner().invoke(main, ["eval", *map(str, args), "--no-progress"], catch_exceptions=False)


def test_eval_runs_every_configuration_and_writes_json_and_chart(env, es, tmp_path, tiny_cross_encoder_dir):
    dataset = write_dataset(tmp_path / env)
    out = tmp_path / "out" / "run.json"
    result = run(dataset, "--output", out, "--reranker", tiny_cross_encoder_dir, "--candidates", 10)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    rows = {(r["config"], r["rerank"]) for r in document["results"]}
    assert rows == {(c, rr) for c in ("bm25", "knn", "hybrid_rrf", "hybrid_linear") for rr in (False, True)}
    for row in document["results"]:
        assert set(row["metrics"]) == {"ndcg@10", "recall@100", "mrr@10", "map@100"}
        assert set(row["latency_ms"]) == {"p50", "p95"} and row["latency_ms"]["p50"] > 0
        assert row["metrics"]["recall@100"] == 1.0  # 6 docs, 10 candidates: everything is retrieved
    bm25 = next(r for r in document["results"] if r["config"] == "bm25" and not r["rerank"])
    # every query's relevant document is first by BM25 (distinctive words): hand-checked 1.0
    assert bm25["metrics"] == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0, "map@100": 1.0}
    settings = document["settings"]
    assert settings["documents_in_index"] == 6 and settings["queries"] == 3
    assert settings["cross_encoder"] == str(tiny_cross_encoder_dir)
    assert settings["elasticsearch_version"] and settings["analyzer"] and settings["fusion"]["rrf_k"] == 60
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert "hybrid_rrf +rerank" in result.output
    # a model with no calibration is served the policy's default blend (the suite's: plain, every
    # candidate; tests/conftest.py), and eval says so
    blended = next(r for r in document["results"] if r["config"] == "hybrid_rrf" and r["rerank"])
    assert blended["blend"] | {"detail": ""} == {
        "source": "default",
        "weight": 1.0,
        "depth": 6,
        "normalization": "minmax",
        "detail": "",
        "queries": 3,
    }
    assert "hybrid_rrf +rerank: blend from default (weight 1, depth 6, minmax; 3 queries): nothing confirmed" in (
        result.output
    )


def test_existing_index_is_reused_and_compare_prints_differences(env, es, tmp_path):
    dataset = write_dataset(tmp_path / env)
    first = tmp_path / "first.json"
    assert run(dataset, "--output", first, "--configs", "bm25").exit_code == 0
    alias = json.loads(first.read_text())["settings"]["index"]
    assert alias == f"eval-{env}"
    second = run(dataset, "--index", alias, "--configs", "bm25,knn", "--compare", first)
    assert second.exit_code == 0, second.output
    assert "Compared with" in second.output and "+0.0000" in second.output and "(new in this run)" in second.output


@pytest.mark.parametrize(
    "qrels, queries, message",
    [
        ([("q1", "d404", 1)], QUERIES, "test.tsv: 1 document id(s) not in corpus.jsonl"),
        ([("q9", "d1", 1)], QUERIES, "test.tsv: 1 query id(s) not in queries.jsonl"),
        (QRELS, [("q1", ""), *QUERIES[1:]], "queries.jsonl:1: query 'q1' has empty text"),
    ],
)
def test_bad_datasets_fail_with_the_file_named(env, tmp_path, qrels, queries, message):
    result = run(write_dataset(tmp_path / "bad", qrels=qrels, queries=queries))
    assert result.exit_code == 2
    assert message in result.output


def test_missing_dataset_and_empty_alias_are_clear_errors(env, tmp_path):
    missing = run(tmp_path / "nowhere")
    assert missing.exit_code == 2 and "not a directory" in missing.output
    empty = run(write_dataset(tmp_path / env), "--index", env)  # alias with no index behind it
    assert empty.exit_code == 2 and "holds no documents" in empty.output


def test_tune_rerank_chooses_a_blend_on_the_split_and_writes_it_into_the_model_folder(
    env, tmp_path, tiny_cross_encoder_dir
):
    import shutil

    from rrsearch.service.blend import load_calibration

    folder = tmp_path / "reranker"
    shutil.copytree(tiny_cross_encoder_dir, folder)
    dataset = write_beir(tmp_path / env, queries=QUERIES, qrels=QRELS, split="train", docs=DOCS[:6])
    out = tmp_path / "tuning.json"
    result = run(dataset, "--split", "train", "--reranker", folder, "--candidates", 6, "--tune-rerank", "--output", out)
    assert result.exit_code == 0, result.output
    facts = json.loads(out.read_text())
    assert facts["chosen_on"]["split"] == "train" and facts["chosen_on"]["queries"] == 3
    # the tiny reranker has random weights; the hybrid order is perfect here (every relevant doc first)
    assert facts["hybrid_alone"] == 1.0 and facts["best"]["ndcg@10"] >= facts["hybrid_alone"]
    assert len(facts["grid"]) == 11 * 2  # weights 0..1 x (minmax, rank) at the one depth 6 allows
    chosen = load_calibration(folder)
    assert (chosen.weight, chosen.depth, chosen.normalization) == (
        facts["chosen_gain"]["weight"],
        facts["chosen_gain"]["depth"],
        facts["chosen_gain"]["normalization"],
    )
    assert chosen.weight == 0.0  # nothing can be shown to beat a perfect hybrid order: keep it, skip the model
    # ... and the default blend (the suite's: plain) is shown to hurt it, so weight 0 is served, not the default
    assert facts["verdict"] == "harmful" and facts["default_blend"]["gain_upper"] < 0


def test_tune_rerank_leaves_out_exactly_the_queries_the_model_was_trained_on(env, tmp_path, tiny_cross_encoder_dir):
    """The same query is the same id *and* text: collection B numbers its queries like A, with
    other texts, and none of them is left out; on A's own train split the trained one is."""
    import shutil
    from types import SimpleNamespace

    from rrsearch.training.run import collection_fingerprint, trained_queries_facts

    folder = tmp_path / "reranker"
    shutil.copytree(tiny_cross_encoder_dir, folder)
    collection_a = write_beir(tmp_path / env, queries=QUERIES, qrels=QRELS, split="train", docs=DOCS[:6])
    trained = [SimpleNamespace(id=qid, query=text) for qid, text in QUERIES[:1]]
    (folder / "training.json").write_text(
        json.dumps(
            {
                "data": {
                    "source": collection_a.name,
                    **trained_queries_facts(collection_fingerprint(collection_a, []), trained),
                }
            }
        )
    )
    out = tmp_path / "tuning.json"

    result = run(
        collection_a, "--split", "train", "--reranker", folder, "--candidates", 6, "--tune-rerank", "--output", out
    )
    assert result.exit_code == 0, result.output
    chosen_on = json.loads(out.read_text())["chosen_on"]
    assert (chosen_on["queries"], chosen_on["left_out_trained_on"]) == (2, 1)
    assert chosen_on["left_out_reason"].startswith("1 of the 3 queries have the id and text of a query the model")
    assert "tuned on 2 train queries; left out 1 as trained on" in result.output

    other_texts = [("q1", "lava flows from volcanoes"), ("q2", "glaciers carving valleys"), ("q3", "sourdough starter")]
    collection_b = write_beir(
        tmp_path / "b",
        queries=other_texts,
        qrels=[("q1", "d1", 1), ("q2", "d3", 1), ("q3", "d4", 1)],
        split="train",
        docs=DOCS[:6],
    )
    result = run(
        collection_b,
        "--split",
        "train",
        "--index",
        f"eval-{env}",
        "--reranker",
        folder,
        "--candidates",
        6,
        "--tune-rerank",
        "--output",
        out,
    )
    assert result.exit_code == 0, result.output
    chosen_on = json.loads(out.read_text())["chosen_on"]
    assert (chosen_on["queries"], chosen_on["left_out_trained_on"]) == (3, 0)
    assert "another collection" in chosen_on["left_out_reason"]


def test_tune_rerank_needs_a_model_folder(env, tmp_path):
    result = run(write_dataset(tmp_path / env), "--tune-rerank", "--reranker", "some/hub-name")
    assert result.exit_code == 2 and "MODEL_FOLDER" in result.output


def test_tune_fusion_writes_the_choice_the_service_then_serves(env, es, es_settings, tmp_path, bi_encoder):
    from rrsearch.service.pipeline import SearchPipeline
    from rrsearch.service.schemas import Fusion, SearchRequest

    dataset = write_dataset(tmp_path / env)
    assert run(dataset, "--configs", "bm25", "--candidates", 10).exit_code == 0  # builds eval-<name>
    alias = f"eval-{env}"
    out = tmp_path / "fusion.json"
    result = run(dataset, "--index", alias, "--tune-fusion", "--candidates", 10, "--output", out)
    assert result.exit_code == 0, result.output
    facts = json.loads(out.read_text())
    assert len(facts["grid"]) == 19 and facts["chosen_on"] == {
        "split": "test",
        "queries": 3,
        "candidates": 10,
        "metric": "ndcg@10",
    }
    # every query's document is first in BM25 and RRF alike: a tie, which goes to RRF
    assert facts["chosen"]["method"] == "rrf" and facts["grid"][0]["ndcg@10"] == facts["rrf"] == 1.0
    (written,) = facts["written"]
    meta = es.indices.get_mapping(index=alias)[written]["mappings"]["_meta"]
    assert meta["fusion"]["chosen"] == facts["chosen"] and meta["bi_encoder"]  # the other _meta keys stay

    # a linear choice in _meta is what a search that names no fusion gets; a request's own wins
    linear = {"method": "linear", "k": None, "normalization": "zscore", "weight": 0.7}
    es.indices.put_mapping(index=written, meta={**meta, "fusion": {**meta["fusion"], "chosen": linear}})
    pipeline = SearchPipeline(es_settings.model_copy(update={"index_alias": alias}), es, bi_encoder)
    served = pipeline.search(SearchRequest(query="waggle dance", rerank=False))
    assert served.fusion == Fusion(**linear)
    asked = pipeline.search(SearchRequest(query="waggle dance", rerank=False, fusion=Fusion(method="rrf")))
    assert asked.fusion == Fusion(method="rrf")
    assert [h.parent_id for h in served.hits][:1] == [h.parent_id for h in asked.hits][:1] == ["d2"]


def test_tune_fusion_needs_an_index(tmp_path):
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--tune-fusion"])
    assert result.exit_code == 2 and "--tune-fusion needs --index" in result.output
