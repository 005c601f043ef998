"""The serving policy end to end: which blend a search is served, from which source, and a
corpus calibration (made by the service itself, or by ``rrs calibrate``) that a new model or a new
index version drops."""

import json
import shutil
import time
from pathlib import Path

import pytest

from rrsearch.service import auto_calibration
from rrsearch.service.blend import BlendConfig, write_calibration, write_calibration_file
from rrsearch.service.blend_policy import calibration_path, model_identity
from rrsearch.service.http.app import create_app
from rrsearch.service.rerank import load_reranker

PRODUCT_DEFAULTS = {"rerank_default_weight": 0.03, "rerank_default_depth": 10, "rerank_default_normalization": "minmax"}
BODY = {"query": "moons of planets and telescopes", "top_k": 5, "candidates": 30, "collapse": False}


@pytest.fixture(scope="module")
def model_dir(tiny_cross_encoder_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy") / "reranker"
    shutil.copytree(tiny_cross_encoder_dir, folder)
    return folder


@pytest.fixture
def settings(es_settings, service_index, model_dir, tmp_path):
    return es_settings.model_copy(
        update={
            "index_alias": service_index,
            "cross_encoder": str(model_dir),
            "home": tmp_path / "home",
            "rerank_timeout_ms": 30_000.0,
            **PRODUCT_DEFAULTS,
        }
    )


def serve(settings, bi_encoder, folder=None):
    reranker = load_reranker(str(folder or settings.cross_encoder), settings)
    app = create_app(settings, bi_encoder=bi_encoder, reranker=reranker)
    return app.test_client(), reranker


def search(client, **extra):
    response = client.post("/search", json={**BODY, **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def calibrate(settings, args: list[str]):
    """`rrs calibrate` in this process (its imports and the bi-encoder are loaded already), with the
    test's RRS_HOME; exit code 2 is a handled error (an unhandled one is 1, with the exception kept)."""
    from click.testing import CliRunner

    from rrsearch.rrs.cli import main

    return CliRunner().invoke(main, ["calibrate", *args], env={"RRS_HOME": str(settings.home)})


def test_a_model_nothing_confirmed_is_served_the_default_blend_never_plain(settings, bi_encoder):
    client, _ = serve(settings, bi_encoder)
    body = search(client)
    weight, depth = PRODUCT_DEFAULTS["rerank_default_weight"], PRODUCT_DEFAULTS["rerank_default_depth"]
    assert body["blend"]["source"] == "default" and body["blend"]["weight"] == weight
    assert body["reranked_count"] == depth and "rrs calibrate" in body["blend"]["detail"]
    info = client.get("/info").get_json()["blend"]
    assert info["source"] == "default" and info["weight"] == weight
    # the request may still ask for plain reranking (at the depth the policy serves)
    plain = search(client, rerank_weight=1.0)
    assert plain["blend"]["source"] == "request" and plain["blend"]["weight"] == 1.0
    assert plain["reranked_count"] == depth


def test_a_corpus_calibration_serves_until_the_model_or_the_index_changes(
    settings, bi_encoder, es, model_dir, tmp_path
):
    _, reranker = serve(settings, bi_encoder)
    index_version = ",".join(sorted(es.indices.get_alias(name=settings.index_alias)))
    path = calibration_path(settings.home, model_identity(reranker), index_version)
    write_calibration_file(path, BlendConfig(weight=0.3, depth=10, normalization="rank"), {"split": "pseudo"})
    client, _ = serve(settings, bi_encoder)  # a fresh service reads it
    body = search(client)
    assert body["blend"]["source"] == "corpus" and body["blend"]["weight"] == 0.3 and body["reranked_count"] == 10
    assert client.get("/info").get_json()["blend"]["source"] == "corpus"

    # the same model under another index version (a reindex) has no calibration there
    assert not calibration_path(settings.home, model_identity(reranker), index_version + "-next").exists()
    assert client.application.extensions["rrs"]["pipeline"].policy.served(index_version + "-next").source == "default"

    # a retrained model (other bytes in a copy of the folder) is a different identity: default
    changed = tmp_path / "retrained"
    shutil.copytree(model_dir, changed)
    (changed / "config.json").write_text((changed / "config.json").read_text() + "\n")
    client, changed_reranker = serve(settings.model_copy(update={"cross_encoder": str(changed)}), bi_encoder)
    assert model_identity(changed_reranker) != model_identity(reranker)
    assert search(client)["blend"]["source"] == "default"

    # judgments beside the model win over the corpus calibration, on the index they searched
    write_calibration(changed, BlendConfig(weight=0.25, depth=8), {"split": "train"}, index=settings.index_alias)
    write_calibration_file(
        calibration_path(settings.home, model_identity(changed_reranker), index_version), BlendConfig(weight=0.3), {}
    )
    client, _ = serve(settings.model_copy(update={"cross_encoder": str(changed)}), bi_encoder)
    body = search(client)
    assert body["blend"]["source"] == "judgments" and body["blend"]["weight"] == 0.25

    # judgments made on another corpus say nothing of this one: the corpus calibration serves
    write_calibration(changed, BlendConfig(weight=0.25, depth=8), {"split": "train"}, index="another-corpus")
    client, _ = serve(settings.model_copy(update={"cross_encoder": str(changed)}), bi_encoder)
    body = search(client)
    assert body["blend"]["source"] == "corpus" and body["blend"]["weight"] == 0.3
    assert "judged calibration is for index 'another-corpus'" in body["blend"]["detail"]
    info = client.get("/info").get_json()
    assert info["blend"]["source"] == "corpus" and info["calibration"]["index"] == "another-corpus"


def test_a_corpus_calibration_that_kept_nothing_serves_the_default_unless_it_showed_harm(settings, bi_encoder, es):
    """Pseudo-queries that showed neither a gain nor harm (``inconclusive``) say nothing the
    default does not assume: it keeps serving, and says why; ``harmful`` ones skip the stage."""
    _, reranker = serve(settings, bi_encoder)
    version = ",".join(sorted(es.indices.get_alias(name=settings.index_alias)))
    path = calibration_path(settings.home, model_identity(reranker), version)
    write_calibration_file(path, BlendConfig(weight=0.0, depth=10), {"verdict": "inconclusive"})
    client, _ = serve(settings, bi_encoder)
    blend = search(client)["blend"]
    assert blend["source"] == "default" and blend["weight"] == PRODUCT_DEFAULTS["rerank_default_weight"]
    assert "confirmed no blend and showed no harm" in blend["detail"] and str(path) in blend["detail"]
    assert client.get("/info").get_json()["blend"]["source"] == "default"

    write_calibration_file(path, BlendConfig(weight=0.0, depth=10), {"verdict": "harmful"})
    client, _ = serve(settings, bi_encoder)
    body = search(client)
    assert body["blend"]["source"] == "corpus" and body["blend"]["weight"] == 0.0
    assert body["reranked_count"] == 0  # shown to hurt: the stage is skipped


def test_the_service_calibrates_a_new_index_itself_once_then_serves_it(settings, bi_encoder, es, monkeypatch):
    """The first search of a model and an index version with nothing calibrated starts ``rrs
    calibrate`` once (a child process behind a lock): the default serves meanwhile, every worker
    then the corpus calibration it wrote; a reindex (another version) has none of its own yet."""
    monkeypatch.setattr(auto_calibration, "RECHECK_S", 0.5)
    auto = settings.model_copy(update={"rerank_auto_calibrate": True})
    client, reranker = serve(auto, bi_encoder)
    other_worker, _ = serve(auto, bi_encoder)
    version = ",".join(sorted(es.indices.get_alias(name=settings.index_alias)))
    path = calibration_path(auto.home, model_identity(reranker), version)

    body = search(client)
    assert body["blend"]["source"] == "default" and "is being made" in body["blend"]["detail"]
    pid = auto_calibration.lock_path(path).read_text()
    assert "is being made" in search(other_worker)["blend"]["detail"]
    assert auto_calibration.lock_path(path).read_text() == pid  # started once, by one worker

    deadline = time.monotonic() + 300
    while "is being made" in (body := search(client))["blend"]["detail"]:
        assert time.monotonic() < deadline, auto_calibration.log_path(path).read_text()
        time.sleep(1)
    log = auto_calibration.log_path(path).read_text()
    assert "ended without a result" not in body["blend"]["detail"], log
    facts = json.loads(path.read_text())
    # a calibration that kept nothing and showed no harm leaves the default serving, and says so
    expected = "default" if facts["verdict"] == "inconclusive" else "corpus"
    assert body["blend"]["source"] == expected, (body["blend"], facts["verdict"])
    if expected == "corpus":
        assert body["blend"]["weight"] == facts["chosen"]["weight"]
    else:
        assert "showed no harm" in body["blend"]["detail"]
    assert facts["model"] == model_identity(reranker) and facts["index_version"] == version
    assert facts["chosen_on"]["queries"] >= 20 and "wrote " + str(path) in log and facts["verdict"] in log
    time.sleep(0.6)
    assert search(other_worker)["blend"]["source"] == expected  # the other worker looked again
    assert "is being made" not in search(other_worker)["blend"]["detail"]
    assert client.application.extensions["rrs"]["pipeline"].policy.served(version + "-next").source == "default"


def test_calibrate_on_a_missing_index_is_a_clear_error(settings, cli_env):
    done = calibrate(settings, ["--index", "no-such-alias", "--reranker", settings.cross_encoder])
    assert done.exit_code == 2 and "no-such-alias" in done.stderr, done.output


def test_a_pool_hands_on_its_judged_calibration_with_the_alias_it_holds_on(settings, bi_encoder, model_dir, tmp_path):
    """A search front that reranks through a pool serves the pool model's judged calibration by the
    same rule: on the alias its judgments searched, and on no other."""
    import threading

    from werkzeug.serving import make_server

    from rrsearch.service.remote_rerank import RemoteReranker

    folder = tmp_path / "judged"
    shutil.copytree(model_dir, folder)
    write_calibration(folder, BlendConfig(weight=0.25, depth=8), {"split": "train"}, index="another-corpus")
    pool_settings = settings.model_copy(
        update={"cross_encoder": str(folder), "serve_role": "reranker", "pool_models": "rerank"}
    )
    pool = create_app(pool_settings, reranker=load_reranker(str(folder), pool_settings))
    server = make_server("127.0.0.1", 0, pool, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = RemoteReranker(f"http://127.0.0.1:{server.server_port}")
        assert remote.calibration == BlendConfig(weight=0.25, depth=8)
        assert remote.calibration_index == "another-corpus"
        client = create_app(settings, bi_encoder=bi_encoder, reranker=remote).test_client()
        assert search(client)["blend"]["source"] == "default"  # judged on another corpus; nothing calibrated here

        write_calibration(folder, BlendConfig(weight=0.25, depth=8), {"split": "train"}, index=settings.index_alias)
        pool_reranker = load_reranker(str(folder), pool_settings)
        server.app = create_app(pool_settings, reranker=pool_reranker)  # the pool restarted with the new file
        client = create_app(
            settings, bi_encoder=bi_encoder, reranker=RemoteReranker(f"http://127.0.0.1:{server.server_port}")
        ).test_client()
        body = search(client)
        assert body["blend"]["source"] == "judgments" and body["blend"]["weight"] == 0.25
    finally:
        server.shutdown()


def test_calibrate_adds_the_judged_queries_the_model_was_not_trained_on(settings, cli_env, model_dir, tmp_path):
    """``rrs calibrate --judgments``: the sample's judged train queries join the pseudo-queries in
    the cross-fitted choice, except the ones the model's ``training.json`` says it was trained on."""
    from rrsearch.evaluation.dataset import dataset_fingerprint, load_dataset, query_fingerprint

    sample = Path(__file__).resolve().parents[2] / "sample"
    train = load_dataset(sample, "train", check_corpus=False)
    trained_ids = sorted(train.queries)[:2]
    folder = tmp_path / "trained-on-two"
    shutil.copytree(model_dir, folder)
    (folder / "training.json").write_text(
        json.dumps(
            {
                "data": {
                    "source": "sample",
                    "dataset_fingerprint": dataset_fingerprint(sample),
                    "trained_query_fingerprints": [query_fingerprint(q, train.queries[q]) for q in trained_ids],
                }
            }
        )
    )
    options = ["--judgments", str(sample), "--queries", "30", "--candidates", "20", "--no-progress"]
    done = calibrate(settings, ["--index", settings.index_alias, "--reranker", str(folder), *options])
    assert done.exit_code == 0, (done.output, done.exception)
    joined = len(train.queries) - len(trained_ids)
    assert f"{joined} joined the pseudo-queries, 2 left out" in done.stdout

    [written] = (settings.home / "calibrations").glob("*.json")
    chosen_on = json.loads(written.read_text())["chosen_on"]
    assert chosen_on["judged"]["queries"] == joined and chosen_on["judged"]["split"] == "train"
    assert chosen_on["queries"] == chosen_on["titles"] + chosen_on["sentences"] + joined

    # a split with no such file is the caller's mistake, named before any model loads
    missing = calibrate(
        settings,
        ["--index", settings.index_alias, "--reranker", str(folder), "--judgments", str(sample), "--split", "dev"],
    )
    assert missing.exit_code == 2 and "dev" in missing.stderr, missing.output
