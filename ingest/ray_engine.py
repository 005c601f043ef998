"""``rrs ingest --engine ray``: the same ingest on Ray Data, past one machine.

The driver (this process) holds the alias lock and the target index, as the single-process
engine does (``ingest/pipeline.py``), and plans shards (``ingest/shards.py``). Then:

1. **Duplicates, a global pass.** Each shard is read and validated by a Ray task, which
   returns its valid ids with their lines; one more task walks them in input order and finds
   where the last record of each repeated id is (what ``last_occurrences`` does on one
   machine). Only those winners travel on, to the readers, which wait for them; the
   encoders load their model meanwhile.
2. **Read, validate, chunk, look up** (reader actors): our own code on each shard
   (``_batches`` of the pipeline, with the winners), so every record becomes passages or a
   reject with its true file and line, superseded records included.
3. **Encode** (an actor pool of ``--encoders`` actors, each loading the bi-encoder once:
   ONNX on a CPU, fp16 on CUDA with ``--encoder-gpus``).
4. **Write** (writer actors): ``streaming_bulk`` with our deterministic ids, so Ray's
   retries are idempotent; a refused passage makes its document a reject.

The driver collects what comes out (rejects, per-shard counts, handled passage ids, stage
times) and accounts for every shard: the run completes only when each shard's passages are
all written and ``read = documents + rejected + superseded``; only then are settings
restored and the alias moved. Any failure leaves the alias where it was. A finished shard
of a build is recorded in the new index's ``_meta`` (with its counts and rejects), so a
re-run of the same command resumes and skips it.

Example::

    report = run_ingest([Path("corpus.jsonl")], settings, alias="docs", engine=ray_engine(encoders=2))
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from rrsearch.core.errors import IngestInterrupted, OperationFailed, RecordRejected
from rrsearch.core.es_errors import raise_if_refused
from rrsearch.core.settings import Settings
from rrsearch.ingest.chunking import Chunker, Passage
from rrsearch.ingest.delete import delete_parents
from rrsearch.ingest.pipeline import (
    Batch,
    PassageRow,
    _actions,
    _batches,
    _finish,
    _progress_bar,
    open_run,
)
from rrsearch.ingest.report import IngestReport, StageClock
from rrsearch.ingest.shards import Shard, plan_shards, read_shard
from rrsearch.ingest.target import Target, _meta, _set_ingest_meta, close_target
from rrsearch.ingest.validate import Document, FieldMap, Limits, RejectsWriter, to_document

if TYPE_CHECKING:
    from ray.data import Dataset, TaskPoolStrategy

DONE_SHARDS_META = "ray_shards"  # _meta.ingest key of the shards a build has finished
MAX_REJECTS_KEPT_PER_SHARD = 200  # a finished shard with more is re-read on resume, not skipped


def ray_engine(*, address: str | None = None, encoders: int | None = None, encoder_gpus: float | None = None):
    """An ``engine`` for :func:`rrsearch.ingest.pipeline.run_ingest` that runs on Ray."""
    return functools.partial(_ray_ingest, address=address, encoders=encoders, encoder_gpus=encoder_gpus)


# --- rows between the stages ------------------------------------------------------------

_COLUMNS = {  # every stage's output has these columns; a row's kind says which are filled
    "kind": "string",
    "shard": "int64",
    "pid": "string",
    "doc_id": "string",
    "chunk": "int64",
    "chunk_count": "int64",
    "title": "string",
    "text": "string",
    "embed_text": "string",
    "metadata": "string",
    "hash": "string",
    "source": "string",
    "line": "int64",
    "info": "string",
}


def _schema():
    import pyarrow as pa

    fields = [pa.field(name, getattr(pa, kind)()) for name, kind in _COLUMNS.items()]
    return pa.schema([*fields, pa.field("vector", pa.list_(pa.float32()))])


def _table(rows: list[dict]):
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=_schema())


def _info_row(kind: str, shard: int, **info) -> dict:
    return {"kind": kind, "shard": shard, "info": json.dumps(info, ensure_ascii=False, default=str)}


def _passage_row(shard: int, row: PassageRow) -> dict:
    doc, p = row.doc, row.passage
    return {
        "kind": "passage",
        "shard": shard,
        "pid": row.id,
        "doc_id": doc.id,
        "chunk": p.chunk,
        "chunk_count": p.chunk_count,
        "title": doc.title,
        "text": p.text,
        "embed_text": p.embed_text,
        "metadata": json.dumps(doc.metadata, ensure_ascii=False),
        "hash": row.hash,
        "source": row.source,
        "line": row.line,
    }


def _to_passage_row(row: dict) -> PassageRow:
    """The pipeline's PassageRow again, from a row (``_actions`` builds the bulk items from it)."""
    doc = Document.model_construct(
        id=row["doc_id"], title=row["title"] or "", text=row["text"], metadata=json.loads(row["metadata"])
    )
    passage = Passage(row["chunk"], row["chunk_count"], row["text"], row["embed_text"], 0, len(row["text"]))
    return PassageRow(doc, passage, row["pid"], row["hash"], row["source"], row["line"])


