"""The background corpus calibration's bookkeeping: one start per lock, and where a run stands."""

import os
import sys
import threading
from pathlib import Path

from pydantic import SecretStr

from rrsearch.core.settings import Settings, settings_env
from rrsearch.service import auto_calibration


def run_once(path, code: str) -> int:
    """Start ``code`` as the calibration for ``path`` and wait for its exit status."""
    ended = threading.Event()
    statuses: list[int] = []
    started = auto_calibration.start(
        path, [sys.executable, "-c", code], os.environ, on_exit=lambda s: (statuses.append(s), ended.set())
    )
    assert started and ended.wait(60)
    return statuses[0]


def test_a_run_is_started_once_and_its_state_follows_it(tmp_path):
    path = tmp_path / "calibrations" / "model--index.json"
    assert auto_calibration.state(path) == "none"
    gate = tmp_path / "go"
    code = f"import pathlib, time\nwhile not pathlib.Path({str(gate)!r}).exists(): time.sleep(0.05)\nprint('working')"
    ended = threading.Event()
    assert auto_calibration.start(path, [sys.executable, "-c", code], os.environ, on_exit=lambda _s: ended.set())
    assert auto_calibration.state(path) == "running"
    assert not auto_calibration.start(path, [sys.executable, "-c", "pass"], os.environ)  # another worker
    gate.touch()
    assert ended.wait(60)
    assert auto_calibration.state(path) == "ended"  # it wrote no result
    assert "working" in auto_calibration.log_path(path).read_text()
    path.write_text("{}")
    assert auto_calibration.state(path) == "done"


def test_a_failed_run_is_not_retried_and_says_so(tmp_path):
    path = tmp_path / "model--index.json"
    assert run_once(path, "import sys; print('index too small'); sys.exit(1)") == 1
    assert auto_calibration.state(path) == "ended"
    assert not auto_calibration.start(path, [sys.executable, "-c", "pass"], os.environ)
    assert "index too small" in auto_calibration.log_path(path).read_text()


def test_a_child_that_cannot_start_is_reported_not_raised_and_not_retried(tmp_path):
    path = tmp_path / "model--index.json"
    assert not auto_calibration.start(path, [str(tmp_path / "no-such-program")], os.environ)
    assert auto_calibration.state(path) == "ended"
    assert "not started" in auto_calibration.lock_path(path).read_text()
    assert not auto_calibration.start(path, [sys.executable, "-c", "pass"], os.environ)


def test_a_lock_whose_process_is_gone_or_stale_reads_as_ended(tmp_path):
    path = tmp_path / "model--index.json"
    lock = auto_calibration.lock_path(path)
    lock.write_text(str(os.getpid()))
    assert auto_calibration.state(path) == "running"
    mtime = lock.stat().st_mtime
    assert auto_calibration.state(path, now=mtime + auto_calibration.STALE_S + 1) == "ended"
    lock.write_text("")  # a worker between creating the lock and writing the pid
    assert auto_calibration.state(path) == "running"
    assert auto_calibration.state(path, now=lock.stat().st_mtime + 61) == "ended"


def test_the_command_calibrates_the_alias_with_the_served_model():
    argv = auto_calibration.command("docs", "/models/ce")
    assert argv[:4] == [sys.executable, "-m", "rrsearch", "calibrate"]
    assert argv[argv.index("--index") + 1] == "docs" and argv[argv.index("--reranker") + 1] == "/models/ce"


def test_settings_pass_to_a_child_as_the_variables_that_read_them_back(monkeypatch):
    settings = Settings(
        es_url="http://node:9200",
        es_username="elastic",
        es_password=SecretStr("s3cret"),
        rerank_auto_calibrate=False,
        rerank_default_weight=0.05,
        home=Path("/srv/rrs"),
    )
    env = settings_env(settings)
    assert env["RRS_ES_PASSWORD"] == "s3cret" and env["RRS_RERANK_AUTO_CALIBRATE"] == "false"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    again = Settings()  # what the child reads from its environment
    assert again.es_url == "http://node:9200" and again.es_password.get_secret_value() == "s3cret"
    assert again.rerank_auto_calibrate is False and again.rerank_default_weight == 0.05
    assert again.home == Path("/srv/rrs")
