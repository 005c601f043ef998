"""The serving policy's pure parts: which source wins, a request's override, where a corpus
calibration is cached, and the pseudo-queries and non-inferiority rule it is chosen by."""

from pathlib import Path

import pytest

from rrsearch.evaluation.corpus_calibration import Everything, first_sentence, pseudo_query, trained_titles, with_judged
from rrsearch.evaluation.dataset import Dataset
from rrsearch.evaluation.tuning import Scored, tune
from rrsearch.service.blend import BlendConfig
from rrsearch.service.blend_policy import calibration_path, for_request, judged_applies, resolve

JUDGED = BlendConfig(weight=0.3, depth=30)
CORPUS = BlendConfig(weight=0.2, depth=20, normalization="rank")
DEFAULT = BlendConfig(weight=0.1, depth=20)


def test_judgments_win_then_corpus_then_the_default():
    assert resolve(JUDGED, CORPUS, DEFAULT).source == "judgments"
    assert resolve(JUDGED, CORPUS, DEFAULT).config == JUDGED
    assert resolve(None, CORPUS, DEFAULT).source == "corpus"
    assert resolve(None, CORPUS, DEFAULT).config == CORPUS
    served = resolve(None, None, DEFAULT)
    assert served.source == "default" and served.config == DEFAULT and "rrs calibrate" in served.detail


@pytest.mark.parametrize(
    ("judged_on", "index_version", "applies"),
    [
        ("scifact", "scifact-v20261206-024724-473040", True),  # any version of its alias: a reindex keeps it
        ("scifact", "scifact-v20261206-024724-473040,scifact-v20261207-000000-000001", True),
        ("scifact", "medline-v20261206-024724-473040", False),  # another corpus
        ("scifact", "scifact-extra-v20261206-024724-473040", False),  # another alias that shares a prefix
        ("scifact", "scifact-v20261206-024724-473040,medline-v20261206-024724-473040", False),
        ("scifact", "scifact", True),  # an index named as the alias
        ("scifact", "", False),  # no index yet: nothing to say it holds there
        (None, "medline-v20261206-024724-473040", True),  # a file from before the alias was recorded
    ],
)
def test_a_judged_calibration_holds_on_the_index_its_judgments_searched(judged_on, index_version, applies):
    assert judged_applies(judged_on, index_version) is applies


def test_a_request_setting_overrides_the_policy_and_says_so():
    served = resolve(None, CORPUS, DEFAULT)
    assert for_request(served, None, None, None) is served
    plain = for_request(served, 1.0, None, None)
    assert plain.source == "request" and plain.config == BlendConfig(weight=1.0, depth=20, normalization="rank")
    deeper = for_request(served, None, 50, "minmax")
    assert deeper.config == BlendConfig(weight=0.2, depth=50, normalization="minmax") and deeper.source == "request"
    assert for_request(served, 0.0, None, None).config.weight == 0.0  # 0 is a setting, not "unset"


def test_a_new_model_or_a_new_index_version_has_no_cached_calibration(tmp_path):
    path = calibration_path(tmp_path, "reranker@abc123", "docs-v1")
    assert path.parent == tmp_path / "calibrations" and "reranker_abc123--docs-v1" in path.name
    assert path == calibration_path(tmp_path, "reranker@abc123", "docs-v1")
    assert path != calibration_path(tmp_path, "reranker@abc124", "docs-v1")  # retrained model
    assert path != calibration_path(tmp_path, "reranker@abc123", "docs-v2")  # reindexed
    assert "/" not in calibration_path(tmp_path, "org/model", "a,b").name


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"title": "Vitamin D and bone density", "text": "x"}, ("title", "Vitamin D and bone density")),
        (
            {"title": "Intro", "text": "Too short. Bones need vitamin D to grow."},
            ("sentence", "Bones need vitamin D to grow."),
        ),
        ({"title": "", "text": "Ok. No."}, None),
        ({"text": ""}, None),
    ],
)
def test_a_pseudo_query_is_the_title_else_the_first_real_sentence(source, expected):
    assert pseudo_query(source) == expected


def test_first_sentence_is_capped():
    assert len(first_sentence(" ".join(["word"] * 80) + ".").split()) == 30


