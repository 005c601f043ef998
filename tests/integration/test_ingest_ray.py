"""``--engine ray`` against the single-process engine on a real node, with a local Ray of
2 CPUs shared by the module (it takes seconds to start).

The hostile corpus is cut into shards of a few hundred bytes, so duplicates fall on either
side of shard boundaries (and of files), a CSV row spanning lines sits on a cut, and a
huge document is a shard of its own."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from rrsearch.core.errors import IngestLocked, OperationFailed
from rrsearch.ingest.lock import LOCK_INDEX
from rrsearch.ingest.pipeline import run_ingest
from rrsearch.ingest.ray_engine import ray_engine

pytest.importorskip("ray.data")

SHARD_BYTES = 300


RAY_MONITOR = "RAY_memory_monitor_refresh_ms"


@pytest.fixture(scope="module")
def local_ray():
    import ray

    # Ray's memory monitor kills a worker when the *machine* is nearly full: on a shared CI box
    # that is other jobs' doing, and these tests run with restarts off.
    # Ray reads this variable by its exact (lower-case) name.
    previous = os.environ.get(RAY_MONITOR)
    os.environ[RAY_MONITOR] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()
    if previous is None:
        os.environ.pop(RAY_MONITOR, None)
    else:
        os.environ[RAY_MONITOR] = previous


def _line(record) -> bytes:
    return record if isinstance(record, bytes) else json.dumps(record).encode()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """JSONL, CSV, Parquet (3 row groups) and a folder; bad bytes, bad JSON, a bad CSV row,
    duplicates within and across files and shards, a huge document."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("hostile")
    topics = [
        "otters build dens by rivers",
        "salmon swim upstream to spawn",
        "vitamin d comes from sunlight",
        "glaciers carve valleys slowly",
        "bees dance to share where flowers are",
    ]
    records = [{"id": f"j{n}", "title": f"Note {n}", "text": f"{topics[n % 5]}; note number {n}."} for n in range(40)]
    records[3] = b'{"id": "bad-byte", "text": "caf\xe9 au lait"}'
    records[7] = b'{"id": "bad-json", "text": '
    records[12] = {"id": "j2", "text": "the second j2: replaces line 3"}
    records[20] = {"id": "huge", "title": "Huge", "text": " ".join(f"w{n} of the long river story" for n in range(500))}
    records[30] = {"id": "", "text": "empty id gets a derived one"}
    records[33] = {"id": "x", "text": "   "}
    (root / "a.jsonl").write_bytes(b"\n".join(map(_line, records)) + b"\n\n")
    rows = b"".join(f"c{n},T{n},row {n} of the csv\r\n".encode() for n in range(5, 25))
    (root / "b.csv").write_bytes(
        b'id,title,text\r\nc1,One,"first row\r\nspans, three\r\nlines"\r\nc2,Two,plain row\r\n'
        b'j5,Dup,"beats a.jsonl line 6"\r\nc3,Three,too,many\r\nc4,Four,caf\xe9\r\n'
        + rows
        + b'c9,Nine,"the second c9, later in the file"\r\n'
    )
    table = pa.table(
        {"id": [f"p{n}" for n in range(9)] + ["c1"], "text": [f"parquet row {n}" for n in range(9)] + ["c1 again"]}
    )
    pq.write_table(table, root / "c.parquet", row_group_size=4)
    (root / "docs").mkdir()
    (root / "docs" / "one.md").write_text("# One\nmarkdown text about otters")
    (root / "docs" / "two.txt").write_text("plain text about salmon")
    return [root / "a.jsonl", root / "b.csv", root / "c.parquet", root / "docs"]


def _settings(es_settings, **overrides):
    return es_settings.model_copy(
        update={"ingest_batch_size": 32, "ingest_shard_bytes": SHARD_BYTES, "ingest_ray_max_restarts": 0, **overrides}
    )


