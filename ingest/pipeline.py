"""The ingest pipeline: read -> validate -> chunk -> look up -> encode -> bulk-index.

Three threads, so the encoder (the slow stage) never waits on anything else:

    prepare thread:  read, validate (rejects to file), chunk, look up ids+hashes (mget)
    main thread:     encode batch N+1  (SentenceTransformer.encode, torch's own threads)
    index thread:    bulk-index batch N (elasticsearch.helpers.streaming_bulk, 429 retries)

Bounded queues between them keep memory flat. Passages already stored with the same
content hash and model are not encoded again, which makes a re-run after a crash (or on
the same input) cheap, and the passage ids are deterministic, so a re-run never duplicates.

Example::

    report = run_ingest([Path("corpus.jsonl.gz")], Settings(), alias="scifact")
    print(report.summary())
"""

from __future__ import annotations

import functools
import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rrsearch.core.errors import IngestInterrupted, RecordRejected
from rrsearch.core.es_errors import raise_if_refused
from rrsearch.core.passage import passage_document
from rrsearch.core.settings import Settings
from rrsearch.ingest import lock
from rrsearch.ingest.chunking import Chunker, Passage
from rrsearch.ingest.delete import delete_parents
from rrsearch.ingest.ids import content_hash, passage_id
from rrsearch.ingest.report import IngestReport, StageClock
from rrsearch.ingest.sources import RawRecord, check_sources, read_sources, source_digest
from rrsearch.ingest.target import Target, close_target, open_target
from rrsearch.ingest.validate import Document, FieldMap, Limits, RejectsWriter, to_document

__all__ = ["FieldMap", "IngestInterrupted", "IngestReport", "run_ingest"]

DOCS_PER_CHUNK_CALL = 64  # documents tokenized together (tokenizers' batch call)
QUEUE_DEPTH = 2  # batches waiting between stages: enough to overlap, little memory


@dataclass
class PassageRow:
    """A passage on its way to the index, with where its document came from."""

    doc: Document
    passage: Passage
    id: str
    hash: str
    source: str
    line: int | None


@dataclass
class Batch:
    rows: list[PassageRow]
    to_encode: list[PassageRow] = field(default_factory=list)
    stale_ids: list[str] = field(default_factory=list)
    vectors: Iterable[Any] | None = None  # the encoder's output, one vector per row of to_encode


# --- preparing batches (prepare thread) -------------------------------------------------


def last_occurrences(
    records: Iterator[RawRecord], field_map: FieldMap, limits: Limits
) -> dict[str, tuple[str, int | None]]:
    """Where the last valid record of each repeated id is: (source, line). A first pass
    over the sources, so the later pass indexes only the record that wins."""
    last: dict[str, tuple[str, int | None]] = {}
    repeated: set[str] = set()
    for record in records:
        try:
            doc_id = to_document(record, field_map, limits=limits).id
        except RecordRejected:
            continue
        if doc_id in last:
            repeated.add(doc_id)
        last[doc_id] = (record.source, record.line)
    return {doc_id: last[doc_id] for doc_id in repeated}


def _documents(
    records: Iterator[RawRecord],
    field_map: FieldMap,
    rejects: RejectsWriter,
    report: IngestReport,
    clock: StageClock,
    limits: Limits,
    winners: dict[str, tuple[str, int | None]],
) -> Iterator[tuple[Document, RawRecord]]:
    """Valid documents; every invalid record, and every record a later one supersedes, goes to ``rejects``."""
    while True:
        with clock.stage("read"):
            record = next(records, None)
            if record is None:
                return
            report.read += 1
            clock.add_items("read", 1)
            try:
                doc = to_document(record, field_map, limits=limits)
            except RecordRejected as exc:
                rejects.reject(record, str(exc))
                continue
            winner = winners.get(doc.id)
            if winner is not None and winner != (record.source, record.line):
                rejects.supersede(record, doc.id, by=winner)
                continue
            report.documents += 1
        yield doc, record


def _rows(
    docs: list[tuple[Document, RawRecord]], chunker: Chunker, prompt: str, rejects: RejectsWriter, report: IngestReport
) -> list[PassageRow]:
    rows = []
    for (doc, record), passages in zip(docs, chunker.split([doc for doc, _ in docs])):
        if not passages:
            rejects.reject(record, f"field 'text': no tokens for the bi-encoder in {len(doc.text)} characters")
            report.documents -= 1
            continue
        for p in passages:
            digest = content_hash(
                title=doc.title,
                text=p.text,
                metadata=doc.metadata,
                chunk=p.chunk,
                chunk_count=p.chunk_count,
                prompt=prompt,
            )
            rows.append(PassageRow(doc, p, passage_id(doc.id, p.chunk), digest, record.source, record.line))
    report.chunks += len(rows)
    return rows


