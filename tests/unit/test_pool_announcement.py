"""A reranker pool's announcement (core/pool_announcement.py): read only while its process
lives, removed only by its own process, and a wildcard bind announced as loopback."""

import os
import subprocess
import sys

from rrsearch.core.pool_announcement import announce, announced_url, local_url, pool_file, withdraw


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_an_announcement_is_read_while_its_process_lives(tmp_path):
    assert announced_url(tmp_path) is None
    announce(tmp_path, "http://127.0.0.1:8081", os.getpid())
    assert announced_url(tmp_path) == "http://127.0.0.1:8081"
    announce(tmp_path, "http://127.0.0.1:8082", _dead_pid())
    assert announced_url(tmp_path) is None  # stale: its pool was killed without withdrawing


def test_a_garbled_file_is_no_announcement(tmp_path):
    pool_file(tmp_path).parent.mkdir(parents=True)
    for text in ("", "{", "[1]", '{"url": 5, "pid": 1}', '{"url": "http://x:1"}'):
        pool_file(tmp_path).write_text(text)
        assert announced_url(tmp_path) is None


def test_only_the_announcing_process_withdraws(tmp_path):
    announce(tmp_path, "http://127.0.0.1:8081", os.getpid())
    assert withdraw(tmp_path, os.getpid() + 1) is None  # another pool's exit leaves ours in place
    assert announced_url(tmp_path) == "http://127.0.0.1:8081"
    assert withdraw(tmp_path, os.getpid()) == "http://127.0.0.1:8081"
    assert not pool_file(tmp_path).exists()


def test_a_wildcard_bind_is_announced_as_loopback():
    assert local_url("http://0.0.0.0:8001") == "http://127.0.0.1:8001"
    assert local_url("http://[::]:8001") == "http://127.0.0.1:8001"
    assert local_url("http://10.0.0.5:8001") == "http://10.0.0.5:8001"