def _passages(es, alias) -> dict[str, dict]:
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=2000, query={"match_all": {}}, source={"exclude_vectors": False})["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def _rejects(path) -> list[tuple]:
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return sorted(
        (e["source"], e["line"] if e["line"] is not None else -1, e["reason"], bool(e.get("superseded")))
        for e in entries
    )


def _same_index(es, got_alias, want_alias) -> None:
    got, want = _passages(es, got_alias), _passages(es, want_alias)
    assert sorted(got) == sorted(want)
    assert {k: v["content_hash"] for k, v in got.items()} == {k: v["content_hash"] for k, v in want.items()}
    for key in want:
        cosine = float(np.dot(got[key]["embedding"], want[key]["embedding"]))
        assert cosine > 0.999, key


@pytest.fixture(scope="module")
def process_run(es, es_settings, hostile, tmp_path_factory):
    """The single-process engine's index and rejects: what the Ray engine must equal."""
    from rrsearch.core.indexes import delete_alias_and_versions

    alias, rejects = "test-ray-reference", tmp_path_factory.mktemp("ref") / "rejects.jsonl"
    delete_alias_and_versions(es, alias)
    report = run_ingest(hostile, _settings(es_settings), alias=alias, rejects_path=rejects, progress=False, es=es)
    yield alias, rejects, report
    delete_alias_and_versions(es, alias)


@pytest.mark.slow
def test_the_same_hostile_corpus_gives_the_same_index_and_rejects(
    es, es_settings, hostile, process_run, local_ray, alias, tmp_path
):
    from rrsearch.ingest.shards import plan_shards

    assert len(plan_shards(hostile, target_bytes=SHARD_BYTES)) > 12  # duplicates really cross shards
    ref_alias, ref_rejects, ref = process_run
    rejects = tmp_path / "rejects.jsonl"
    report = run_ingest(
        hostile,
        _settings(es_settings),
        alias=alias,
        rejects_path=rejects,
        progress=False,
        es=es,
        engine=ray_engine(encoders=2),
    )

    _same_index(es, alias, ref_alias)
    assert _rejects(rejects) == _rejects(ref_rejects)
    assert any("superseded by line 13" in r[2] for r in _rejects(rejects))  # j2: across shards
    assert any(r[0].endswith("a.jsonl") and r[1] == 6 and "b.csv" in r[2] for r in _rejects(rejects))  # across files
    counts = ("read", "documents", "rejected", "duplicate_ids", "chunks")
    assert [getattr(report, c) for c in counts] == [getattr(ref, c) for c in counts]
    assert report.read == report.documents + report.rejected + report.duplicate_ids
    assert report.completed and report.alias_moved and report.encoded == report.chunks
    assert len(_passages(es, alias)["huge#0"]["text"]) < 5000 and report.chunks > 40
    assert report.stage_seconds["encode"] > 0 and report.stage_items["index"] == report.chunks


def test_a_second_run_on_the_alias_is_refused(es, es_settings, hostile, local_ray, alias):
    es.index(
        index=LOCK_INDEX,
        id=alias,
        document={"alias": alias, "token": "other", "host": "elsewhere", "pid": 1},
        refresh="wait_for",
    )
    with pytest.raises(IngestLocked, match="another ingest into .* is running"):
        run_ingest(hostile, _settings(es_settings), alias=alias, progress=False, es=es, engine=ray_engine())
    assert es.get(index=LOCK_INDEX, id=alias)["_source"]["token"] == "other"
    es.delete(index=LOCK_INDEX, id=alias, refresh="wait_for")


def _encoder_pids() -> set[int]:
    import psutil

    return {p.pid for p in psutil.process_iter(["cmdline"]) if "Encoder" in " ".join(p.info["cmdline"] or [])}


def _written_to_new_build(es, alias, live) -> bool:
    from rrsearch.core.indexes import list_versions

    newer = [name for name in list_versions(es, alias) if name > live]
    if not newer:
        return False
    es.indices.refresh(index=newer[-1])
    return es.count(index=newer[-1])["count"] > 0


def _ingest_killing_the_encoder(es, hostile, settings, alias, before) -> dict:
    """A Ray reindex of ``hostile`` whose encoder is SIGKILLed once it has written some batches
    (most are not): its report or error, once the run has ended."""
    outcome: dict = {}

    def ingest() -> None:
        try:
            outcome["report"] = run_ingest(
                hostile, settings, alias=alias, reindex=True, progress=False, es=es, engine=ray_engine(encoders=1)
            )
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            outcome["error"] = exc

    known = _encoder_pids()
    worker = threading.Thread(target=ingest)
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.is_alive() and not _written_to_new_build(es, alias, before):
        time.sleep(0.2)
    victims = _encoder_pids() - known
    assert victims and worker.is_alive(), outcome
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    worker.join(300)
    assert not worker.is_alive(), "the run did not end within 5 min of the kill"
    return outcome


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_the_alias_and_a_rerun_equals_a_clean_run(
    es, es_settings, hostile, process_run, local_ray, alias, tmp_path
):
    from rrsearch.core.indexes import current_index

    settings = _settings(es_settings, ingest_batch_size=8)
    run_ingest(hostile[3:], settings, alias=alias, progress=False, es=es)  # the alias exists: it must stay put
    before = current_index(es, alias)
    outcome = _ingest_killing_the_encoder(es, hostile, settings, alias, before)
    assert isinstance(outcome.get("error"), OperationFailed) and "alias was not moved" in str(outcome["error"])
    assert current_index(es, alias) == before
    assert not es.exists(index=LOCK_INDEX, id=alias)

    rerun = run_ingest(hostile, settings, alias=alias, reindex=True, progress=False, es=es, engine=ray_engine())
    assert rerun.completed and rerun.alias_moved and rerun.resumed
    assert rerun.encoded < rerun.chunks  # what the killed run wrote is kept, not encoded again
    _same_index(es, alias, process_run[0])
    assert (rerun.read, rerun.documents) == (process_run[2].read, process_run[2].documents)


@pytest.mark.slow
def test_a_worker_killed_with_restarts_on_is_replaced_and_the_run_equals_a_clean_run(
    es, es_settings, hostile, process_run, local_ray, alias
):
    """The default (RRS_INGEST_RAY_MAX_RESTARTS=-1): Ray restarts the encoder and retries its
    batches; deterministic ids make the retries idempotent, so the run completes as a clean one."""
    settings = _settings(es_settings, ingest_batch_size=8, ingest_ray_max_restarts=-1)
    run_ingest(hostile[3:], settings, alias=alias, progress=False, es=es)
    from rrsearch.core.indexes import current_index

    before = current_index(es, alias)
    outcome = _ingest_killing_the_encoder(es, hostile, settings, alias, before)
    assert "error" not in outcome, outcome
    report = outcome["report"]
    assert report.completed and report.alias_moved and current_index(es, alias) != before
    _same_index(es, alias, process_run[0])
    assert (report.read, report.documents, report.rejected) == (
        process_run[2].read,
        process_run[2].documents,
        process_run[2].rejected,
    )