def _lookup(es, index: str, batch: Batch, model: str) -> None:
    """Split rows into current ones (skipped) and ones to encode; find stale tails to delete."""
    found = {}
    ids = list(dict.fromkeys(row.id for row in batch.rows))
    response = es.mget(index=index, ids=ids, source_includes=["content_hash", "model", "chunk_count"], realtime=True)
    for doc in response["docs"]:
        if doc.get("found"):
            found[doc["_id"]] = doc.get("_source", {})
    for row in batch.rows:
        stored = found.get(row.id)
        if stored and stored.get("content_hash") == row.hash and stored.get("model") == model:
            continue
        batch.to_encode.append(row)
        if row.passage.chunk == 0 and stored:
            old_count = int(stored.get("chunk_count") or 0)
            batch.stale_ids.extend(passage_id(row.doc.id, i) for i in range(row.passage.chunk_count, old_count))


class IndexName(Protocol):
    """What ``_batches`` needs of a Target: the name of the concrete index it looks up in."""

    @property
    def index(self) -> str: ...


def _batches(
    records,
    *,
    settings: Settings,
    field_map: FieldMap,
    chunker: Chunker,
    rejects: RejectsWriter,
    report: IngestReport,
    clock: StageClock,
    es,
    target: IndexName,
    model: str,
    lookup: bool,
    winners: dict[str, tuple[str, int | None]],
) -> Iterator[Batch]:
    """Batches of about ``ingest_batch_size`` passages, looked up and ready to encode."""
    limits = Limits.from_settings(settings)
    pending: list[PassageRow] = []
    docs: list[tuple[Document, RawRecord]] = []

    def cut(final: bool) -> Iterator[Batch]:
        nonlocal pending
        size = settings.ingest_batch_size
        while pending and (len(pending) >= size or final):
            batch = Batch(pending[:size])
            pending = pending[size:]
            with clock.stage("lookup", len(batch.rows)):
                if lookup:
                    _lookup(es, target.index, batch, model)
                else:
                    batch.to_encode = list(batch.rows)
            report.skipped_unchanged += len(batch.rows) - len(batch.to_encode)
            yield batch

    def flush_docs() -> None:
        with clock.stage("chunk", len(docs)):
            pending.extend(_rows(docs, chunker, settings.passage_prompt, rejects, report))
        docs.clear()

    for item in _documents(records, field_map, rejects, report, clock, limits, winners):
        docs.append(item)
        if len(docs) >= DOCS_PER_CHUNK_CALL:
            flush_docs()
            yield from cut(final=False)
    flush_docs()
    yield from cut(final=True)


# --- indexing (index thread) -----------------------------------------------------------


def _actions(
    batch: Batch, index: str, model: str, source_names: dict[str, str], now: str, rejected_docs: set[str]
) -> Iterator[dict]:
    assert batch.vectors is not None  # only encoded batches are indexed
    for row, vector in zip(batch.to_encode, batch.vectors):
        doc, p = row.doc, row.passage
        if doc.id in rejected_docs:
            continue  # Elasticsearch refused another passage of this document: it is a reject, wholly
        yield {
            "_op_type": "index",
            "_index": index,
            "_id": row.id,
            "_source": passage_document(
                passage_id=row.id,
                parent_id=doc.id,
                chunk=p.chunk,
                chunk_count=p.chunk_count,
                title=doc.title,
                text=p.text,
                metadata=doc.metadata,
                content_hash=row.hash,
                model=model,
                source=source_names.get(row.source, row.source),
                indexed_at=now,
                vector=vector.tolist(),
            ),
        }
    for stale in batch.stale_ids:
        yield {"_op_type": "delete", "_index": index, "_id": stale}


