"""Click commands of the ingest package, added to ``rrs`` by ``rrs/cli.py``.

    rrs ingest SOURCE... --index ALIAS [--rejects FILE] [--reindex] [--keep-old N] ...
    rrs delete ID... --index ALIAS [--ids-file FILE]

Exit codes of ``ingest``: 0 done; 1 records were rejected (unless --allow-rejects) or the
run failed; 2 a source or setting is wrong (nothing ingested); 130 interrupted (re-run the
same command to finish).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import click

from rrsearch.core.console import fail, failure_line, load_settings


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


@click.command("ingest")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--index", "alias", help="Alias to ingest into (default RRS_INDEX_ALIAS).")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected records (source, line, reason, record) to this JSONL file.",
)
@click.option("--allow-rejects", is_flag=True, help="Exit 0 even when records were rejected.")
@click.option("--reindex", is_flag=True, help="Build a new index version; move the alias when it is complete.")
@click.option(
    "--keep-old",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Previous index versions to keep after a --reindex.",
)
@click.option("--id-field", "id_fields", multiple=True, help="Field(s) holding the id, first present wins [_id, id].")
@click.option("--title-field", default="title", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--metadata-field", default="metadata", show_default=True, help="Field holding an object of metadata.")
@click.option(
    "--no-extra-metadata", is_flag=True, help="Drop fields not mapped above instead of keeping them in metadata."
)
@click.option("--chunk-tokens", type=int, help="Passage size in word pieces (default: fits the model).")
@click.option("--overlap", type=int, help="Word pieces shared by neighbouring passages [32].")
@click.option("--batch-size", type=int, help="Passages per encode/bulk batch [512].")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--break-lock", is_flag=True, help="Remove another run's lock on the alias first (only when that run is dead)."
)
@click.option(
    "--engine",
    type=click.Choice(["process", "ray"]),
    default="process",
    show_default=True,
    help="process: this one process; ray: Ray Data, on a local Ray or a cluster (pip install 'rrsearch[ray]').",
)
@click.option(
    "--ray-address", help="--engine ray: the cluster ('auto', HOST:PORT) [RRS_INGEST_RAY_ADDRESS; default: local]."
)
@click.option("--encoders", type=click.IntRange(min=1), help="--engine ray: encoder actors [RRS_INGEST_ENCODERS, 1].")
@click.option("--encoder-gpus", type=click.FloatRange(min=0), help="--engine ray: GPUs the encoders share [0].")
def ingest_command(
    sources,
    alias,
    rejects_path,
    allow_rejects,
    reindex,
    keep_old,
    id_fields,
    title_field,
    text_field,
    metadata_field,
    no_extra_metadata,
    chunk_tokens,
    overlap,
    batch_size,
    no_progress,
    as_json,
    break_lock,
    engine,
    ray_address,
    encoders,
    encoder_gpus,
) -> None:
    """Read, validate, chunk, embed and bulk-index SOURCE files (JSONL, CSV, Parquet, .gz, or a
    folder of .txt/.md/.html) into the passage index behind an alias."""
    from elasticsearch import ApiError
    from elasticsearch import ConnectionError as ESConnectionError

    from rrsearch.core.errors import (
        ClusterUnavailable,
        IndexModelMismatch,
        IngestInterrupted,
        OperationFailed,
        SourceError,
    )
    from rrsearch.ingest.pipeline import run_ingest
    from rrsearch.ingest.validate import FieldMap

    settings = load_settings(
        ingest_chunk_tokens=chunk_tokens, ingest_chunk_overlap=overlap, ingest_batch_size=batch_size
    )
    field_map = FieldMap(
        id=tuple(id_fields) or FieldMap.id,
        title=title_field,
        text=text_field,
        metadata=metadata_field,
        extra_to_metadata=not no_extra_metadata,
    )
    runner = _engine(engine, ray_address, encoders, encoder_gpus)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a stop is a Ctrl-C: settings restored, work kept
    try:
        report = run_ingest(
            list(sources),
            settings,
            alias=alias,
            reindex=reindex,
            rejects_path=rejects_path,
            field_map=field_map,
            progress=not no_progress,
            keep_old=keep_old,
            break_lock=break_lock,
            log=lambda message: click.echo(message, err=True),
            engine=runner,
        )
    except SourceError as exc:
        fail(str(exc), 2)
    except IndexModelMismatch as exc:
        fail(str(exc), 2)
    except OperationFailed as exc:  # the alias is locked by another run, the build was replaced, ...
        fail(str(exc), 1)
    except ClusterUnavailable as exc:
        fail(str(exc))
    except (ESConnectionError, ApiError) as exc:  # 401, 403, TLS, down: the line names the fix
        fail(failure_line(exc, settings) or f"Elasticsearch refused a request: {exc}")
    except IngestInterrupted as exc:
        click.echo(exc.report.summary(), err=True)
        fail("interrupted; run the same command again to finish (done work is kept)", 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(json.dumps(report.to_dict()) if as_json else report.summary(), err=not as_json)
    if report.rejected and not allow_rejects:
        fail(f"{report.rejected} record(s) rejected", 1)


def _engine(name: str, address: str | None, encoders: int | None, gpus: float | None):
    """The ``engine`` for run_ingest: None (this process) or Ray's; options of the other engine refused."""
    if name == "process":
        given = [
            flag
            for flag, value in (("--ray-address", address), ("--encoders", encoders), ("--encoder-gpus", gpus))
            if value is not None
        ]
        if given:
            fail(f"{', '.join(given)} only apply to --engine ray", 2)
        return None
    try:
        import ray.data  # noqa: F401 -- the optional extra
    except ImportError:
        fail("--engine ray needs Ray Data: pip install 'rrsearch[ray]'", 2)
    from rrsearch.ingest.ray_engine import ray_engine

    return ray_engine(address=address, encoders=encoders, encoder_gpus=gpus)


@click.command("delete")
@click.argument("ids", nargs=-1)
@click.option("--index", "alias", help="Alias (default RRS_INDEX_ALIAS).")
@click.option("--ids-file", type=click.File("r"), help="More ids, one per line.")
def delete_command(ids, alias, ids_file) -> None:
    """Delete documents (all their passages) by document id."""
    from rrsearch.core.errors import ClusterUnavailable, IndexMissing
    from rrsearch.core.es_client import make_client
    from rrsearch.ingest.delete import delete_documents

    wanted = [*ids, *(line.strip() for line in ids_file or [] if line.strip())]
    if not wanted:
        fail("no ids given", 2)
    settings = load_settings()
    try:
        deleted = delete_documents(make_client(settings), alias or settings.index_alias, wanted)
    except (ClusterUnavailable, IndexMissing) as exc:
        fail(str(exc))
    click.echo(f"deleted {deleted} passage(s) of {len(wanted)} document id(s)")


commands: list = [ingest_command, delete_command]