class _Collected(RejectsWriter):
    """Rejects a worker makes, kept as entries for the driver to write to the one rejects file."""

    def __init__(self) -> None:
        super().__init__(None)
        self.entries: list[dict] = []

    def write(self, *, source, line, reason, record=None, doc_id=None, superseded=False) -> None:
        super().write(source=source, line=line, reason=reason, record=record, doc_id=doc_id, superseded=superseded)
        self.entries.append(
            {
                "source": source,
                "line": line,
                "reason": reason,
                "record": record,
                "doc_id": doc_id,
                "superseded": superseded,
            }
        )


# --- the stages (run in Ray workers) ----------------------------------------------------


def _scan_ids(shard: Shard, field_map: FieldMap, limits: Limits, max_line_bytes: int) -> list:
    """Pass 1 on one shard: its valid ids with their lines, in input order."""
    ids = []
    for record in read_shard(shard, max_line_bytes):
        try:
            ids.append((to_document(record, field_map, limits=limits).id, record.line))
        except RecordRejected:
            continue
    return ids


def _last_records(paths: list[str], *ids_by_shard: list) -> dict[str, tuple[str, int | None]]:
    """Pass 1's end: where the last valid record of each repeated id is, walking the shards in
    input order (what ``last_occurrences`` does on one machine). Only repeated ids travel on."""
    last: dict[str, tuple[str, int | None]] = {}
    repeated: set[str] = set()
    for path, ids in zip(paths, ids_by_shard):
        for doc_id, line in ids:
            if doc_id in last:
                repeated.add(doc_id)
            last[doc_id] = (path, line)
    return {doc_id: last[doc_id] for doc_id in repeated}


@dataclass
class _Index:
    index: str  # what ``_batches`` needs of a Target


class ShardReader:
    """Pass 2, first stage: our reading, validation, chunking and lookup of whole shards."""

    def __init__(
        self,
        settings: Settings,
        field_map: FieldMap,
        chunker: Chunker,
        winners: list,
        index: str,
        model: str,
        lookup: bool,
    ):
        from rrsearch.core.es_client import make_client

        self.settings, self.field_map, self.chunker = settings, field_map, chunker
        self._winners_ref = winners  # [ref]: fetched when the first shard comes
        self.winners: dict[str, tuple[str, int | None]] | None = None
        self.index, self.model, self.lookup = index, model, lookup
        self.es = make_client(settings, request_timeout=max(settings.es_request_timeout_s, 120.0)) if lookup else None

    def __call__(self, batch) -> Iterator:
        if self.winners is None:
            import ray

            self.winners = ray.get(self._winners_ref[0])
        for text in batch["shard"]:
            yield from self._shard(Shard(**json.loads(text)))

    def _shard(self, shard: Shard) -> Iterator:
        assert self.winners is not None  # fetched by __call__ before the first shard
        report = IngestReport(alias="", index_name=self.index, mode="")
        clock, rejects = StageClock(), _Collected()
        records = read_shard(shard, self.settings.ingest_max_line_bytes)
        passages = stale = 0
        for batch in _batches(
            records,
            settings=self.settings,
            field_map=self.field_map,
            chunker=self.chunker,
            rejects=rejects,
            report=report,
            clock=clock,
            es=self.es,
            target=_Index(self.index),
            model=self.model,
            lookup=self.lookup,
            winners=self.winners,
        ):
            rows = [_passage_row(shard.index, row) for row in batch.to_encode]
            rows += [{"kind": "stale", "shard": shard.index, "pid": stale_id} for stale_id in batch.stale_ids]
            passages, stale = passages + len(batch.to_encode), stale + len(batch.stale_ids)
            if rows:
                yield _table(rows)
        rows = [_info_row("reject", shard.index, **entry) for entry in rejects.entries]
        rows.append(
            _info_row(
                "shard",
                shard.index,
                key=shard.key,
                read=report.read,
                documents=report.documents,
                chunks=report.chunks,
                skipped_unchanged=report.skipped_unchanged,
                expected=passages + stale,
                seconds=clock.seconds,
                items=clock.items,
            )
        )
        yield _table(rows)