def _lists(n: int, model: str) -> tuple[dict, dict]:
    """``n`` queries of 10 candidates. ``found``: the first stage already ranks the relevant
    document first and the cross-encoder agrees (it only reorders the rest); ``harmful``: the
    cross-encoder sinks that document and lifts the 2nd; ``helpful``: the first stage ranks the
    relevant document 2nd and the cross-encoder lifts it."""
    qrels, collected = {}, {}
    for q in range(n):
        docs = [f"d{q}-{i}" for i in range(10)]
        relevant = 1 if model == "helpful" else 0
        qrels[f"q{q}"] = {docs[relevant]: 1}
        rerank = [float(i) for i in range(10)]  # the reverse of the fused order
        rerank[relevant] = -100.0 if model == "harmful" else 100.0
        if model == "harmful":
            rerank[1] = 100.0
        collected[f"q{q}"] = [Scored(doc, 1.0 / (60 + i), rerank[i]) for i, doc in enumerate(docs)]
    return qrels, collected


def test_pseudo_queries_keep_a_harmless_light_blend_that_the_strict_rule_refuses():
    lenient = {"harmless_up_to": 0.3, "margin": 0.005}
    qrels, collected = _lists(40, "found")
    assert tune(qrels, collected)[0].weight == 0.0  # no gain to confirm
    assert tune(qrels, collected, **lenient)[0].weight == 0.3  # no harm either: the largest harmless weight
    qrels, collected = _lists(40, "harmful")
    chosen, grid = tune(qrels, collected, **lenient)
    assert 0.0 < chosen.weight < 0.3  # the largest say it has without swapping the top two
    assert next(row for row in grid if row["weight"] == 0.3)["gain_choosing"] < 0
    assert tune(qrels, collected)[0].weight == 0.0
    qrels, collected = _lists(40, "helpful")
    assert tune(qrels, collected)[0].weight > 0.0 and tune(qrels, collected, **lenient)[0].weight > 0.0


def test_harmless_ties_go_to_minmax_and_the_smaller_depth():
    qrels, collected = _lists(40, "found")  # every light blend ties: the first stage is already right
    chosen = tune(qrels, collected, harmless_up_to=0.1, margin=0.005)[0]
    assert (chosen.weight, chosen.normalization, chosen.depth) == (0.1, "minmax", 10)


def test_fusion_grid_replays_both_methods_and_ties_go_to_rrf():
    from rrsearch.evaluation.fusion_tuning import choose, fuse, grid
    from rrsearch.service.schemas import Fusion

    bm25 = [("p1", 9.0), ("p2", 5.0), ("p3", 1.0)]
    knn = [("p3", 0.9), ("p2", 0.8), ("p1", 0.1)]
    assert fuse(bm25, knn, Fusion(method="linear", weight=0.1)) == ["p1", "p2", "p3"]
    assert fuse(bm25, knn, Fusion(method="linear", weight=0.9)) == ["p3", "p2", "p1"]
    assert fuse(bm25, knn, Fusion(method="rrf", k=60)) == ["p1", "p3", "p2"]  # 1st and 3rd beat 2nd twice
    parents = {"p1": "d1", "p2": "d2", "p3": "d3"}
    chosen, rows = choose({"q": {"d3": 1}}, {"q": (bm25, knn, parents)}, rrf_k=60)
    assert chosen.method == "linear" and chosen.weight >= 0.6 and rows[0]["ndcg@10"] == 1.0
    everything = {"q": {"d1": 1, "d2": 1, "d3": 1}}  # every order is perfect: a tie
    assert choose(everything, {"q": (bm25, knn, parents)}, rrf_k=60)[0] == Fusion(method="rrf", k=60)
    assert len(grid(60)) == 19


def test_an_index_meta_names_its_fusion_or_nothing():
    from rrsearch.service.pipeline import index_fusion
    from rrsearch.service.schemas import Fusion

    assert index_fusion({}) is None
    assert index_fusion({"fusion": {"chosen": {"method": "linear", "weight": 0.7}}}) == Fusion(
        method="linear", weight=0.7
    )
    assert index_fusion({"fusion": {"chosen": {"method": "magic"}}}) is None  # malformed: the default serves
    assert index_fusion({"fusion": "rrf"}) is None


def test_a_title_the_model_was_trained_on_asks_with_the_first_sentence_instead():
    source = {"title": "Vitamin D and bone density", "text": "Bones need vitamin D to grow. More."}
    assert pseudo_query(source, title_trained_on=True) == ("sentence", "Bones need vitamin D to grow.")


def test_trained_titles_come_from_the_model_folder(tmp_path):
    import json

    assert trained_titles(None, "docs") == frozenset() and trained_titles("some/hub-model", "docs") == frozenset()
    data = {"alias": "docs"}
    (tmp_path / "training.json").write_text(json.dumps({"data": data, "mining": {"title_query_docs": ["d1", "d7"]}}))
    assert trained_titles(str(tmp_path), "docs") == {"d1", "d7"}
    assert trained_titles(str(tmp_path), "other-index") == frozenset()  # its titles were of another corpus
    (tmp_path / "training.json").write_text(json.dumps({"data": data, "mining": {"title_queries_made": 3}}))  # older
    assert isinstance(trained_titles(str(tmp_path), "docs"), Everything) and "any" in trained_titles(
        str(tmp_path), "docs"
    )
    assert trained_titles(str(tmp_path), "other-index") == frozenset()
    (tmp_path / "training.json").write_text(json.dumps({"data": data, "mining": {"title_queries_made": 0}}))
    assert trained_titles(str(tmp_path), "docs") == frozenset()