def _index_batch(
    es,
    batch: Batch,
    *,
    index: str,
    model: str,
    settings: Settings,
    source_names: dict[str, str],
    rejects: RejectsWriter,
    report: IngestReport,
    rejected_docs: set[str],
) -> None:
    from elasticsearch.helpers import streaming_bulk

    rows = {row.id: row for row in batch.to_encode}
    now = datetime.now(UTC).isoformat()
    for ok, item in streaming_bulk(
        es,
        _actions(batch, index, model, source_names, now, rejected_docs),
        chunk_size=max(len(rows) + len(batch.stale_ids), 1),
        max_chunk_bytes=100 * 1024 * 1024,
        raise_on_error=False,
        max_retries=settings.ingest_bulk_retries,
        initial_backoff=1,
        max_backoff=30,
    ):
        op, result = next(iter(item.items()))
        if op == "delete" and (ok or result.get("status") == 404):
            report.deleted_stale += 1 if ok else 0
            continue
        if ok:
            report.indexed += 1
            continue
        raise_if_refused(result.get("status"), result.get("error"))  # a key without write: not the record's fault
        row = rows.get(result.get("_id"))
        error = result.get("error")
        reason = error.get("reason") if isinstance(error, dict) else str(error)
        kind = error.get("type") if isinstance(error, dict) else "error"
        doc_id = row.doc.id if row else result.get("_id")
        if doc_id in rejected_docs:
            continue  # one reject per document, even when several passages failed
        rejected_docs.add(doc_id)
        rejects.write(
            source=row.source if row else "?",
            line=row.line if row else None,
            doc_id=doc_id,
            reason=f"elasticsearch {kind} (status {result.get('status')}) on passage {result.get('_id')}: {reason}",
            record=row.doc.model_dump() if row else None,
        )


# --- the run -----------------------------------------------------------------------------