def read_shards(batch, **options) -> Iterator:
    """``ShardReader`` as a Ray task (tasks start on pooled workers, actors on new processes)."""
    yield from ShardReader(**options)(batch)


class Encoder:
    """Pass 2, second stage: the bi-encoder, loaded once per actor; other rows pass through."""

    def __init__(self, settings: Settings):
        from rrsearch.core.encoders import bi_encoder_from, encode_batch_size, encode_passages

        model = bi_encoder_from(settings)
        self.encode = functools.partial(
            encode_passages,
            model,
            prompt=settings.passage_prompt,
            batch_size=encode_batch_size(settings, model),
            normalize=settings.vector_similarity in ("cosine", "dot_product"),
        )

    def __call__(self, table):
        import pyarrow as pa

        rows = table.to_pylist()
        todo = [row for row in rows if row["kind"] == "passage"]
        started = time.perf_counter()
        if todo:
            for row, vector in zip(todo, self.encode([row["embed_text"] for row in todo])):
                row["vector"] = vector.tolist()
        rows.append(_info_row("timing", -1, stage="encode", seconds=time.perf_counter() - started, items=len(todo)))
        return pa.Table.from_pylist(rows, schema=_schema())


class Writer:
    """Pass 2, last stage: ``streaming_bulk`` of encoded passages and stale deletes; says which
    passage ids it handled (so a retried batch is not counted twice) and which were refused."""

    def __init__(self, settings: Settings, index: str, model: str, source_names: dict[str, str]):
        from rrsearch.core.es_client import make_client

        self.settings, self.index, self.model, self.source_names = settings, index, model, source_names
        self.es = make_client(settings, request_timeout=max(settings.es_request_timeout_s, 120.0))

    def __call__(self, table):
        from elasticsearch.helpers import streaming_bulk

        rows = table.to_pylist()
        passages = [row for row in rows if row["kind"] == "passage"]
        batch = Batch(
            rows=[],
            to_encode=[_to_passage_row(row) for row in passages],
            stale_ids=[row["pid"] for row in rows if row["kind"] == "stale"],
            vectors=[_Vector(row["vector"]) for row in passages],
        )
        shard_of = {row["pid"]: row["shard"] for row in rows if row["kind"] in ("passage", "stale")}
        by_id = {row.id: row for row in batch.to_encode}
        handled: dict[int, dict] = {}
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat()
        actions = _actions(batch, self.index, self.model, self.source_names, now, set())
        for ok, item in streaming_bulk(
            self.es,
            actions,
            chunk_size=max(len(shard_of), 1),
            max_chunk_bytes=100 * 1024 * 1024,
            raise_on_error=False,
            max_retries=self.settings.ingest_bulk_retries,
            initial_backoff=1,
            max_backoff=30,
        ):
            op, result = next(iter(item.items()))
            pid = result.get("_id")
            done = handled.setdefault(shard_of[pid], {"indexed": [], "deleted": [], "failed": []})
            if op == "delete":
                done["deleted"].append(pid)  # gone either way (404: already gone)
            elif ok:
                done["indexed"].append(pid)
            else:
                raise_if_refused(result.get("status"), result.get("error"))  # not the record's fault: stop
                row, error = by_id[pid], result.get("error")
                reason = error.get("reason") if isinstance(error, dict) else str(error)
                kind = error.get("type") if isinstance(error, dict) else "error"
                done["failed"].append(
                    {
                        "pid": pid,
                        "doc_id": row.doc.id,
                        "source": row.source,
                        "line": row.line,
                        "reason": f"elasticsearch {kind} (status {result.get('status')}) on passage {pid}: {reason}",
                        "record": row.doc.model_dump(),
                    }
                )
        out = [row | {"vector": None} for row in rows if row["kind"] in ("reject", "shard", "timing")]
        out += [_info_row("written", shard, **done) for shard, done in handled.items()]
        out.append(_info_row("timing", -1, stage="index", seconds=time.perf_counter() - started, items=len(passages)))
        return _table(out)


