"""Reading training judgments (BEIR folder or JSONL): what is accepted, and that every
bad input stops with the file (and line)."""

import json

import pytest

from rrsearch.evaluation.dataset import DatasetError
from rrsearch.training.judgments import JudgmentsError, load_beir_judgments, load_jsonl_judgments, load_judgments


def write_beir(root, qrels_rows, queries=(("q1", "first query"), ("q2", "second query"), ("q3", "third"))):
    (root / "qrels").mkdir(parents=True)
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries))
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels_rows)
    )
    return root


def test_beir_positives_and_judged_negatives(tmp_path):
    root = write_beir(tmp_path, [("q1", "d1", 1), ("q1", "d9", 0), ("q2", "d2", 2), ("q2", "d3", 1)])
    queries = {q.id: q for q in load_judgments(root, "train")}
    assert set(queries) == {"q1", "q2"}  # q3 has no judgment
    assert queries["q1"].text == "first query"
    assert queries["q1"].positive_ids == ["d1"] and queries["q1"].negative_ids == ["d9"]
    assert queries["q2"].positive_ids == ["d2", "d3"] and queries["q2"].negative_ids == []


def test_beir_query_with_only_zero_grades_is_left_out(tmp_path):
    root = write_beir(tmp_path, [("q1", "d1", 1), ("q2", "d2", 0)])
    assert [q.id for q in load_beir_judgments(root, "train")] == ["q1"]


def test_beir_without_any_positive_fails(tmp_path):
    root = write_beir(tmp_path, [("q1", "d1", 0)])
    with pytest.raises(JudgmentsError, match=r"train\.tsv: no positive judgment"):
        load_beir_judgments(root, "train")


def test_beir_empty_qrels_fails_naming_the_file(tmp_path):
    root = write_beir(tmp_path, [])
    with pytest.raises(DatasetError, match=r"qrels/train\.tsv: no judgments"):
        load_judgments(root, "train")


def test_beir_missing_split_fails_naming_the_file(tmp_path):
    root = write_beir(tmp_path, [("q1", "d1", 1)])
    with pytest.raises(DatasetError, match=r"qrels/dev\.tsv: missing"):
        load_judgments(root, "dev")


def test_beir_unknown_query_id_fails(tmp_path):
    root = write_beir(tmp_path, [("q1", "d1", 1), ("q7", "d2", 1)])
    with pytest.raises(JudgmentsError, match=r"train\.tsv: 1 query id\(s\) not in queries\.jsonl.*q7"):
        load_judgments(root, "train")


def test_beir_malformed_qrels_line_names_the_line(tmp_path):
    root = write_beir(tmp_path, [("q1", "d1", 1)])
    with (root / "qrels" / "train.tsv").open("a") as handle:
        handle.write("q2\td2\n")
    with pytest.raises(DatasetError, match=r"train\.tsv:3: expected 3 tab-separated columns"):
        load_judgments(root, "train")


def test_jsonl_single_and_list_positives(tmp_path):
    path = tmp_path / "judgments.jsonl"
    path.write_text(
        json.dumps({"query": "what is bm25", "positive": "BM25 is a ranking function."})
        + "\n\n"
        + json.dumps(
            {
                "query": "ice",
                "positive": ["Glaciers carve valleys.", "Ice floats."],
                "negatives": ["Bees dance."],
                "positive_ids": ["doc-7"],
            }
        )
        + "\n"
    )
    first, second = load_judgments(path)
    assert first.id == "judgments.jsonl:1" and first.positive_texts == ["BM25 is a ranking function."]
    assert first.negative_texts == [] and first.positive_ids == []
    assert second.id == "judgments.jsonl:3"
    assert second.positive_texts == ["Glaciers carve valleys.", "Ice floats."]
    assert second.negative_texts == ["Bees dance."] and second.positive_ids == ["doc-7"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"judgments\.jsonl:2: not JSON"),
        (json.dumps({"positive": "x"}), r"judgments\.jsonl:2: query: Field required"),
        (json.dumps({"query": "  ", "positive": "x"}), r"judgments\.jsonl:2: query: .*blank"),
        (json.dumps({"query": "q", "positive": []}), r"judgments\.jsonl:2: positive: .*non-empty"),
        (json.dumps({"query": "q", "positive": "x", "negative": ["y"]}), r"judgments\.jsonl:2: negative: Extra inputs"),
    ],
)
def test_jsonl_bad_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "judgments.jsonl"
    path.write_text(json.dumps({"query": "ok", "positive": "fine"}) + "\n" + line + "\n")
    with pytest.raises(JudgmentsError, match=message):
        load_jsonl_judgments(path)


def test_jsonl_without_records_fails(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(JudgmentsError, match=r"empty\.jsonl: no judgments"):
        load_judgments(path)


def test_missing_path_fails(tmp_path):
    with pytest.raises(JudgmentsError, match="no such file or directory"):
        load_judgments(tmp_path / "nope")
