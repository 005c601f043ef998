import gzip
import json

import pytest

from rrsearch.evaluation.dataset import DatasetError, load_dataset
from rrsearch.evaluation.metrics import collapse_to_parents, evaluate, latency_summary
from rrsearch.evaluation.report import compare, format_table, write_chart


def write_dataset(root, *, corpus=None, queries=None, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\n", gz=False):
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    corpus = corpus if corpus is not None else [{"_id": "d1", "title": "t", "text": "x"}, {"_id": "d2", "text": "y"}]
    lines = "".join(json.dumps(d) + "\n" for d in corpus)
    if gz:
        with gzip.open(root / "corpus.jsonl.gz", "wt") as handle:
            handle.write(lines)
    else:
        (root / "corpus.jsonl").write_text(lines)
    queries = queries if queries is not None else [{"_id": "q1", "text": "what is x"}, {"_id": "q2", "text": "y?"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


def test_loads_only_judged_queries_from_a_gzipped_corpus(tmp_path):
    dataset = load_dataset(write_dataset(tmp_path / "ds", gz=True))
    assert dataset.queries == {"q1": "what is x"}
    assert dataset.qrels == {"q1": {"d1": 1}}
    assert dataset.doc_ids == {"d1", "d2"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"qrels": "q1\td404\t1\n"}, "not in corpus.jsonl"),
        ({"qrels": "q9\td1\t1\n"}, "not in queries.jsonl"),
        ({"qrels": "q1\td1\n"}, "test.tsv:1: expected 3"),
        ({"qrels": "q1\td1\tyes\n"}, "not an integer"),
        ({"queries": [{"_id": "q1", "text": "  "}]}, "queries.jsonl:1: query 'q1' has empty text"),
        ({"corpus": [{"title": "no id"}]}, "corpus.jsonl:1"),
    ],
)
def test_bad_inputs_name_file_and_line(tmp_path, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(write_dataset(tmp_path / "ds", **kwargs))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset(tmp_path / "nope")
    root = write_dataset(tmp_path / "ds")
    (root / "queries.jsonl").unlink()
    with pytest.raises(DatasetError, match="queries.jsonl: missing"):
        load_dataset(root)
    with pytest.raises(DatasetError, match="train.tsv: missing"):
        load_dataset(write_dataset(tmp_path / "ds2"), split="train")


def test_relevant_document_first_scores_one():
    scores = evaluate({"q1": {"d1": 1}}, {"q1": ["d1", "d2", "d3"]})
    assert scores == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0, "map@100": 1.0}


def test_passages_collapse_to_their_document_before_scoring():
    # d2's three passages must not push d1 (relevant) down to rank 4
    assert collapse_to_parents(["d2", "d2", "d2", "d1"]) == ["d2", "d1"]
    scores = evaluate({"q1": {"d1": 1}}, {"q1": ["d2", "d2", "d2", "d1"]})
    assert scores["mrr@10"] == 0.5


def test_graded_relevance_and_unanswered_queries():
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}}
    best = evaluate(qrels, {"q1": ["a", "b"], "q2": ["c"]})
    swapped = evaluate(qrels, {"q1": ["b", "a"], "q2": ["c"]})
    assert best["ndcg@10"] == 1.0 and swapped["ndcg@10"] < 1.0
    assert swapped["mrr@10"] == 1.0  # both are relevant
    assert evaluate(qrels, {"q1": ["a", "b"]})["ndcg@10"] == 0.5  # q2 unanswered counts as 0


def test_latency_percentiles():
    assert latency_summary(list(range(1, 101))) == {"p50": 50.5, "p95": 95}
    assert latency_summary([]) == {"p50": 0.0, "p95": 0.0}


def _result(config, rerank, ndcg):
    return {
        "config": config,
        "rerank": rerank,
        "metrics": {"ndcg@10": ndcg, "recall@100": 0.9, "mrr@10": 0.5, "map@100": 0.4},
        "latency_ms": {"p50": 10.0, "p95": 20.0},
    }


def test_table_compare_and_chart(tmp_path):
    now = {"results": [_result("bm25", False, 0.66), _result("hybrid_rrf", True, 0.70)]}
    before = {"results": [_result("bm25", False, 0.60), _result("knn", False, 0.64)]}
    table = format_table(now["results"])
    assert "hybrid_rrf +rerank" in table and "0.6600" in table
    diff = compare(now, before)
    assert "+0.0600" in diff and "(new in this run)" in diff and "knn" in diff and "only in the previous" in diff
    chart = tmp_path / "chart.png"
    write_chart(chart, now["results"])
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_configuration_sends_the_right_request():
    from rrsearch.evaluation.runner import FusionParams, request_for

    fusion = FusionParams(rrf_k=20, linear_weight=0.3, normalization="zscore")
    bm25 = request_for("bm25", "q", rerank=False, candidates=50, index="a", fusion=fusion)
    assert (bm25.mode, bm25.rerank, bm25.candidates, bm25.top_k, bm25.collapse) == ("bm25", False, 50, 50, True)
    rrf = request_for("hybrid_rrf", "q", rerank=True, candidates=100, index="a", fusion=fusion)
    assert (rrf.mode, rrf.fusion.method, rrf.fusion.k, rrf.rerank) == ("hybrid", "rrf", 20, True)
    linear = request_for("hybrid_linear", "q", rerank=False, candidates=100, index="a", fusion=fusion)
    assert (linear.fusion.method, linear.fusion.weight, linear.fusion.normalization) == ("linear", 0.3, "zscore")
    with pytest.raises(ValueError, match="unknown configuration"):
        request_for("splade", "q", rerank=False, candidates=10, index="a", fusion=fusion)


def test_fingerprints_tell_the_same_query_from_a_namesake(tmp_path):
    import json

    from rrsearch.evaluation.dataset import dataset_fingerprint, queries_fingerprint, query_fingerprint

    assert query_fingerprint("1", "vitamin d and fractures") == query_fingerprint("1", "vitamin d and fractures")
    assert query_fingerprint("1", "vitamin d and fractures") != query_fingerprint("1", "black holes")
    assert query_fingerprint("1", "a") != query_fingerprint("2", "a")
    assert query_fingerprint("1", "2a") != query_fingerprint("12", "a")  # the id and text stay apart
    assert len(query_fingerprint("1", "a")) == 32
    queries = {"1": "a", "2": "b"}
    assert queries_fingerprint(queries) == queries_fingerprint(dict(reversed(queries.items())))  # order-free
    assert queries_fingerprint(queries) != queries_fingerprint({"1": "a", "2": "c"})
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps({"_id": q, "text": t}) for q, t in queries.items()))
    assert dataset_fingerprint(tmp_path) == queries_fingerprint(queries)
