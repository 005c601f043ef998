"""One ingest run per alias at a time: a lock document in Elasticsearch.

A second run into the same alias would delete the first one's half-built index (as an
abandoned build) or interleave its writes. The lock is a document ``<alias>`` in the
``rrs-ingest-locks`` index, created with ``op_type=create`` so exactly one run gets it, on
any number of machines. It names its holder (host, pid, start time); a lock whose holder
was on this host and is gone (killed) is taken over with a log line; any other can be
broken by hand (``rrs ingest --break-lock``) once the user knows its run is dead.

Example::

    with alias_lock(es, "docs", log=print):
        ...  # build, bulk-index, move the alias
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from rrsearch.core.errors import IngestLocked
from rrsearch.core.processes import pid_alive

LOCK_INDEX = "rrs-ingest-locks"  # read only by id (GET is real-time), so no write waits for a refresh


def _holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "token": uuid.uuid4().hex,
        "started_at": datetime.now(UTC).isoformat(),
    }


def _ensure_lock_index(es: Elasticsearch) -> None:
    if not es.indices.exists(index=LOCK_INDEX):
        try:
            es.indices.create(
                index=LOCK_INDEX, settings={"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}}
            )
        except Exception as exc:  # another run created it first
            if "resource_already_exists" not in str(exc):
                raise


def acquire(es: Elasticsearch, alias: str, *, log=lambda _m: None) -> dict:
    """Take the lock of ``alias`` or raise IngestLocked naming its holder; returns our holder."""
    _ensure_lock_index(es)
    holder = {**_holder(), "alias": alias}
    try:
        es.create(index=LOCK_INDEX, id=alias, document=holder)
        return holder
    except ConflictError:
        pass
    current = es.get(index=LOCK_INDEX, id=alias)
    other = current["_source"]
    if other.get("host") == holder["host"] and not pid_alive(int(other.get("pid", 0))):
        log(
            f"taking over the ingest lock of {alias!r}: its holder (pid {other.get('pid')}, since "
            f"{other.get('started_at')}) is gone"
        )
        try:  # only if nobody else took it over in between
            es.index(
                index=LOCK_INDEX,
                id=alias,
                document=holder,
                if_seq_no=current["_seq_no"],
                if_primary_term=current["_primary_term"],
            )
            return holder
        except ConflictError:
            other = es.get(index=LOCK_INDEX, id=alias)["_source"]
    raise IngestLocked(
        f"another ingest into {alias!r} is running (pid {other.get('pid')} on {other.get('host')}, since "
        f"{other.get('started_at')}); wait for it to finish, or if that run is dead, re-run with --break-lock"
    )


def release(es: Elasticsearch, alias: str, holder: dict) -> None:
    """Give the lock back if it is still ours (a broken-and-retaken lock is left alone)."""
    try:
        current = es.get(index=LOCK_INDEX, id=alias)
    except NotFoundError:
        return
    if current["_source"].get("token") == holder["token"]:
        try:
            es.delete(
                index=LOCK_INDEX,
                id=alias,
                if_seq_no=current["_seq_no"],
                if_primary_term=current["_primary_term"],
            )
        except (ConflictError, NotFoundError):
            pass


def break_lock(es: Elasticsearch, alias: str) -> dict | None:
    """Remove the lock of ``alias`` whoever holds it; returns the holder it named, if any."""
    try:
        current = es.get(index=LOCK_INDEX, id=alias)
    except NotFoundError:
        return None
    es.delete(index=LOCK_INDEX, id=alias)
    return current["_source"]


@contextmanager
def alias_lock(es: Elasticsearch, alias: str, *, log=lambda _m: None):
    """Hold the lock of ``alias`` for the block; released on the way out, error or not."""
    holder = acquire(es, alias, log=log)
    try:
        yield holder
    finally:
        try:
            release(es, alias, holder)
        except Exception as exc:  # noqa: BLE001 -- the node is down: the next run on this host takes it over
            log(
                f"could not release the ingest lock of {alias!r} ({exc.__class__.__name__}); "
                "the next run on this host takes it over"
            )
