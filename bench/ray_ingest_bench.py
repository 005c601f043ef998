"""Where the limit of `rrs ingest --engine ray` is: encoders, Elasticsearch bulk, or the engine.

Three figures, each measured apart, in one run on the same SciFact passages (the auto
backend: ONNX int8 on a CPU, torch fp16 on CUDA):

(a) encode only: passages/s of the encoder in this process, then of a Ray actor pool of 1
    and of 2 encoder actors (the ingest's own ``Encoder`` class; the model is loaded
    before the clock starts), with the machine's cores shared evenly between actors;
(b) Elasticsearch's bulk ceiling for our passage mapping: the same passages with
    precomputed vectors (copied to ``--bulk-docs`` documents), bulk-indexed by 1..4 client
    threads with the ingest's batch size, into a fresh index with refresh off;
(c) end to end: ``run_ingest`` single-process against ``--engine ray`` with one encoder
    actor holding every core (equal resources), into fresh aliases; Ray is started before
    the clock (a cluster is up already in production), the actors' model load is inside it.

Then the model ``min(N x encode rate x efficiency, bulk ceiling x M)`` with the measured
figures: efficiency = (2-actor rate / 2) / (1-actor rate per core share), and ``ray_vs_process``
the end-to-end ratio.

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/ray_ingest_bench.py [--docs 1500]

Prints JSON and writes it to ``bench/results/ray_ingest.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import threading
import time
import uuid
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path("/work/shared/data/scifact/corpus.jsonl.gz")


def _corpus(limit: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"scifact-{limit}.jsonl"
    with gzip.open(DATA, "rt") as src, open(out, "w") as dst:
        dst.writelines(islice(src, limit))
    return out


def _passages(corpus: Path, settings, model) -> list[dict]:
    """Exactly what ingest embeds: validated, chunked passages (the pipeline's rows)."""
    from rrsearch.ingest.chunking import Chunker
    from rrsearch.ingest.pipeline import _batches
    from rrsearch.ingest.ray_engine import _Index, _passage_row
    from rrsearch.ingest.report import IngestReport, StageClock
    from rrsearch.ingest.sources import read_sources
    from rrsearch.ingest.validate import FieldMap, RejectsWriter

    chunker = Chunker.for_model(
        model,
        chunk_tokens=settings.ingest_chunk_tokens,
        overlap=settings.ingest_chunk_overlap,
        prompt=settings.passage_prompt,
        max_passage_chars=settings.ingest_max_passage_chars,
    )
    rows = []
    for batch in _batches(
        read_sources([corpus]),
        settings=settings,
        field_map=FieldMap(),
        chunker=chunker,
        rejects=RejectsWriter(None),
        report=IngestReport("", "", ""),
        clock=StageClock(),
        es=None,
        target=_Index(""),
        model="m",
        lookup=False,
        winners={},
    ):
        rows.extend(_passage_row(0, row) for row in batch.to_encode)
    return rows


def encode_in_process(settings, model, rows) -> dict:
    from rrsearch.core.encoders import encode_batch_size, encode_passages

    batch = settings.ingest_batch_size
    started = time.perf_counter()
    vectors = []
    for i in range(0, len(rows), batch):
        texts = [r["embed_text"] for r in rows[i : i + batch]]
        vectors.extend(
            encode_passages(model, texts, prompt=settings.passage_prompt, batch_size=encode_batch_size(settings, model))
        )
    seconds = time.perf_counter() - started
    return {
        "passages": len(rows),
        "seconds": round(seconds, 2),
        "passages_per_s": round(len(rows) / seconds, 1),
        "vectors": vectors,
    }


def encode_on_ray(settings, rows, actors: int, cpus: int) -> dict:
    """An actor pool of the ingest's Encoder, models loaded first; batches spread over it."""
    import ray
    from ray.util import ActorPool

    from rrsearch.ingest.ray_engine import Encoder, _table

    class PoolEncoder(Encoder):
        def run(self, table):
            return self(table)

    threads = max(1, cpus // actors)
    remote = ray.remote(num_cpus=threads)(PoolEncoder)
    pool_actors = [remote.remote(settings.model_copy(update={"torch_threads": threads})) for _ in range(actors)]
    ray.get([a.__ray_ready__.remote() for a in pool_actors])
    batch = settings.ingest_batch_size
    tables = [ray.put(_table(rows[i : i + batch])) for i in range(0, len(rows), batch)]
    started = time.perf_counter()
    done = sum(t.num_rows - 1 for t in ActorPool(pool_actors).map_unordered(lambda a, t: a.run.remote(t), tables))
    seconds = time.perf_counter() - started
    for actor in pool_actors:
        ray.kill(actor)
    return {
        "actors": actors,
        "threads_per_actor": threads,
        "passages": done,
        "seconds": round(seconds, 2),
        "passages_per_s": round(done / seconds, 1),
    }


def bulk_ceiling(es, settings, rows, vectors, docs: int, clients: int) -> dict:
    """Bulk-index ``docs`` passages (the encoded rows, cycled, new ids) with ``clients`` threads."""
    from elasticsearch.helpers import streaming_bulk

    from rrsearch.core.es_client import make_client
    from rrsearch.core.indexes import passage_index_body
    from rrsearch.core.passage import passage_document

    index = f"bench-ray-bulk-{uuid.uuid4().hex[:8]}"
    body = passage_index_body(es, settings, dims=len(vectors[0]), model="bench")
    body.setdefault("settings", {}).setdefault("index", {})["refresh_interval"] = "-1"
    es.indices.create(index=index, **body)
    now = "2026-12-01T00:00:00+00:00"

    def actions(part: int):
        for n in range(part, docs, clients):
            row, vector = rows[n % len(rows)], vectors[n % len(rows)]
            pid = f"{n}#{row['chunk']}"
            yield {
                "_index": index,
                "_id": pid,
                "_source": passage_document(
                    passage_id=pid,
                    parent_id=str(n),
                    chunk=row["chunk"],
                    chunk_count=row["chunk_count"],
                    title=row["title"],
                    text=row["text"],
                    metadata=json.loads(row["metadata"]),
                    content_hash=row["hash"],
                    model="bench",
                    source="bench",
                    indexed_at=now,
                    vector=vector.tolist(),
                ),
            }

    failures = []

    def client(part: int) -> None:
        own = make_client(settings, request_timeout=120)
        for ok, _item in streaming_bulk(
            own,
            actions(part),
            chunk_size=settings.ingest_batch_size,
            max_chunk_bytes=100 * 1024 * 1024,
            raise_on_error=False,
            max_retries=5,
        ):
            if not ok:
                failures.append(_item)
        own.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(part,)) for part in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    es.indices.refresh(index=index)
    count = es.count(index=index)["count"]
    es.indices.delete(index=index)
    return {
        "clients": clients,
        "docs": docs,
        "indexed": count,
        "failed": len(failures),
        "seconds": round(seconds, 2),
        "passages_per_s": round(count / seconds, 1),
    }


def end_to_end(es, settings, corpus: Path, engine) -> dict:
    from rrsearch.core.indexes import delete_alias_and_versions
    from rrsearch.ingest.pipeline import run_ingest

    alias = f"bench-ray-e2e-{uuid.uuid4().hex[:8]}"
    try:
        started = time.perf_counter()
        report = run_ingest([corpus], settings, alias=alias, progress=False, es=es, engine=engine)
        seconds = time.perf_counter() - started
    finally:
        delete_alias_and_versions(es, alias)
    return {
        "passages": report.indexed,
        "seconds": round(seconds, 2),
        "passages_per_s": round(report.indexed / seconds, 1),
        "stage_throughput": {k: round(v, 1) for k, v in report.stage_throughput.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1500, help="SciFact documents (the first N).")
    parser.add_argument("--bulk-docs", type=int, default=20000, help="Passages per bulk-ceiling measurement.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ray_ingest.json")
    parser.add_argument("--skip", default="", help="Comma-separated parts to skip: a, b, c.")
    args = parser.parse_args()

    import ray

    from rrsearch.core.encoders import bi_encoder_from, model_label
    from rrsearch.core.es_client import make_client
    from rrsearch.core.settings import Settings
    from rrsearch.ingest.ray_engine import ray_engine

    settings = Settings()
    es = make_client(settings, request_timeout=120)
    cpus = os.cpu_count() or 1
    model = bi_encoder_from(settings)
    corpus = _corpus(args.docs, Path("/tmp/rrs-ray-bench"))
    rows = _passages(corpus, settings, model)
    skip = set(args.skip.split(","))
    result = {
        "machine": {"cpus": cpus, "python": platform.python_version(), "ray": ray.__version__},
        "encoder": {
            "name": model_label(settings.bi_encoder),
            "backend": getattr(model, "backend", "?"),
            "precision": getattr(model, "precision", "?"),
        },
        "docs": args.docs,
        "passages": len(rows),
    }
    # Ray's memory monitor kills workers when the *machine* is near full; on a shared build machine
    # other people's jobs filled it and it killed our encoder again and again (each restart is
    # idempotent, but the timings were lost), so the benchmark turns it off.
    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        process = encode_in_process(settings, model, rows)
        vectors = process.pop("vectors")
        if "a" not in skip:
            result["a_encode_only"] = {
                "process": process,
                "ray_1_actor": encode_on_ray(settings, rows, 1, cpus),
                "ray_2_actors": encode_on_ray(settings, rows, 2, cpus),
            }
            print(json.dumps(result["a_encode_only"]), flush=True)
        if "b" not in skip:
            result["b_bulk_ceiling"] = [
                bulk_ceiling(es, settings, rows, vectors, args.bulk_docs, clients) for clients in (1, 2, 3, 4)
            ]
            print(json.dumps(result["b_bulk_ceiling"]), flush=True)
        if "c" not in skip:
            result["c_end_to_end"] = {
                "process": end_to_end(es, settings, corpus, None),
                "ray_1_encoder": end_to_end(es, settings, corpus, ray_engine(encoders=1)),
            }
            e2e = result["c_end_to_end"]
            e2e["ray_vs_process"] = round(e2e["ray_1_encoder"]["passages_per_s"] / e2e["process"]["passages_per_s"], 3)
            print(json.dumps(e2e), flush=True)
    finally:
        ray.shutdown()
    result["model"] = _model(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _model(result: dict) -> dict:
    """The throughput model's inputs from this run's figures (what is missing stays out)."""
    model = {}
    a, b = result.get("a_encode_only"), result.get("b_bulk_ceiling")
    if a:
        one, two = a["ray_1_actor"]["passages_per_s"], a["ray_2_actors"]["passages_per_s"]
        model["encode_rate_per_machine"] = one
        model["two_actors_vs_one"] = round(two / one, 3)
        model["ray_1_actor_vs_process"] = round(one / a["process"]["passages_per_s"], 3)
    if b:
        model["bulk_ceiling_per_node"] = max(row["passages_per_s"] for row in b)
    if a and b:
        model["encoders_to_fill_one_node"] = round(model["bulk_ceiling_per_node"] / model["encode_rate_per_machine"], 1)
    return model


if __name__ == "__main__":
    main()