def write_passages(table, **options):
    """``Writer`` as a Ray task, with its client closed after."""
    writer = Writer(**options)
    try:
        return writer(table)
    finally:
        writer.es.close()


class _Vector(list):
    """A vector as ``_actions`` expects it (it calls ``.tolist()``)."""

    def tolist(self) -> list:
        return list(self)


# --- the driver -------------------------------------------------------------------------


@dataclass
class _ShardState:
    summary: dict | None = None
    handled: set[str] = field(default_factory=set)
    rejects: list[dict] = field(default_factory=list)
    es_refused: bool = False
    recorded: bool = False

    @property
    def done(self) -> bool:
        return self.summary is not None and len(self.handled) >= self.summary["expected"]


def _connect(address: str | None, log) -> bool:
    """Join the Ray cluster at ``address`` (or start a local one); True when this call started Ray."""
    import ray

    if ray.is_initialized():
        return False
    if not address:  # a Ray this call starts sends no usage stats (a cluster we join keeps its own choice)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    resources = ray.cluster_resources()
    log(
        f"ray: {int(resources.get('CPU', 0))} CPU(s), {int(resources.get('GPU', 0))} GPU(s)"
        f"{' at ' + address if address else ' (local)'}"
    )
    return True


def _quiet_data_context() -> None:
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # ours is the one bar
    context.print_on_execution_start = False
    context.enable_operator_progress_bars = False


def _winners(shards: list[Shard], settings: Settings, field_map: FieldMap):
    """Pass 1 as Ray tasks (one per shard, then one that walks them in order): a reference to
    the winners, so the encoders load their model while it runs; the readers wait for it."""
    import ray

    scan = ray.remote(num_cpus=0.5)(_scan_ids)
    limits = Limits.from_settings(settings)
    ids = [scan.remote(shard, field_map, limits, settings.ingest_max_line_bytes) for shard in shards]
    return ray.remote(num_cpus=0)(_last_records).remote([shard.path for shard in shards], *ids)


class _Resources(TypedDict, total=False):
    """Ray resources of one encoder actor."""

    num_cpus: float
    num_gpus: float


class _Restarts(TypedDict, total=False):
    """How often Ray restarts a dead encoder actor, and retries its tasks."""

    max_restarts: int
    max_task_retries: int


class _TaskOptions(TypedDict):
    """How the light stages (readers, writers) run: tasks on pooled workers."""

    num_cpus: float
    max_retries: int
    compute: TaskPoolStrategy