def test_judged_queries_join_the_pseudo_queries_except_those_the_model_trained_on():
    pseudo = Dataset(
        Path("idx"), Path("idx"), {"title:d1": "otters and rivers"}, {"title:d1": {"d1": 1}}, split="pseudo"
    )
    judged = Dataset(
        Path("data"),
        Path("data"),
        {"q1": "where do otters live", "q2": "salmon spawning", "q3": "nothing relevant"},
        {"q1": {"d1": 2, "d9": 0}, "q2": {"d2": 1}, "q3": {"d3": 0}},
        split="train",
    )
    merged = with_judged(pseudo, judged, trained=frozenset({"q2"}))
    # q2 trained the model, q3 has no relevant document: only q1 joins, under an id no pseudo-query has
    assert merged.queries == {"title:d1": "otters and rivers", "judged:q1": "where do otters live"}
    assert merged.qrels["judged:q1"] == {"d1": 2, "d9": 0} and merged.qrels["title:d1"] == {"d1": 1}
    assert merged.split == "pseudo+train"
    assert pseudo.queries == {"title:d1": "otters and rivers"}  # the inputs are left as they were


def test_a_judged_check_is_confirmed_harmful_or_inconclusive():
    from rrsearch.evaluation.tuning import blend_verdict

    qrels, collected = _lists(40, "helpful")
    assert blend_verdict(qrels, collected, BlendConfig(weight=0.3, depth=10), DEFAULT) == {"verdict": "confirmed"}
    qrels, collected = _lists(40, "harmful")  # the model sinks the relevant document, every time
    heavy = BlendConfig(weight=0.5, depth=20)
    verdict = blend_verdict(qrels, collected, BlendConfig(weight=0.0), heavy)
    assert verdict["verdict"] == "harmful" and verdict["default_blend"]["gain_upper"] < 0
    light = blend_verdict(qrels, collected, BlendConfig(weight=0.0), BlendConfig(weight=0.1, depth=20))
    assert light["verdict"] == "inconclusive"  # at 0.1 the fused order's lead holds: no harm shown
    qrels, collected = _lists(40, "found")  # nothing to gain, nothing lost
    assert blend_verdict(qrels, collected, BlendConfig(weight=0.0), heavy)["verdict"] == "inconclusive"


def test_an_inconclusive_judged_file_is_no_calibration(tmp_path):
    from rrsearch.service.blend import load_calibration, write_calibration

    write_calibration(tmp_path, BlendConfig(weight=0.0, depth=10), {"verdict": "inconclusive"}, index="docs")
    assert load_calibration(tmp_path) is None  # the policy's next source serves
    write_calibration(tmp_path, BlendConfig(weight=0.0, depth=10), {"verdict": "harmful"}, index="docs")
    assert load_calibration(tmp_path) == BlendConfig(weight=0.0, depth=10)  # shown to hurt: the stage is skipped
    write_calibration(tmp_path, BlendConfig(weight=0.0, depth=10), {}, index="docs")  # a file from before verdicts
    assert load_calibration(tmp_path) == BlendConfig(weight=0.0, depth=10)


def test_a_blend_is_chosen_on_the_fusion_the_index_is_served_with():
    from types import SimpleNamespace

    from rrsearch.evaluation.tuning import fusion_of
    from rrsearch.service.schemas import Fusion

    def pipeline(meta):
        info = SimpleNamespace(meta=meta)
        return SimpleNamespace(index_info=lambda _index: info, settings=SimpleNamespace(rrf_k=60))

    tuned = {"fusion": {"chosen": {"method": "linear", "weight": 0.4, "normalization": "zscore"}}}
    assert fusion_of(pipeline(tuned), "docs") == {"method": "linear", "normalization": "zscore", "weight": 0.4}
    assert fusion_of(pipeline({}), "docs")["method"] == "rrf" and fusion_of(pipeline({}), "docs")["k"] == 60
    # what the caller names wins over the index's own
    assert fusion_of(pipeline(tuned), "docs", rrf_k=20) == {
        "method": "rrf",
        "k": 20,
        "normalization": "minmax",
        "weight": 0.5,
    }
    assert fusion_of(pipeline(tuned), "docs", fusion=Fusion(method="linear", weight=0.7))["weight"] == 0.7
