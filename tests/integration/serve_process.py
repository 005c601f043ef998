"""`rrs serve` as a real process (gunicorn master and workers) for the tests that need one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests


@contextmanager
def rrs_serve(port: int, env: dict[str, str], log: Path, rrs: Path | None = None, cwd: Path | None = None):
    """Run `rrs serve` (this environment's, or ``rrs``, in ``cwd``) on 127.0.0.1:``port`` until
    the block ends; yields its base URL once ready."""
    with rrs_serves([(port, env, log)], rrs=rrs, cwd=cwd) as (base,):
        yield base


@contextmanager
def rrs_serves(servers: list[tuple[int, dict[str, str], Path]], rrs: Path | None = None, cwd: Path | None = None):
    """Several `rrs serve` processes, each ``(port, env, log)``, started together (their imports and
    model loads overlap) and stopped when the block ends; yields their base URLs once all are ready."""
    rrs = rrs or Path(sys.executable).parent / "rrs"
    started: list[tuple[subprocess.Popen, str, Path]] = []
    try:
        for port, env, log in servers:
            with open(log, "w") as out:
                process = subprocess.Popen(
                    [str(rrs), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env={**os.environ, **env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=cwd,
                )
            started.append((process, f"http://127.0.0.1:{port}", log))
        for process, base, log in started:
            wait_ready(process, base, log)
        yield [base for _, base, _ in started]
    finally:
        for process, _, _ in started:
            os.killpg(process.pid, signal.SIGTERM)  # the session we started: gunicorn master and its workers
        for process, _, _ in started:
            process.wait(timeout=30)


def wait_ready(process, base: str, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"process exited: {log.read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # refused, or accepted while the worker loads models
            pass
        time.sleep(0.1)
    pytest.fail(f"server not ready: {log.read_text()[-3000:]}")