def _fingerprint(sources: list[Path], field_map: FieldMap, settings: Settings, model: str) -> str:
    """Identifies 'the same run' (same content, options and model) so an interrupted build is
    resumed, not restarted; an edited source starts a new build."""
    key = json.dumps(
        {
            "sources": [source_digest(path) for path in sources],
            "field_map": asdict(field_map),
            "model": model,
            "chunk_tokens": settings.ingest_chunk_tokens,
            "overlap": settings.ingest_chunk_overlap,
            "prompt": settings.passage_prompt,
            "max_passage_chars": settings.ingest_max_passage_chars,
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class _Worker(threading.Thread):
    """A daemon thread that keeps the exception it died of."""

    def __init__(self, target, name: str):
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # noqa: BLE001 -- handed to the main thread
            self.error = exc


_DONE = object()
POLL_SECONDS = 0.2  # how often a wait on a queue looks up whether it should stop waiting


def _put(q: queue.Queue, item, give_up: Callable[[], bool]) -> bool:
    """Put ``item`` on the bounded queue ``q``, waiting in short polls so a reader that has
    stopped (``give_up()`` turns true) cannot block the writer forever; False when it gave up."""
    while not give_up():
        try:
            q.put(item, timeout=POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def run_ingest(
    sources: list[Path],
    settings: Settings,
    *,
    alias: str | None = None,
    reindex: bool = False,
    rejects_path: Path | None = None,
    field_map: FieldMap | None = None,
    progress: bool = True,
    keep_old: int = 1,
    break_lock: bool = False,
    log=lambda _message: None,
    es=None,
    engine=None,
) -> IngestReport:
    """Ingest ``sources`` into ``alias`` (default ``settings.index_alias``); see the module doc.

    Creates the alias and its first index when missing (the alias appears when the run
    completes). ``reindex`` builds a new version and moves the alias at the end, keeping
    ``keep_old`` previous versions. One run per alias at a time (``ingest/lock.py``; raises
    ``IngestLocked``); ``break_lock`` removes a dead run's lock first. Raises
    ``IngestInterrupted`` on Ctrl-C (or SIGTERM) after saving what was encoded; any other
    error propagates after the index settings are restored. ``engine`` runs the ingest once
    the lock is held (default: this module's threads; ``ingest/ray_engine.py``: Ray Data).
    """
    from rrsearch.core.es_client import make_client, server_version

    sources = [Path(path) for path in sources]
    check_sources(sources)  # fail fast on a typo, before loading anything
    alias = alias or settings.index_alias
    own_client = es is None
    if own_client:
        es = make_client(settings, request_timeout=max(settings.es_request_timeout_s, 120.0))
    try:
        server_version(es)  # fail fast when the cluster is unreachable, before loading the model
        if break_lock and (holder := lock.break_lock(es, alias)):
            log(f"broke the ingest lock of {alias!r} held by pid {holder.get('pid')} on {holder.get('host')}")
        with lock.alias_lock(es, alias, log=log):
            return (engine or _ingest)(
                sources,
                settings,
                alias=alias,
                reindex=reindex,
                rejects_path=rejects_path,
                field_map=field_map or FieldMap(),
                progress=progress,
                keep_old=keep_old,
                es=es,
            )
    finally:
        if own_client:
            es.close()


@dataclass
class RunSetup:
    """What every engine starts a run with: the encoder, the chunker, the target index
    (created or resumed), an empty report and the rejects file."""

    model: object
    label: str
    encode: Callable
    chunker: Chunker
    target: Target
    report: IngestReport
    rejects: RejectsWriter
    source_names: dict[str, str]
    started: float


def open_run(
    sources: list[Path],
    settings: Settings,
    *,
    alias: str,
    reindex: bool,
    rejects_path: Path | None,
    field_map: FieldMap,
    es,
) -> RunSetup:
    """Load the encoder, open the target (``ingest/target.py``) and the rejects file."""
    from rrsearch.core.encoders import (
        bi_encoder_from,
        embedding_dims,
        encode_batch_size,
        encode_passages,
        encoder_identity,
        model_label,
    )
    from rrsearch.core.indexes import passage_index_body

    checked = check_sources(sources)
    started = time.perf_counter()
    model = bi_encoder_from(settings)
    label = model_label(settings.bi_encoder)
    identity = encoder_identity(model, label)
    encode = functools.partial(
        encode_passages,
        model,
        prompt=settings.passage_prompt,
        batch_size=encode_batch_size(settings, model),
        normalize=settings.vector_similarity in ("cosine", "dot_product"),
    )
    chunker = Chunker.for_model(
        model,
        chunk_tokens=settings.ingest_chunk_tokens,
        overlap=settings.ingest_chunk_overlap,
        prompt=settings.passage_prompt,
        max_passage_chars=settings.ingest_max_passage_chars,
    )
    body = passage_index_body(es, settings, dims=embedding_dims(model), model=label, encoder_meta=identity)
    encoded_by = f"{label} {identity['bi_encoder_backend']} {identity['bi_encoder_precision']}"
    target = open_target(
        es,
        alias,
        body,
        reindex=reindex,
        fingerprint=_fingerprint(sources, field_map, settings, encoded_by),
        model=label,
        refresh=settings.ingest_refresh_interval,
        tolerance=settings.bi_encoder_tolerance,
    )
    report = IngestReport(
        alias=alias,
        index_name=target.index,
        mode=target.mode,
        resumed=target.resumed,
        rejects_path=str(rejects_path) if rejects_path else None,
    )
    return RunSetup(
        model,
        label,
        encode,
        chunker,
        target,
        report,
        RejectsWriter(rejects_path),
        {str(path): path.name for path, _ in checked},
        started,
    )


def _ingest(
    sources: list[Path],
    settings: Settings,
    *,
    alias: str,
    reindex: bool,
    rejects_path: Path | None,
    field_map: FieldMap,
    progress: bool,
    keep_old: int,
    es,
) -> IngestReport:
    """One run, with the alias's lock held and a client open."""
    run = open_run(
        sources, settings, alias=alias, reindex=reindex, rejects_path=rejects_path, field_map=field_map, es=es
    )
    label, encode, chunker, target = run.label, run.encode, run.chunker, run.target
    report, rejects, started, source_names = run.report, run.rejects, run.started, run.source_names
    clock = StageClock()
    stop = threading.Event()
    to_encode: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
    to_index: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
    rejected_docs: set[str] = set()
    preparer = _Worker(
        functools.partial(
            _prepare,
            sources,
            settings=settings,
            field_map=field_map,
            chunker=chunker,
            rejects=rejects,
            report=report,
            clock=clock,
            es=es,
            target=target,
            model=label,
            lookup=target.mode == "upsert" or target.resumed,
            out=to_encode,
            stop=stop,
        ),
        "ingest-prepare",
    )
    indexer = _Worker(
        functools.partial(
            _index_all,
            to_index,
            es,
            index=target.index,
            model=label,
            settings=settings,
            source_names=source_names,
            rejects=rejects,
            report=report,
            rejected_docs=rejected_docs,
            clock=clock,
        ),
        "ingest-index",
    )
    bar = _progress_bar(progress)
    publish = False  # whether close_target may move the alias: only once every batch is indexed
    try:
        try:
            preparer.start()
            indexer.start()
            _encode_all(
                to_encode,
                to_index,
                preparer,
                indexer,
                encode=encode,
                report=report,
                clock=clock,
                rejects=rejects,
                bar=bar,
            )
        except KeyboardInterrupt:  # keep what was encoded: the index thread finishes it
            stop.set()
            _drain(to_index, indexer)
            raise IngestInterrupted(report) from None
        except BaseException:  # a failure: what waits to be indexed is dropped
            stop.set()
            _drain(to_index, indexer, wait=False)
            raise
        _drain(to_index, indexer)
        if indexer.error:
            raise indexer.error
        if rejected_docs:  # a document Elasticsearch refused in part is not left half-indexed
            delete_parents(es, target.index, rejected_docs)
        report.documents -= len(rejected_docs)
        publish = report.documents != 0  # never swap the alias onto a build holding no document
    finally:  # the one way out: index settings restored and the report filled in, whatever happened
        try:
            close_target(es, target, completed=publish, keep_old=keep_old)
        finally:
            _finish(report, clock, started, rejects, bar)
    report.completed = True
    report.alias_moved = target.mode == "build" and publish
    report.dropped_indexes = target.dropped
    return report


def _prepare(
    sources: list[Path],
    *,
    settings: Settings,
    field_map: FieldMap,
    chunker: Chunker,
    rejects: RejectsWriter,
    report: IngestReport,
    clock: StageClock,
    es,
    target: Target,
    model: str,
    lookup: bool,
    out: queue.Queue,
    stop: threading.Event,
) -> None:
    """The prepare thread's stage: batches onto ``out`` until the sources end, then ``_DONE`` (also
    when it fails, so the main thread stops waiting); gives up as soon as ``stop`` is set."""
    try:
        with clock.stage("read"):
            winners = last_occurrences(
                read_sources(sources, settings.ingest_max_line_bytes), field_map, Limits.from_settings(settings)
            )
        records = read_sources(sources, settings.ingest_max_line_bytes)
        for batch in _batches(
            records,
            settings=settings,
            field_map=field_map,
            chunker=chunker,
            rejects=rejects,
            report=report,
            clock=clock,
            es=es,
            target=target,
            model=model,
            lookup=lookup,
            winners=winners,
        ):
            if not _put(out, batch, stop.is_set):
                return
    finally:
        _put(out, _DONE, stop.is_set)


def _index_all(inbox: queue.Queue, es, *, clock: StageClock, **batch_options) -> None:
    """The index thread's stage: bulk-index each encoded batch (``_index_batch``) until ``_DONE``."""
    while True:
        batch = inbox.get()
        if batch is _DONE:
            return
        with clock.stage("index", len(batch.to_encode)):
            _index_batch(es, batch, **batch_options)


def _encode_all(
    to_encode: queue.Queue,
    to_index: queue.Queue,
    preparer: _Worker,
    indexer: _Worker,
    *,
    encode,
    report: IngestReport,
    clock: StageClock,
    rejects: RejectsWriter,
    bar,
) -> None:
    """The main thread's stage: encode each prepared batch and hand it to the index thread,
    until the prepare thread is done; raises what either worker died of."""
    while True:
        batch = _next_batch(to_encode, preparer, indexer)
        if batch is _DONE:
            break
        if batch.to_encode:
            with clock.stage("encode", len(batch.to_encode)):
                batch.vectors = encode([row.passage.embed_text for row in batch.to_encode])
            report.encoded += len(batch.to_encode)
            if not _put(to_index, batch, lambda: indexer.error is not None):
                assert indexer.error is not None  # _put gives up only once the index thread has failed
                raise indexer.error
        bar.update(len(batch.rows))
        bar.set_postfix(records=report.read, rejected=rejects.count, refresh=False)
    if preparer.error:
        raise preparer.error


def _next_batch(q: queue.Queue, preparer: _Worker, indexer: _Worker):
    """The next batch to encode; raises what a worker died of instead of waiting forever."""
    while True:
        for worker in (preparer, indexer):
            if worker.error is not None:
                raise worker.error
        try:
            return q.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue


def _drain(q: queue.Queue, indexer: _Worker, wait: bool = True) -> None:
    """Let the index thread finish what was already encoded (or, without ``wait``, drop it), then stop it."""
    if not indexer.is_alive():
        return
    if not wait:
        while True:  # drop what is waiting so the sentinel fits
            try:
                q.get_nowait()
            except queue.Empty:
                break
    _put(q, _DONE, lambda: not indexer.is_alive())
    indexer.join()


def _finish(report: IngestReport, clock: StageClock, started: float, rejects: RejectsWriter, bar) -> None:
    report.wall_seconds = time.perf_counter() - started
    report.stage_seconds = dict(clock.seconds)
    report.stage_items = dict(clock.items)
    report.rejected = rejects.count
    report.duplicate_ids = rejects.superseded
    report.reject_examples = list(rejects.examples)
    rejects.close()
    bar.close()


def _progress_bar(enabled: bool):
    from tqdm import tqdm

    return tqdm(unit=" passages", desc="ingest", disable=not enabled, dynamic_ncols=True, smoothing=0.1)
