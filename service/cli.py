"""Click commands of the service package, added to ``rrs`` by ``rrs/cli.py``.

rrs serve [--host H] [--port P] [--workers N] [--threads T] [--role search|reranker]
rrs rank QUERY FILE [--top N] [--json]    paragraphs of one document, ranked by the cross-encoder
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from rrsearch.core.console import load_settings

GUNICORN_CONF = Path(__file__).resolve().parent / "http" / "gunicorn.conf.py"


@click.command("serve")
@click.option("--host", help="Bind address (default RRS_SERVE_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default RRS_SERVE_PORT, 8000).")
@click.option("--workers", type=int, help="Worker processes, one model copy each (default RRS_SERVE_WORKERS).")
@click.option("--threads", type=int, help="Threads per worker (default RRS_SERVE_THREADS).")
@click.option(
    "--role",
    type=click.Choice(["search", "reranker"]),
    help="search: the whole API; reranker: a model pool (/rerank and /embed, RRS_POOL_MODELS) for the search front ends and the plugin (default RRS_SERVE_ROLE).",
)
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None, role: str | None) -> None:
    """Run the search API under gunicorn (config: service/http/gunicorn.conf.py).

    Index alias, models and Elasticsearch URL come from the settings (RRS_* / ES_URL).
    ``--role reranker`` serves only the models, TEI-compatible: the cross-encoder (POST /rerank)
    and the bi-encoder (POST /embed), as RRS_POOL_MODELS says, for search front ends that set
    RRS_RERANKER_URL and for the Elasticsearch plugin.
    """
    settings = load_settings(serve_role=role)
    if role:
        os.environ["RRS_SERVE_ROLE"] = role  # gunicorn's workers read the settings again
    if settings.serve_role == "search":
        _refuse_a_misconfigured_cluster(settings)
    bind = f"{host or settings.serve_host}:{port or settings.serve_port}"
    argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    argv.append("rrsearch.service.http.app:create_app()")
    os.execv(sys.executable, argv)


def _refuse_a_misconfigured_cluster(settings) -> None:
    """Before gunicorn starts: a cluster that refuses our credentials, privileges, CA or API
    version stops `rrs serve` with the line that names the fix (every search would get 503
    until then); one that is down or still starting only gets a warning, as before."""
    from elasticsearch import NotFoundError

    from rrsearch.core.console import fail, failure_line
    from rrsearch.core.errors import ClusterUnavailable
    from rrsearch.core.es_client import make_client
    from rrsearch.core.es_errors import describe

    try:
        es = make_client(settings, max_retries=0)
        es.options(request_timeout=10).search(index=settings.index_alias, size=0)
    except (ClusterUnavailable, NotFoundError):
        return  # no cluster or no index yet: /readyz says so while the service waits for it
    except Exception as exc:
        problem = describe(exc)
        if problem is None:
            raise
        if problem.permanent:
            fail(failure_line(exc, settings) or problem.message)
        click.echo(f"warning: {problem.message} (serving anyway; searches answer 503 until it answers)", err=True)


@click.command("rank")
@click.argument("query")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--top", type=click.IntRange(min=1), help="Only the best N paragraphs.")
@click.option(
    "--max-chars",
    default=2000,
    show_default=True,
    type=click.IntRange(min=100),
    help="Longer paragraphs are cut at sentence ends.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array: index, score, text.")
def rank(query: str, file: Path, top: int | None, max_chars: int, as_json: bool) -> None:
    """Search inside one document: FILE (.txt, .md or .html) split into paragraphs, ranked by
    the cross-encoder for QUERY (RRS_CROSS_ENCODER, or the pool at RRS_RERANKER_URL)."""
    import json

    from rrsearch.core.console import fail
    from rrsearch.core.errors import RRSError
    from rrsearch.service.paragraphs import split_document

    settings = load_settings()
    suffix = file.suffix.lower()
    kind = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}.get(suffix, "txt")
    if suffix == ".pdf":
        fail("PDF is not read here: convert it to text first (e.g. pdftotext FILE.pdf FILE.txt)", 2)
    try:
        content = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"{file}: not UTF-8 ({exc.reason} at byte {exc.start + 1})", 2)
    paragraphs = split_document(content, kind, max_chars=max_chars)
    if not paragraphs:
        fail(f"{file}: no text to rank", 2)
    try:
        reranker = _ranking_model(settings)
        scores = reranker.rank(query, paragraphs, budget_s=3600.0, truncate=True)
    except RRSError as exc:
        fail(str(exc))
    order = sorted(range(len(paragraphs)), key=lambda i: -scores[i])[:top]
    if as_json:
        click.echo(
            json.dumps([{"index": i, "score": scores[i], "text": paragraphs[i]} for i in order], ensure_ascii=False)
        )
        return
    for place, i in enumerate(order, start=1):
        text = paragraphs[i] if len(paragraphs[i]) <= 300 else paragraphs[i][:297] + "..."
        click.echo(f"{place:3d}. {scores[i]:8.4f}  ¶{i + 1}  {text}")


def _ranking_model(settings):
    """The pool at RRS_RERANKER_URL, else the cross-encoder loaded here."""
    if settings.reranker_url:
        from rrsearch.service.remote_rerank import RemoteReranker

        key = settings.reranker_api_key.get_secret_value() if settings.reranker_api_key else None
        return RemoteReranker(settings.reranker_url, api_key=key)
    from rrsearch.service.rerank import load_reranker

    return load_reranker(settings.cross_encoder, settings)


commands: list = [serve, rank]
