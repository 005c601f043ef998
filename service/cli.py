"""Click command of the service package, added to ``rrs`` by ``rrs/cli.py``.

    rrs serve [--host H] [--port P] [--workers N] [--threads T] [--role search|reranker]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from core.console import load_settings

GUNICORN_CONF = Path(__file__).resolve().parent / "http" / "gunicorn.conf.py"


@click.command("serve")
@click.option("--host", help="Bind address (default RRS_SERVE_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default RRS_SERVE_PORT, 8000).")
@click.option("--workers", type=int, help="Worker processes, one model copy each (default RRS_SERVE_WORKERS).")
@click.option("--threads", type=int, help="Threads per worker (default RRS_SERVE_THREADS).")
@click.option("--role", type=click.Choice(["search", "reranker"]),
              help="search: the whole API; reranker: only /rerank, for a GPU pool (default RRS_SERVE_ROLE).")
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None, role: str | None) -> None:
    """Run the search API under gunicorn (config: service/http/gunicorn.conf.py).

    Index alias, models and Elasticsearch URL come from the settings (RRS_* / ES_URL).
    ``--role reranker`` serves only the cross-encoder (POST /rerank, TEI-compatible) for
    search front ends that set RRS_RERANKER_URL.
    """
    settings = load_settings(serve_role=role)
    if role:
        os.environ["RRS_SERVE_ROLE"] = role  # gunicorn's workers read the settings again
    bind = f"{host or settings.serve_host}:{port or settings.serve_port}"
    argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    argv.append("service.http.app:create_app()")
    os.execv(sys.executable, argv)


commands: list = [serve]
