"""The cost curve: what a passage index costs as it grows, on 1 node and on a 3-node cluster.

Passages are SciFact's real ones (text and vectors, read from an alias that holds them),
then synthetic ones: a real vector plus Gaussian noise, re-normalised, and a text of 3-6
real sentences drawn at random (seeded). At each size, for each vector index type:

* bulk indexing rate (passages/s), force-merge time (to one segment), disk size;
* heap bytes (segment memory the node keeps on the heap, ``_stats/segments``) and off-heap
  vector bytes (``_stats/dense_vector``) per passage;
* BM25, kNN and hybrid (both in one ``_msearch``, as the service sends them) latency
  p50/p95 at concurrency 1 and 8, with SciFact test queries;
* kNN recall@10 against exact (brute-force, numpy) search on a sample of queries.

A size is skipped when its vectors would not fit this machine's memory or the time budget
is spent; the JSON says which and why. ``fits_in_page_cache_up_to`` extrapolates, from the
off-heap bytes kNN keeps hot per passage (quantized vectors, or raw ones for plain ``hnsw``,
plus the graph), how many passages one machine's spare memory keeps hot: past it, kNN reads
from disk and a second machine (or a smaller quantization) is needed.

    HF_HUB_OFFLINE=1 python bench/scale.py --source-es http://127.0.0.1:9200 --source-alias scifact \\
        --sizes 10000,100000,1000000 --types hnsw,int8_hnsw,bbq_hnsw --nodes 1,3

Writes ``bench/results/scale.json`` and ``bench/results/scale.png``. Runs measured apart (one
size or type per run, ``--out`` per run) are drawn on one chart with
``--chart-from A.json,B.json,... --out ALL.json`` (the PNG beside ``--out``; nothing is measured).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import load_queries  # noqa: E402

NOISE = 0.35  # noise norm relative to the unit vector: synthetic neighbours stay near, not on, the real one
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def read_source(es, alias: str) -> tuple[list[dict], np.ndarray]:
    """Every passage of ``alias`` (title, text) and its vector."""
    from elasticsearch import helpers

    docs, vectors = [], []
    body = {
        "query": {"match_all": {}},  # vectors are left out of _source unless asked for
        "_source": {"includes": ["title", "text", "embedding"], "exclude_vectors": False},
    }
    for hit in helpers.scan(es, index=alias, query=body, size=1000):
        source = hit["_source"]
        docs.append({"title": source.get("title") or "", "text": source["text"]})
        vectors.append(source["embedding"])
    return docs, np.asarray(vectors, dtype=np.float32)


def synthetic(docs: list[dict], vectors: np.ndarray, count: int, seed: int = 0):
    """``count`` passages: the real ones first, then perturbed vectors with recombined texts."""
    rng = np.random.default_rng(seed)
    picker = random.Random(seed)
    sentences = [s for doc in docs for s in SENTENCE.split(doc["text"]) if len(s) > 20]
    real = min(count, len(docs))
    out_vectors = np.empty((count, vectors.shape[1]), dtype=np.float32)
    out_vectors[:real] = vectors[:real]
    texts = [(docs[i]["title"], docs[i]["text"]) for i in range(real)]
    for start in range(real, count, 50_000):
        n = min(50_000, count - start)
        base = vectors[rng.integers(0, len(vectors), size=n)]
        noisy = base + rng.normal(0, NOISE / np.sqrt(vectors.shape[1]), size=base.shape).astype(np.float32)
        out_vectors[start : start + n] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    for _ in range(real, count):
        parts = picker.sample(sentences, picker.randint(3, 6))
        texts.append((parts[0][:80], " ".join(parts)))
    return texts, out_vectors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


def timed_searches(es, index: str, bodies: list[list[dict]], concurrency: int) -> dict:
    """p50/p95 (ms) of ``_msearch`` requests, each sent whole, ``concurrency`` at a time."""

    def one(searches):
        started = time.perf_counter()
        response = es.msearch(index=index, searches=searches)
        assert not any("error" in item for item in response["responses"]), response
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, bodies))
    return {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95)}


def measure(es, settings, index_type: str, shards: int, texts, vectors, queries, query_vectors) -> dict:
    from elasticsearch import helpers

    from rrsearch.core.mappings import render_passage_index

    name = f"scale-{index_type.replace('_', '-')}-{len(texts)}"
    es.indices.delete(index=name, ignore_unavailable=True)
    body = render_passage_index(
        dims=vectors.shape[1],
        model="sentence-transformers/all-MiniLM-L6-v2",
        analyzer="standard",
        index_type=index_type,
        shards=shards,
        replicas=0,
    )
    body["settings"]["index"]["refresh_interval"] = "-1"
    es.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])

    def actions():
        for i, ((title, text), vector) in enumerate(zip(texts, vectors)):
            yield {
                "_index": name,
                "_id": str(i),
                "_source": {
                    "id": str(i),
                    "parent_id": str(i),
                    "chunk": 0,
                    "title": title,
                    "text": text,
                    "embedding": vector.tolist(),
                },
            }

    started = time.perf_counter()
    for _ok, _item in helpers.parallel_bulk(es, actions(), thread_count=2, chunk_size=500, raise_on_error=True):
        pass
    es.indices.refresh(index=name)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    es.options(request_timeout=7200).indices.forcemerge(index=name, max_num_segments=1)
    merge_s = time.perf_counter() - started
    es.indices.refresh(index=name)
    stats = es.indices.stats(index=name, metric="store,dense_vector,segments")["_all"]["primaries"]
    parts = stats.get("dense_vector", {}).get("off_heap", {})
    off_heap = parts.get("total_size_bytes", 0)
    # What kNN search keeps hot: the quantized vectors (or the raw ones for plain hnsw) and the graph;
    # the raw floats of a quantized index are read only to rescore and to merge.
    searched = (
        parts.get("total_veb_size_bytes", 0)
        or parts.get("total_veq_size_bytes", 0)
        or parts.get("total_vec_size_bytes", 0)
    )
    hot = searched + parts.get("total_vex_size_bytes", 0)
    on_heap = stats.get("segments", {}).get("memory_in_bytes", 0)

    bm25 = [
        [{}, {"size": 100, "_source": False, "query": {"multi_match": {"query": q, "fields": ["title^2", "text"]}}}]
        for q in queries
    ]
    knn = [
        [
            {},
            {
                "size": 100,
                "_source": False,
                "knn": {"field": "embedding", "query_vector": v.tolist(), "k": 100, "num_candidates": 100},
            },
        ]
        for v in query_vectors
    ]
    hybrid = [b + k for b, k in zip(bm25, knn)]
    latency = {}
    for label, bodies in (("bm25", bm25), ("knn", knn), ("hybrid", hybrid)):
        timed_searches(es, name, bodies, 8)  # one untimed pass: JIT, caches and the vectors' pages warm
        latency[label] = {f"c{c}": timed_searches(es, name, bodies, c) for c in (1, 8)}

    sample = min(50, len(query_vectors))
    exact = np.argsort(-(query_vectors[:sample] @ vectors.T), axis=1)[:, :10]
    found = []
    for row, vector in enumerate(query_vectors[:sample]):
        hits = es.search(
            index=name,
            size=10,
            _source=False,
            knn={"field": "embedding", "query_vector": vector.tolist(), "k": 10, "num_candidates": 100},
        )
        found.append(len({int(h["_id"]) for h in hits["hits"]["hits"]} & set(exact[row].tolist())) / 10)
    es.indices.delete(index=name)
    return {
        "passages": len(texts),
        "index_type": index_type,
        "shards": shards,
        "index_passages_per_s": round(len(texts) / index_s, 1),
        "index_s": round(index_s, 1),
        "force_merge_s": round(merge_s, 1),
        "disk_bytes": stats["store"]["size_in_bytes"],
        "disk_bytes_per_passage": round(stats["store"]["size_in_bytes"] / len(texts), 1),
        "off_heap_bytes_per_passage": round(off_heap / len(texts), 1),
        "hot_off_heap_bytes_per_passage": round(hot / len(texts), 1),
        "heap_bytes_per_passage": round(on_heap / len(texts), 2),
        "node_heap_used_bytes": heap_used(es),
        "latency_ms": latency,
        "knn_recall@10": round(statistics.mean(found), 4),
    }


def heap_used(es) -> int:
    nodes = es.nodes.stats(metric="jvm")["nodes"].values()
    return sum(node["jvm"]["mem"]["heap_used_in_bytes"] for node in nodes)


def available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("index_passages_per_s", "bulk passages/s"),
        ("disk_bytes_per_passage", "disk bytes / passage"),
        ("off_heap_bytes_per_passage", "off-heap vector bytes / passage"),
        ("knn_recall@10", "kNN recall@10"),
        ("knn_p50", "kNN p50 ms (c=1)"),
        ("hybrid_p95_c8", "hybrid p95 ms (c=8)"),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(15, 8))
    for axis, (key, title) in zip(axes.flat, panels):
        for series in sorted({(r["nodes"], r["index_type"]) for r in results}):
            rows = sorted((r for r in results if (r["nodes"], r["index_type"]) == series), key=lambda r: r["passages"])
            values = [
                r["latency_ms"]["knn"]["c1"]["p50"]
                if key == "knn_p50"
                else r["latency_ms"]["hybrid"]["c8"]["p95"]
                if key == "hybrid_p95_c8"
                else r[key]
                for r in rows
            ]
            axis.plot([r["passages"] for r in rows], values, marker="o", label=f"{series[1]}, {series[0]} node(s)")
        axis.set_xscale("log")
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    figure.suptitle("Passage index cost by size (SciFact passages, then synthetic), 2 CPU cores")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-es", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--source-alias", default="scifact")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--types", default="hnsw,int8_hnsw,bbq_hnsw")
    parser.add_argument("--nodes", default="1,3")
    parser.add_argument("--heap", default="1g", help="Heap per node of the benchmark clusters.")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budget-s", type=float, default=3600.0, help="Stop starting new sizes after this long.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    parser.add_argument("--chart-from", help="Comma-separated result files to draw together (measures nothing).")
    args = parser.parse_args()
    if args.chart_from:
        merged = [row for name in args.chart_from.split(",") for row in json.loads(Path(name).read_text())["results"]]
        chart(merged, args.out.with_suffix(".png"))
        return

    from elasticsearch import Elasticsearch

    from rrsearch.core.encoders import encode_passages, load_bi_encoder
    from rrsearch.core.es_client import make_client
    from rrsearch.core.es_compat import negotiate
    from rrsearch.core.settings import Settings
    from rrsearch.rrs.local_node import first_free_port, start_node, stop_node

    started = time.monotonic()
    source = negotiate(Elasticsearch(args.source_es, request_timeout=120))
    docs, vectors = read_source(source, args.source_alias)
    query_texts = list(load_queries("test")[0].values())[: args.queries]
    query_vectors = encode_passages(load_bi_encoder("all-MiniLM-L6-v2", "cpu"), query_texts)
    sizes = [int(s) for s in args.sizes.split(",")]
    types = args.types.split(",")
    results, skipped = [], []
    base = Settings()
    for nodes in (int(n) for n in args.nodes.split(",")):
        settings = base.model_copy(
            update={
                "es_url": None,
                "es_node_dir": base.home / f"bench-scale-{nodes}",
                "es_nodes": nodes,
                "es_port": first_free_port(9700),
                "es_heap": args.heap,
            }
        )
        shutil.rmtree(settings.node_dir, ignore_errors=True)
        start_node(settings, log=print)
        es = make_client(settings, request_timeout=600)
        try:
            for size in sizes:
                needed = size * vectors.shape[1] * 4 * 3  # our copy, the exact-search product, the bulk bodies
                if needed > available_memory() * 0.6:
                    skipped.append({"nodes": nodes, "passages": size, "why": f"needs ~{needed / 2**30:.1f} GiB here"})
                    continue
                if time.monotonic() - started > args.budget_s:
                    skipped.append(
                        {"nodes": nodes, "passages": size, "why": f"time budget {args.budget_s:.0f} s spent"}
                    )
                    continue
                texts, size_vectors = synthetic(docs, vectors, size)
                for index_type in types:
                    row = {
                        "nodes": nodes,
                        **measure(es, settings, index_type, nodes, texts, size_vectors, query_texts, query_vectors),
                    }
                    results.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            es.close()
            stop_node(settings, log=print)
            shutil.rmtree(settings.node_dir, ignore_errors=True)

    spare = available_memory()
    fits = {}
    for row in results:
        per_passage = row.get("hot_off_heap_bytes_per_passage") or row["off_heap_bytes_per_passage"]
        if per_passage:
            fits[row["index_type"]] = int(spare / per_passage)
    document = {
        "source": {"alias": args.source_alias, "real_passages": len(docs), "noise": NOISE},
        "machine": {"cpus": os.cpu_count(), "mem_available_bytes": spare, "heap_per_node": args.heap},
        "results": results,
        "skipped": skipped,
        "fits_in_page_cache_up_to": fits,
        "seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    if results:
        chart(results, args.out.with_suffix(".png"))
    print(json.dumps({k: v for k, v in document.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()
