"""The ``rrs`` command: one console script, one subcommand per job.

    rrs es start|stop|status [--json]   the local Elasticsearch node
    rrs index create|delete|info         the passage index behind an alias

Every subcommand reads the same settings (``RRS_*`` / ``ES_URL``). Errors a user can fix
print one clear line and exit non-zero; no traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from rrsearch.core.console import fail, failure_line, load_settings
from rrsearch.core.settings import Settings


class Commands(click.Group):
    """The ``rrs`` group: a failure any command meets (a 401, a missing CA, a node that is
    down, a deliberate error) ends as one line on stderr and a non-zero exit, not a traceback;
    ``rrs --debug`` (or RRS_DEBUG=1) shows the traceback instead."""

    def invoke(self, ctx: click.Context):
        if not ctx.params.get("debug"):  # the client's own retry warnings would bury the one line
            logging.getLogger("elastic_transport").setLevel(logging.ERROR)
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            line = failure_line(exc)
            if line is None:
                raise
            fail(line)


@click.group(cls=Commands)
@click.option("--debug", is_flag=True, envvar="RRS_DEBUG", help="Show the traceback of a failure (RRS_DEBUG=1).")
def main(debug: bool) -> None:
    """Retrieve & Re-Rank search on Elasticsearch."""


# --- es ---------------------------------------------------------------------------------


@main.group()
def es() -> None:
    """Run a local Elasticsearch node (or report on the one ES_URL names)."""


@es.command("start")
@click.option("--port", type=int, help="HTTP port (default RRS_ES_PORT or 9200; next free if taken).")
@click.option("--dir", "node_dir", type=click.Path(path_type=Path), help="Node data/logs dir (RRS_ES_NODE_DIR).")
@click.option(
    "--nodes",
    type=click.IntRange(1, 9),
    help="Nodes in the local cluster (RRS_ES_NODES; default: what "
    "--dir holds, else 1); each gets RRS_ES_HEAP of memory. A count --dir disagrees with is refused.",
)
@click.option(
    "--secure/--no-secure",
    default=None,
    help="Security on (RRS_ES_SECURE): TLS on HTTP and transport, a CA and the elastic user's password made "
    "once in --dir; every rrs command then connects with them. Default: what --dir was last started with.",
)
def es_start(port: int | None, node_dir: Path | None, nodes: int | None, secure: bool | None) -> None:
    """Fetch (once), configure and start the node (or N nodes as one cluster); wait until it is yellow."""
    from rrsearch.core.errors import NodeError
    from rrsearch.rrs.local_node import start_node

    settings = load_settings()
    updates = {k: v for k, v in {"es_port": port, "es_node_dir": node_dir, "es_nodes": nodes}.items() if v}
    if secure is not None:
        updates["es_secure"] = secure
    settings = settings.model_copy(update=updates)
    try:
        start_node(settings, log=lambda m: click.echo(m, err=True))
    except NodeError as exc:
        fail(str(exc))


@es.command("stop")
@click.option("--dir", "node_dir", type=click.Path(path_type=Path), help="Node dir (RRS_ES_NODE_DIR).")
def es_stop(node_dir: Path | None) -> None:
    """Stop the node this directory started (and nothing else)."""
    from rrsearch.rrs.local_node import stop_node

    settings = load_settings()
    if node_dir:
        settings = settings.model_copy(update={"es_node_dir": node_dir})
    stop_node(settings, log=lambda m: click.echo(m, err=True))


@es.command("status")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object: running, state, url, version, ca_certs, auth, ..."
)
@click.option("--dir", "node_dir", type=click.Path(path_type=Path), help="Node dir (RRS_ES_NODE_DIR).")
def es_status(as_json: bool, node_dir: Path | None) -> None:
    """Say whether the cluster is up, its URL and version, and for a --secure node its CA and
    how to authenticate (the password file, never the password).

    \b
    Exit status:
      0  running: the cluster answered
      3  not running (nothing answers at the URL)
      4  up but refused: 401 (credentials) or 403 (privileges); the line names the fix
      5  up but TLS failed: its certificate is not trusted (ES_CA_CERTS) or the URL's scheme is wrong
    """
    from rrsearch.rrs.es_plugin import retrievers_note
    from rrsearch.rrs.local_node import EXIT_CODES, node_status

    settings = load_settings()
    if node_dir:
        settings = settings.model_copy(update={"es_node_dir": node_dir})
    info = node_status(settings)
    if as_json:
        click.echo(json.dumps(info.to_dict()))
    elif info.running:
        kind = "local node" if info.managed else "external cluster"
        if info.nodes:
            kind = f"local cluster of {len(info.nodes)} nodes"
        click.echo(f"running: {kind} Elasticsearch {info.version} at {info.url} ({info.health})")
        for member in info.nodes or []:
            click.echo(
                f"  {member['name']} {member['url']} pid {member['pid']} {'up' if member['running'] else 'DOWN'}"
            )
        if note := retrievers_note(info.version):
            click.echo(f"  {note}")
        if info.secure and info.auth:
            click.echo(
                f"  security on: CA {info.ca_certs}; user {info.auth['username']}, password in {info.auth['password_file']}"
            )
    elif info.fix:
        click.echo(info.fix)
    else:
        click.echo(f"not running{f' (last url {info.url})' if info.url else ''}")
    sys.exit(EXIT_CODES[info.state])


# --- index ------------------------------------------------------------------------------


def _client(settings: Settings):
    from rrsearch.core.errors import ClusterUnavailable
    from rrsearch.core.es_client import make_client

    try:
        return make_client(settings)
    except ClusterUnavailable as exc:
        fail(str(exc))


@main.group()
def index() -> None:
    """Manage the versioned passage index behind the alias (RRS_INDEX_ALIAS)."""


@index.command("create")
@click.option("--alias", help="Alias name (default RRS_INDEX_ALIAS).")
@click.option("--new-version", is_flag=True, help="Create a new version and move the alias to it.")
def index_create(alias: str | None, new_version: bool) -> None:
    """Create the index for the configured bi-encoder and point the alias at it; also the
    ingest-lock and search-log indexes when missing, so that ingest and the search service
    need no privilege to create indexes (docs/operations/security.md). On a cluster with our
    plugin, also the ingest pipeline that embeds raw passages sent by _bulk (rrs_embed), as the
    index's default pipeline (docs/plugin.md)."""
    from rrsearch.core.encoders import bi_encoder_from, embedding_dims, encoder_identity, model_label
    from rrsearch.core.indexes import create_versioned_index, ensure_alias, passage_index_body, point_alias
    from rrsearch.rrs.es_plugin import attach_embed_pipeline

    settings = load_settings()
    alias = alias or settings.index_alias
    es_client = _client(settings)
    model = bi_encoder_from(settings)
    label = model_label(settings.bi_encoder)
    body = passage_index_body(
        es_client, settings, dims=embedding_dims(model), model=label, encoder_meta=encoder_identity(model, label)
    )
    if new_version:
        name = create_versioned_index(es_client, alias, body)
        point_alias(es_client, alias, name)
    else:
        name = ensure_alias(es_client, alias, body)
    _ensure_support_indexes(es_client, settings)
    click.echo(attach_embed_pipeline(es_client, alias, name), err=True)
    click.echo(f"{alias} -> {name}")