def _encoder_resources(encoders: int, gpus: float) -> tuple[_Resources, int]:
    """Ray resources of one encoder actor, and the CPU threads it may use."""
    import ray

    if gpus > 0:
        return {"num_gpus": gpus / encoders, "num_cpus": 1}, 1
    cpus = int(ray.cluster_resources().get("CPU", 1))
    threads = max(1, cpus // encoders)
    return {"num_cpus": min(threads, cpus)}, threads


def _ray_ingest(
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
    address: str | None,
    encoders: int | None,
    encoder_gpus: float | None,
) -> IngestReport:
    """One run on Ray, with the alias's lock held and a client open (see the module doc)."""
    address = address or settings.ingest_ray_address
    encoders = encoders or settings.ingest_encoders
    gpus = settings.ingest_encoder_gpus if encoder_gpus is None else encoder_gpus
    shards = plan_shards(
        sources, target_bytes=settings.ingest_shard_bytes, max_line_bytes=settings.ingest_max_line_bytes
    )
    started_ray = _connect(address, log=lambda m: None)
    run = open_run(
        sources, settings, alias=alias, reindex=reindex, rejects_path=rejects_path, field_map=field_map, es=es
    )
    target, report, rejects = run.target, run.report, run.rejects
    clock, bar = StageClock(), _progress_bar(progress)
    states = {shard.index: _ShardState() for shard in shards}
    rejected_docs: set[str] = set()
    publish = False
    try:
        try:
            _quiet_data_context()
            skipped = _replay_done_shards(es, target, shards, states, report, rejects) if target.resumed else set()
            winners = [_winners(shards, settings, field_map)]  # in a list: passed on as a reference
            pending = [shard for shard in shards if shard.index not in skipped]
            if pending:
                ds = _pipeline(pending, settings, field_map, run, winners, encoders, gpus)
                for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                    for row in batch.to_pylist():
                        _collect(row, states, shards, report, rejects, clock, rejected_docs, bar, es, target)
        except KeyboardInterrupt:
            raise IngestInterrupted(report) from None
        except (OperationFailed, RecordRejected):
            raise
        except Exception as exc:  # a Ray worker or task failed for good
            raise OperationFailed(
                f"the Ray run failed ({exc.__class__.__name__}: {str(exc).splitlines()[0][:300]}); "
                "the alias was not moved; run the same command again to resume"
            ) from exc
        _account(states, shards, report, rejects, rejected_docs)
        if rejected_docs:  # a document Elasticsearch refused in part is not left half-indexed
            delete_parents(es, target.index, rejected_docs)
        publish = report.documents != 0
    finally:
        try:
            close_target(es, target, completed=publish, keep_old=keep_old)
        finally:
            _finish(report, clock, run.started, rejects, bar)
            if started_ray:
                import ray

                ray.shutdown()
    report.completed = True
    report.alias_moved = target.mode == "build" and publish
    report.dropped_indexes = target.dropped
    return report


def _pipeline(
    shards: list[Shard], settings: Settings, field_map: FieldMap, run, winners: list, encoders: int, gpus: float
):
    """Pass 2 as one streaming Ray Data plan: readers -> encoder actor pool -> writers."""
    import ray.data
    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    encoder_resources, threads = _encoder_resources(encoders, gpus)
    encoder_settings = settings.model_copy(update={"torch_threads": threads, "device": "cuda" if gpus > 0 else "cpu"})
    lookup = run.target.mode == "upsert" or run.target.resumed
    retries = settings.ingest_ray_max_restarts
    ds: Dataset = ray.data.from_items(
        [{"shard": json.dumps(s.to_dict())} for s in shards], override_num_blocks=len(shards)
    )
    # Readers and writers are tasks that ask for no CPU: they are light next to encoding, and
    # must not keep an encoder from being scheduled on a machine whose cores the encoders take.
    tasks = TaskPoolStrategy(size=min(len(shards), max(2, encoders)))
    light: _TaskOptions = {"num_cpus": 0, "max_retries": retries, "compute": tasks}
    ds = ds.map_batches(
        read_shards,
        batch_size=1,
        **light,
        fn_kwargs={
            "settings": settings,
            "field_map": field_map,
            "chunker": run.chunker,
            "winners": winners,
            "index": run.target.index,
            "model": run.label,
            "lookup": lookup,
        },
    )
    restarts: _Restarts = {"max_restarts": retries}
    if retries == 0:
        restarts["max_task_retries"] = 0
    ds = ds.map_batches(
        Encoder,
        batch_size=None,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=encoders),
        fn_constructor_kwargs={"settings": encoder_settings},
        **encoder_resources,
        **restarts,
    )
    return ds.map_batches(
        write_passages,
        batch_size=None,
        batch_format="pyarrow",
        **light,
        fn_kwargs={
            "settings": settings,
            "index": run.target.index,
            "model": run.label,
            "source_names": run.source_names,
        },
    )


