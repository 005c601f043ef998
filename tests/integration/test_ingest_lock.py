"""One ingest run per alias: a second one is told who holds the alias, a dead holder's lock
is taken over (same host) or broken by hand (--break-lock), and a finished run lets go."""

from __future__ import annotations

import json
import socket

from click.testing import CliRunner

from rrsearch.ingest.lock import LOCK_INDEX
from rrsearch.rrs.cli import main


def _corpus(path):
    path.write_text(
        "".join(json.dumps({"id": f"k{n}", "text": f"kettle number {n} whistles"}) + "\n" for n in range(3))
    )
    return path


def _hold(es, alias, **holder):
    es.index(
        index=LOCK_INDEX, id=alias, document={"alias": alias, "token": "someone-else", **holder}, refresh="wait_for"
    )


def _ingest(path, alias, *extra):
    return CliRunner().invoke(main, ["ingest", str(path), "--index", alias, "--no-progress", *extra])


def test_a_second_run_is_refused_with_who_holds_the_alias(es, alias, tmp_path, cli_env):
    path = _corpus(tmp_path / "k.jsonl")
    assert _ingest(path, alias).exit_code == 0  # creates the lock index and lets go
    assert not es.exists(index=LOCK_INDEX, id=alias)
    _hold(es, alias, host="another-machine", pid=4242, started_at="2026-11-27T08:00:00+00:00")
    refused = _ingest(path, alias)
    assert refused.exit_code == 1
    assert "another ingest into" in refused.output and "pid 4242 on another-machine" in refused.output
    assert "--break-lock" in refused.output
    assert es.get(index=LOCK_INDEX, id=alias)["_source"]["token"] == "someone-else"  # untouched

    broken = _ingest(path, alias, "--break-lock")
    assert broken.exit_code == 0, broken.output
    assert "broke the ingest lock" in broken.output
    assert not es.exists(index=LOCK_INDEX, id=alias)


def test_a_dead_holder_on_this_host_is_taken_over(es, alias, tmp_path, cli_env):
    dead_pid = 2**22 + 12345  # above pid_max's default: no such process
    _hold(es, alias, host=socket.gethostname(), pid=dead_pid, started_at="2026-11-27T08:00:00+00:00")
    result = _ingest(_corpus(tmp_path / "k.jsonl"), alias)
    assert result.exit_code == 0, result.output
    assert f"taking over the ingest lock of '{alias}': its holder (pid {dead_pid}" in result.output
    assert es.count(index=alias)["count"] == 3 and not es.exists(index=LOCK_INDEX, id=alias)