def _ensure_support_indexes(es_client, settings: Settings) -> None:
    """The ingest-lock index and (when searches are logged) the search-log index, created by the
    admin who creates the passage index: the writer and service roles cannot create indexes."""
    from rrsearch.core.mappings import render_search_log_index
    from rrsearch.ingest.lock import _ensure_lock_index

    _ensure_lock_index(es_client)
    index = settings.search_log_index
    if settings.search_log_enabled and not es_client.indices.exists(index=index):
        body = render_search_log_index(shards=settings.search_log_shards, replicas=settings.search_log_replicas)
        try:
            es_client.indices.create(index=index, settings=body["settings"], mappings=body["mappings"])
        except Exception as exc:  # another process created it first: what was wanted
            if "resource_already_exists" not in str(exc):
                raise


@index.command("delete")
@click.option("--alias", help="Alias name (default RRS_INDEX_ALIAS).")
@click.confirmation_option(prompt="Delete every version of this alias's index?")
def index_delete(alias: str | None) -> None:
    """Delete every version of the alias's index (safe when none exists), and its index template
    for the embedding pipeline."""
    from rrsearch.core.indexes import delete_alias_and_versions
    from rrsearch.rrs.es_plugin import detach_embed_pipeline

    settings = load_settings()
    alias = alias or settings.index_alias
    es_client = _client(settings)
    dropped = delete_alias_and_versions(es_client, alias)
    detach_embed_pipeline(es_client, alias)
    click.echo(f"deleted {len(dropped)} index(es): {', '.join(dropped) or '-'}")


@index.command("info")
@click.option("--alias", help="Alias name (default RRS_INDEX_ALIAS).")
def index_info(alias: str | None) -> None:
    """Print the alias's current index, its versions, document count and _meta as JSON."""
    from rrsearch.core.indexes import current_index, list_versions

    settings = load_settings()
    alias = alias or settings.index_alias
    es_client = _client(settings)
    live = current_index(es_client, alias)
    info = {"alias": alias, "index": live, "versions": list_versions(es_client, alias)}
    if live:
        info["count"] = es_client.count(index=alias)["count"]
        info["meta"] = es_client.indices.get_mapping(index=live)[live]["mappings"].get("_meta", {})
    click.echo(json.dumps(info, indent=2))


def _add_package_commands() -> None:
    """Each package owns its subcommands; this script only gathers them."""
    from rrsearch.evaluation.cli import commands as eval_commands
    from rrsearch.ingest.cli import commands as ingest_commands
    from rrsearch.rrs.kibana import commands as kibana_commands
    from rrsearch.service.cli import commands as service_commands
    from rrsearch.training.cli import commands as training_commands

    for command in [
        *service_commands,
        *ingest_commands,
        *eval_commands,
        *training_commands,
        *kibana_commands,
    ]:
        main.add_command(command)


_add_package_commands()


def run() -> None:
    """The ``rrs`` command (``main`` is its click group): ends without the interpreter's teardown
    of torch and the rest once a command is done (``core/processes.py``: about 2 s a command)."""
    from rrsearch.core.processes import exit_without_teardown

    try:
        main()
    except SystemExit as done:  # click ends every command with one, success included
        exit_without_teardown(done.code)


if __name__ == "__main__":
    run()