def _collect(
    row: dict,
    states: dict[int, _ShardState],
    shards: list[Shard],
    report: IngestReport,
    rejects: RejectsWriter,
    clock: StageClock,
    rejected_docs: set[str],
    bar,
    es,
    target: Target,
) -> None:
    """Take one output row into the run's accounts (idempotent: a retried batch adds nothing)."""
    info = json.loads(row["info"]) if row["info"] else {}
    kind, state = row["kind"], states.get(row["shard"])
    if kind == "timing":
        clock.seconds[info["stage"]] += info["seconds"]
        clock.items[info["stage"]] += info["items"]
        return
    assert state is not None  # every row but a timing one belongs to a planned shard
    if kind == "reject":
        if info not in state.rejects:
            state.rejects.append(info)
            _write_reject(rejects, info)
    elif kind == "shard" and state.summary is None:
        state.summary = info
        for name in ("read", "documents", "chunks", "skipped_unchanged"):
            setattr(report, name, getattr(report, name) + info[name])
        for stage, seconds in info["seconds"].items():
            clock.seconds[stage] += seconds
            clock.items[stage] += info["items"][stage]
        bar.update(info["skipped_unchanged"])
    elif kind == "written":
        new = [pid for pid in info["indexed"] if pid not in state.handled]
        report.indexed += len(new)
        report.encoded += len(new)
        report.deleted_stale += len([pid for pid in info["deleted"] if pid not in state.handled])
        state.handled.update(info["indexed"], info["deleted"])
        for failure in info["failed"]:
            state.handled.add(failure["pid"])
            state.es_refused = True
            if failure["doc_id"] not in rejected_docs:  # one reject per document
                rejected_docs.add(failure["doc_id"])
                rejects.write(
                    source=failure["source"],
                    line=failure["line"],
                    doc_id=failure["doc_id"],
                    reason=failure["reason"],
                    record=failure["record"],
                )
        bar.update(len(new))
    bar.set_postfix(records=report.read, rejected=rejects.count, refresh=False)
    if state.done and not state.recorded and target.mode == "build":
        _record_done(es, target, shards[row["shard"]], state)


def _write_reject(rejects: RejectsWriter, entry: dict) -> None:
    rejects.write(
        source=entry["source"],
        line=entry["line"],
        reason=entry["reason"],
        record=entry["record"],
        doc_id=entry["doc_id"],
        superseded=entry["superseded"],
    )


def _record_done(es, target: Target, shard: Shard, state: _ShardState) -> None:
    """Note a finished shard in the build's ``_meta``, so a re-run skips it (when its rejects fit)."""
    state.recorded = True
    if state.es_refused or len(state.rejects) > MAX_REJECTS_KEPT_PER_SHARD:
        return  # re-read on resume: its refused documents must be deleted again, its rejects written again
    done = _meta(es, target.index).get("ingest", {}).get(DONE_SHARDS_META, {})
    assert state.summary is not None  # a shard is done once its summary came
    summary = {k: state.summary[k] for k in ("read", "documents", "chunks", "skipped_unchanged", "expected")}
    done[shard.key] = {"summary": summary, "rejects": state.rejects}
    _set_ingest_meta(es, target.index, **{DONE_SHARDS_META: done})


def _replay_done_shards(
    es,
    target: Target,
    shards: list[Shard],
    states: dict[int, _ShardState],
    report: IngestReport,
    rejects: RejectsWriter,
) -> set[int]:
    """A resumed build: the shards an earlier run finished are not read again; their counts
    and rejects come from the record it left. Returns their indexes."""
    done = _meta(es, target.index).get("ingest", {}).get(DONE_SHARDS_META, {})
    skipped = set()
    for shard in shards:
        record = done.get(shard.key)
        if record is None:
            continue
        state = states[shard.index]
        state.summary = {**record["summary"], "expected": 0}
        state.rejects, state.recorded = list(record["rejects"]), True
        for name in ("read", "documents", "chunks"):
            setattr(report, name, getattr(report, name) + record["summary"][name])
        report.skipped_unchanged += record["summary"]["chunks"]
        for entry in state.rejects:
            _write_reject(rejects, entry)
        skipped.add(shard.index)
    return skipped


def _account(
    states: dict[int, _ShardState],
    shards: list[Shard],
    report: IngestReport,
    rejects: RejectsWriter,
    rejected_docs: set[str],
) -> None:
    """Every shard accounted for, and every record: documents, rejected or superseded."""
    missing = [shard for shard in shards if not states[shard.index].done]
    if missing:
        first = missing[0]
        raise OperationFailed(
            f"{len(missing)} shard(s) not accounted for (first: {first.path} from line "
            f"{first.first_line}); the alias was not moved; run the same command again"
        )
    report.documents -= len(rejected_docs)
    if report.read != report.documents + rejects.count + rejects.superseded:
        raise OperationFailed(
            f"records do not add up: read {report.read} != documents {report.documents} + "
            f"rejected {rejects.count} + superseded {rejects.superseded}; the alias was not moved"
        )
