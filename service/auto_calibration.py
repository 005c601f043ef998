"""The corpus calibration the service makes itself: once per model and index version, in the background.

The serving policy's second source (``service/blend_policy.py``) is a blend chosen on
pseudo-queries from the index (``rrs calibrate``). Made by hand, it is missing until someone
runs the command, and again after every reindex (a new index version) or retrain (a new model
fingerprint). So the first search that meets a model and an index version with neither a judged
nor a corpus calibration starts ``rrs calibrate`` for them as a child process: a process, not
an import, so the service does not depend on the evaluation code, and the child's CPU is its
own. A lock file beside where the result will be cached (``O_EXCL``) makes one worker of one
service start it, once; the default blend serves meanwhile, and every worker picks the result
up when it lands (the policy looks again every ``RECHECK_S`` while it serves the default).

A run that ends without a result (too few pseudo-queries, the node gone) leaves its lock and its
log and is not retried: the policy's detail names the log, and ``rrs calibrate`` (or deleting
the lock) tries again.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from rrsearch.core.processes import pid_alive

log = logging.getLogger("rrsearch.auto_calibration")

QUERIES = 100  # pseudo-queries and candidates per query: what bench/policy_bench.py measured
CANDIDATES = 50
RECHECK_S = 10.0  # how often a worker serving the default looks for the result again
STALE_S = 3600.0  # a lock this old whose process is not ours to see is taken as a run that ended

State = Literal["none", "running", "ended", "done"]


def lock_path(calibration: Path) -> Path:
    return calibration.with_suffix(".lock")


def log_path(calibration: Path) -> Path:
    return calibration.with_suffix(".log")


def command(alias: str, reranker: str) -> list[str]:
    """The child's command line: ``rrs calibrate`` on ``alias`` with the served reranker (pure)."""
    return [
        sys.executable, "-m", "rrsearch", "calibrate", "--index", alias, "--reranker", reranker,
        "--queries", str(QUERIES), "--candidates", str(CANDIDATES), "--no-progress",
    ]  # fmt: skip


def state(calibration: Path, *, now: float | None = None) -> State:
    """Where the calibration cached at ``calibration`` stands: written (``done``), being made
    (``running``: its lock names a live process), tried and ended without a result (``ended``),
    or never tried (``none``)."""
    if calibration.is_file():
        return "done"
    lock = lock_path(calibration)
    try:
        text, age = lock.read_text().strip(), (now or time.time()) - lock.stat().st_mtime
    except FileNotFoundError:
        return "none"
    if not text:  # the starting worker has not written the pid yet
        return "running" if age < 60 else "ended"
    if not text.isdigit():  # the child could not be started
        return "ended"
    return "running" if pid_alive(int(text)) and age < STALE_S else "ended"


def start(
    calibration: Path, argv: list[str], env: Mapping[str, str], *, on_exit: Callable[[int], None] | None = None
) -> bool:
    """Start ``argv`` unless a run for ``calibration`` was started already (by any worker);
    True when this call started it. Its output goes to the log beside the lock; a thread reaps
    it and calls ``on_exit`` with its exit status."""
    lock = lock_path(calibration)
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        with open(log_path(calibration), "wb") as output:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=dict(env),
                start_new_session=True,
            )  # fmt: skip
        os.write(descriptor, str(process.pid).encode())
    except OSError as error:  # a search must not fail because its side job could not start
        log.warning("corpus calibration for %s could not start: %s", calibration.name, error)
        os.write(descriptor, f"not started: {error}".encode())  # reads as ended: no retry at every search
        return False
    finally:
        os.close(descriptor)
    log.info("corpus calibration started (pid %d): %s; log %s", process.pid, calibration.name, log_path(calibration))

    def reap() -> None:
        status = process.wait()
        log.info("corpus calibration pid %d ended with status %d", process.pid, status)
        if on_exit is not None:
            on_exit(status)

    threading.Thread(target=reap, name="rrs-auto-calibration", daemon=True).start()
    return True
