"""Click commands of the service package (serve, model tools), added to ``rrs`` by ``rrs/cli.py``.

    rrs serve [--host H] [--port P] [--workers N] [--threads T]   the API under gunicorn
    rrs rerank export-onnx MODEL_DIR [--no-quantize]              ONNX fp32 + int8 for CPU serving
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

GUNICORN_CONF = Path(__file__).resolve().parent / "gunicorn.conf.py"


@click.command("serve")
@click.option("--host", help="Bind address (default RRS_SERVE_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default RRS_SERVE_PORT, 8000).")
@click.option("--workers", type=int, help="Worker processes, one model copy each (default RRS_SERVE_WORKERS).")
@click.option("--threads", type=int, help="Threads per worker (default RRS_SERVE_THREADS).")
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None) -> None:
    """Run the search API under gunicorn (config: service/gunicorn.conf.py).

    Index alias, models and Elasticsearch URL come from the settings (RRS_* / ES_URL).
    """
    from rrs.cli import load_settings

    settings = load_settings()
    bind = f"{host or settings.serve_host}:{port or settings.serve_port}"
    argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    argv.append("service.app:create_app()")
    os.execv(sys.executable, argv)


@click.group("rerank")
def rerank() -> None:
    """Cross-encoder tools."""


@rerank.command("export-onnx")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--quantize/--no-quantize", default=True, show_default=True, help="Also write the int8 model.")
def export_onnx_command(model_dir: str, quantize: bool) -> None:
    """Export MODEL_DIR's cross-encoder to MODEL_DIR/onnx/model.onnx (+ model_qint8.onnx).

    Serve it with RRS_RERANK_BACKEND=onnx (RRS_RERANK_ONNX_FILE picks fp32 or int8).
    """
    from service.onnx_export import ExportMismatch, export_onnx

    try:
        result = export_onnx(model_dir, quantize=quantize)
    except (FileNotFoundError, ExportMismatch) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    fused = ", ".join(f"{op} x{n}" for op, n in result.fused_ops.items()) or "none (model family not fusable)"
    click.echo(f"exporter: {result.exporter}; fused: {fused}")
    click.echo(f"fp32 vs torch: max logit difference {result.max_logit_difference:.1e}")
    if result.int8_max_logit_difference is not None:
        click.echo(f"int8 vs torch: max logit difference {result.int8_max_logit_difference:.3f}")
    for path in result.paths:
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


commands: list = [serve, rerank]
