"""What every command does the same way: read the settings, fail with one clear line.

Commands (``rrs/cli.py`` and each package's ``cli.py``) import these; nothing here imports
a command, so the command modules never import each other.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click
from pydantic import ValidationError

from rrsearch.core.settings import Settings


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (no traceback)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def describe_validation_error(exc: ValidationError) -> str:
    """``field: problem; field: problem`` for a pydantic error, as a user reads it."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def load_settings(**overrides) -> Settings:
    """The settings from the environment, with any non-None option on top.

    Options are validated like environment variables, so ``--batch-size 0`` fails the same
    way ``RRS_INGEST_BATCH_SIZE=0`` does: exit 2 with the field's name. What the environment
    and the options set stays marked as set (``model_fields_set``): a training recipe fills in
    only the settings nobody chose.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"invalid settings: {describe_validation_error(exc)}", 2)
    updates = {key: value for key, value in overrides.items() if value is not None}
    if not updates:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(exclude_unset=True), **updates})
    except ValidationError as exc:
        fail(f"invalid option: {describe_validation_error(exc)}", 2)


def failure_line(exc: BaseException, settings: Settings | None = None) -> str | None:
    """The one line a command prints for ``exc``: what an Elasticsearch failure means and
    which setting or privilege fixes it (core/es_errors.py), else a deliberate error's own
    message; None for anything else (a bug: the traceback is the useful answer)."""
    from rrsearch.core.errors import RRSError
    from rrsearch.core.es_errors import describe

    url = _cluster_url(settings)
    seen: BaseException | None = exc
    while seen is not None:  # an RRSError raised *because of* a 401 must still say 401
        problem = describe(seen, url)
        if problem is not None:
            return problem.message
        seen = seen.__cause__ or seen.__context__
    return str(exc) if isinstance(exc, RRSError) else None


def _cluster_url(settings: Settings | None) -> str | None:
    """The URL the command talked to, for the message; None when none is configured."""
    from rrsearch.core.errors import ClusterUnavailable
    from rrsearch.core.es_client import resolve_url

    try:
        return resolve_url(settings or Settings())
    except (ClusterUnavailable, ValidationError, OSError, ValueError):
        return None
