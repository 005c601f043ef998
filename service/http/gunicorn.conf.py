"""Gunicorn settings for ``rrs serve`` (values from the one Settings object).

* One model copy per worker: the app is built in each worker after the fork
  (``preload_app = False``), so CUDA is initialised in the process that uses it.
* Threads give concurrency inside a worker; the worker's reranker merges the
  concurrent requests' pairs into shared GPU batches.
* GPU layout: one worker per GPU. With ``RRS_SERVE_GPUS=0,1`` and ``RRS_SERVE_WORKERS=2``
  worker i sees only GPU ``gpus[i % n]`` (``CUDA_VISIBLE_DEVICES`` set before the app loads).
"""

import os

from rrsearch.core.pool_announcement import announce, local_url, wire_local_node, withdraw
from rrsearch.core.processes import exit_without_teardown
from rrsearch.core.settings import get_settings

_settings = get_settings()

bind = f"{_settings.serve_host}:{_settings.serve_port}"
workers = _settings.serve_workers
threads = _settings.serve_threads
worker_class = "gthread"
timeout = _settings.serve_timeout_s
graceful_timeout = 30
preload_app = False
accesslog = "-"
errorlog = "-"
loglevel = "info"
limit_request_line = 8190
# No control socket (gunicorn 24+ makes one at $XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl):
# a search front end and a rerank pool on one host would share that one path, and the first
# to exit would delete the other's. Nothing here uses gunicornc.
control_socket_disable = True

_gpus = [gpu.strip() for gpu in _settings.serve_gpus.split(",") if gpu.strip()]


def pre_fork(server, worker):
    """Give the new worker the GPU slot no live worker holds."""
    if not _gpus:
        return
    taken = {getattr(w, "rrs_gpu_slot", None) for w in server.WORKERS.values()}
    worker.rrs_gpu_slot = next(slot for slot in range(len(_gpus) + len(taken) + 1) if slot not in taken)


def post_fork(server, worker):
    if _gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = _gpus[worker.rrs_gpu_slot % len(_gpus)]
        server.log.info("worker %s uses GPU %s", worker.pid, os.environ["CUDA_VISIBLE_DEVICES"])


def when_ready(server):
    """A reranker pool announces where it listens (core/pool_announcement.py); a pool of the
    bi-encoder alone (RRS_POOL_MODELS=embed) does not: its /rerank answers 404."""
    if not _announced():
        return
    url = local_url(str(server.LISTENERS[0]))
    try:
        announce(_settings.home, url, os.getpid())
    except OSError as exc:  # a read-only RRS_HOME: the pool serves all the same, unannounced
        server.log.warning("reranker pool not announced in %s: %s", _settings.home, exc)
    wire_local_node(_settings, url, server.log.info)


def worker_abort(worker):
    worker.rrs_aborted = True  # past its timeout: it ends with gunicorn's own status


def worker_exit(server, worker):
    """A worker that booted and was told to stop (a signal, max requests) ends without the
    interpreter's teardown of torch and the rest: about 2 s that every stop, restart and deploy
    waited for (core/processes.py)."""
    if worker.booted and not worker.alive and not getattr(worker, "rrs_aborted", False):
        exit_without_teardown(0)


def on_exit(server):
    if not _announced():
        return
    url = withdraw(_settings.home, os.getpid())
    if url is not None:
        wire_local_node(_settings, url, server.log.info, clear=True)


def _announced() -> bool:
    return _settings.serve_role == "reranker" and "rerank" in _settings.pool_models.split(",")
