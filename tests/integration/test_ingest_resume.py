"""An interrupted ingest (crash or Ctrl-C) re-run with the same arguments finishes the job
without re-encoding what is already indexed, and the alias never points at a half-built index."""

import json
import signal
import subprocess
import sys
import time

import pytest

from rrsearch.core.indexes import current_index, list_versions
from rrsearch.ingest.pipeline import run_ingest

N_DOCS = 160
BATCH = 16
KILL_AFTER = 48  # passages indexed before the signal


def _corpus(path):
    words = ["river", "delta", "silt", "estuary", "tide", "marsh", "reed", "heron", "basin", "levee"]
    with path.open("w") as f:
        for i in range(N_DOCS):
            text = " ".join(f"{words[(i + j) % 10]}{j % 7}" for j in range(50))
            f.write(json.dumps({"id": f"doc{i}", "title": f"Survey {i}", "text": f"Record {i}: {text}"}) + "\n")


def _indexed_so_far(es, alias):
    stats = es.indices.stats(index=f"{alias}-v*", metric="indexing", expand_wildcards="open")
    return stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0)


def _interrupt(es, alias, path, cli_env, sig, *extra) -> tuple[int, str]:
    """Start `rrs ingest`, send ``sig`` once KILL_AFTER passages are in; (exit code, stderr)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rrsearch",
            "ingest",
            str(path),
            "--index",
            alias,
            "--batch-size",
            str(BATCH),
            "--no-progress",
            *extra,
        ],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background (`./run test &`) inherits an ignored SIGINT, and so
        # would the child: give it the default, as a terminal's Ctrl-C finds it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if list_versions(es, alias) and _indexed_so_far(es, alias) >= KILL_AFTER:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["crash", "ctrl-c", "stop"])
def test_interrupted_run_resumes_without_re_encoding(es, es_settings, alias, tmp_path, cli_env, sig):
    path = tmp_path / "corpus.jsonl"
    _corpus(path)
    returncode, stderr = _interrupt(es, alias, path, cli_env, sig)
    if sig in (signal.SIGINT, signal.SIGTERM):
        assert returncode == 130, stderr
        assert "interrupted" in stderr
    else:
        assert returncode == -signal.SIGKILL

    assert current_index(es, alias) is None, "alias must not point at the half-built index"
    [building] = list_versions(es, alias)
    if sig != signal.SIGKILL:  # a graceful stop puts the refresh interval back
        interval = es.indices.get_settings(index=building)[building]["settings"]["index"].get("refresh_interval", "1s")
        assert interval != "-1"
    done_before = _indexed_so_far(es, alias)
    assert KILL_AFTER <= done_before < N_DOCS

    settings = es_settings.model_copy(update={"ingest_batch_size": BATCH})
    report = run_ingest([path], settings, alias=alias, progress=False)
    assert report.completed and report.resumed and report.index_name == building
    assert report.chunks == N_DOCS  # one passage per document
    assert report.skipped_unchanged >= KILL_AFTER
    assert report.encoded == report.chunks - report.skipped_unchanged < N_DOCS
    assert current_index(es, alias) == building and list_versions(es, alias) == [building]
    assert es.count(index=alias)["count"] == N_DOCS
    refresh = es.indices.get_settings(index=building)[building]["settings"]["index"].get("refresh_interval", "1s")
    assert refresh == "1s"


def test_an_edited_source_starts_a_new_build_instead_of_resuming(es, es_settings, alias, tmp_path, cli_env):
    path = tmp_path / "corpus.jsonl"
    _corpus(path)
    returncode, stderr = _interrupt(es, alias, path, cli_env, signal.SIGINT)
    assert returncode == 130, stderr
    [abandoned] = list_versions(es, alias)
    _corpus(path)
    with path.open("a") as f:  # same path, different content
        f.write(json.dumps({"id": "late", "text": "a record added after the interruption"}) + "\n")
    report = run_ingest(
        [path], es_settings.model_copy(update={"ingest_batch_size": BATCH}), alias=alias, progress=False
    )
    assert report.completed and not report.resumed and report.index_name != abandoned
    assert report.skipped_unchanged == 0 and report.encoded == N_DOCS + 1
    assert current_index(es, alias) == report.index_name
    assert list_versions(es, alias) == [report.index_name] and report.dropped_indexes == [abandoned]
