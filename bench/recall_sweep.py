"""kNN recall@10 against ``num_candidates``, at 100k and 1M passages, on vectors without duplicates.

The cost curve (``bench/scale.py``) grows SciFact to 1M by adding noise to real vectors, so
each real vector gets ~190 near-copies and recall@10 there measures how HNSW breaks ties
among them, not how it finds neighbours in a real corpus. Here the large corpora are drawn
from a distribution fitted to the real vectors instead:

* k-means (256 clusters) on SciFact's passage vectors (alias ``bench-scifact``, built once);
* each synthetic vector = a cluster centre (drawn by cluster size) + a residual drawn from a
  Gaussian with the residuals' full covariance, scaled to that cluster's spread; normalised.

The JSON records a check that the artifact is gone: the median cosine between a passage and
its nearest neighbour, in the real corpus, in a fitted one and in a noise-grown one of the same
size; and the median cosine of each real query to its top 1 (real vs fitted corpus).

Queries are SciFact's real test queries (encoded by the same bi-encoder); truth is exact
search in numpy. For each index type (our mapping: m=16, ef_construction=100, one segment after
a force merge) and each ``num_candidates``: recall@10 and kNN p50/p95 latency at c=1; for the
quantized types also with the query's ``rescore_vector.oversample`` at 3 and 10 (the float rescore
looks only at the ``k × oversample`` best by the quantized estimate, whatever ``num_candidates`` is).

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/recall_sweep.py \\
        [--sizes 100000,1000000] [--types hnsw,int8_hnsw,bbq_hnsw] [--out bench/results/recall_sweep.json]
    python bench/recall_sweep.py --chart-from A.json B.json --out bench/results/recall_sweep.json  # the PNG only

A node of its own is started (``--heap``, default 2g) and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import BENCH_ALIAS, ensure_scifact_index, load_queries  # noqa: E402
from bench.scale import NOISE, percentile, read_source  # noqa: E402

NUM_CANDIDATES = (10, 20, 50, 100, 200, 500, 1000)
OVERSAMPLE = (3.0, 10.0)  # knn rescore_vector.oversample tried on the quantized types
QUANTIZED = {"int8_hnsw", "bbq_hnsw"}
CLUSTERS = 256  # on SciFact: median nearest-neighbour cosine 0.58 at 5k (real 0.68; 64 clusters 0.53)


def kmeans(vectors: np.ndarray, k: int, seed: int = 0, rounds: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Spherical-enough k-means (Lloyd's, k-means++ start): centres and each vector's label."""
    rng = np.random.default_rng(seed)
    centres = [vectors[rng.integers(len(vectors))]]
    distance = ((vectors - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        centres.append(vectors[rng.choice(len(vectors), p=distance / distance.sum())])
        distance = np.minimum(distance, ((vectors - centres[-1]) ** 2).sum(1))
    centres = np.asarray(centres)
    for _ in range(rounds):
        labels = np.argmax(vectors @ centres.T - 0.5 * (centres**2).sum(1), axis=1)
        for c in range(k):
            members = vectors[labels == c]
            if len(members):
                centres[c] = members.mean(0)
    return centres, labels


class FittedDistribution:
    """A mixture fitted to real unit vectors: cluster centres plus correlated Gaussian residuals."""

    def __init__(self, vectors: np.ndarray, clusters: int = CLUSTERS, seed: int = 0):
        self.centres, labels = kmeans(vectors.astype(np.float64), clusters, seed)
        residuals = vectors - self.centres[labels]
        self.weights = np.bincount(labels, minlength=clusters) / len(vectors)
        overall = np.mean((residuals**2).sum(1))
        self.scales = np.array(
            [
                np.sqrt(np.mean((residuals[labels == c] ** 2).sum(1)) / overall) if np.any(labels == c) else 1.0
                for c in range(clusters)
            ]
        )
        covariance = np.cov(residuals, rowvar=False) + 1e-6 * np.eye(vectors.shape[1])
        self.factor = np.linalg.cholesky(covariance)

    def sample(self, count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((count, self.centres.shape[1]), dtype=np.float32)
        for start in range(0, count, 50_000):
            n = min(50_000, count - start)
            cluster = rng.choice(len(self.weights), size=n, p=self.weights)
            drawn = self.centres[cluster] + self.scales[cluster, None] * (
                rng.standard_normal((n, self.factor.shape[0])) @ self.factor.T
            )
            out[start : start + n] = drawn / np.linalg.norm(drawn, axis=1, keepdims=True)
        return out


def noise_grown(vectors: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """The cost curve's way (bench/scale.py): real vectors plus noise, re-normalised."""
    rng = np.random.default_rng(seed)
    base = vectors[rng.integers(0, len(vectors), size=count)]
    noisy = base + rng.normal(0, NOISE / np.sqrt(vectors.shape[1]), size=base.shape).astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def nearest_neighbour_cosine(vectors: np.ndarray, probes: int = 2000) -> float:
    """Median cosine between a vector and its nearest other vector (on ``probes`` of them)."""
    sample = vectors[:probes]
    similarity = sample @ vectors.T
    similarity[np.arange(len(sample)), np.arange(len(sample))] = -1.0
    return round(float(np.median(similarity.max(1))), 4)


def exact_top(query_vectors: np.ndarray, vectors: np.ndarray, k: int = 10) -> np.ndarray:
    scores = query_vectors @ vectors.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1), 1)


def build_index(es, name: str, index_type: str, vectors: np.ndarray) -> dict:
    from elasticsearch import helpers

    from rrsearch.core.mappings import render_passage_index

    es.indices.delete(index=name, ignore_unavailable=True)
    body = render_passage_index(
        dims=vectors.shape[1], model="sentence-transformers/all-MiniLM-L6-v2", index_type=index_type
    )
    body["settings"]["index"]["refresh_interval"] = "-1"
    es.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])

    def actions():
        for i, vector in enumerate(vectors):
            yield {
                "_index": name,
                "_id": str(i),
                "_source": {"id": str(i), "parent_id": str(i), "chunk": 0, "text": "", "embedding": vector.tolist()},
            }

    started = time.perf_counter()
    for _ in helpers.parallel_bulk(es, actions(), thread_count=2, chunk_size=500, raise_on_error=True):
        pass
    es.indices.refresh(index=name)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    es.options(request_timeout=7200).indices.forcemerge(index=name, max_num_segments=1)
    merge_s = time.perf_counter() - started
    es.indices.refresh(index=name)
    mapping = es.indices.get_mapping(index=name)[name]["mappings"]["properties"]["embedding"]
    return {
        "index_s": round(index_s, 1),
        "force_merge_s": round(merge_s, 1),
        "index_options": mapping.get("index_options"),
    }


def sweep(
    es,
    name: str,
    query_vectors: np.ndarray,
    truth: np.ndarray,
    candidate_counts=NUM_CANDIDATES,
    oversample: float | None = None,
) -> list[dict]:
    """recall@10 and latency per ``num_candidates``; ``oversample`` overrides the mapping's rescore."""
    rows = []
    for candidates in candidate_counts:

        def one(vector, candidates=candidates):
            started = time.perf_counter()
            knn = {"field": "embedding", "query_vector": vector.tolist(), "k": 10, "num_candidates": candidates}
            if oversample is not None:
                knn["rescore_vector"] = {"oversample": oversample}
            hits = es.search(index=name, size=10, _source=False, knn=knn)
            return [int(h["_id"]) for h in hits["hits"]["hits"]], (time.perf_counter() - started) * 1000

        for vector in query_vectors[:20]:  # warm: JIT and the graph's pages
            one(vector)
        found, latencies = [], []
        for vector, exact in zip(query_vectors, truth):
            ids, ms = one(vector)
            found.append(len(set(ids) & set(exact.tolist())) / 10)
            latencies.append(ms)
        rows.append(
            {
                "num_candidates": candidates,
                **({"oversample": oversample} if oversample else {}),
                "recall@10": round(statistics.mean(found), 4),
                "p50_ms": percentile(latencies, 0.5),
                "p95_ms": percentile(latencies, 0.95),
            }
        )
        print(json.dumps({"index": name, **rows[-1]}), flush=True)
    return rows


def chart(document: dict, path: Path) -> None:
    """recall@10 against num_candidates, one line per (size, type); dashed: oversample 10."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    drawn = set()
    for row in document["results"]:
        size = f"{row['passages'] // 1_000_000}M" if row["passages"] >= 1_000_000 else f"{row['passages'] // 1000}k"
        label = f"{row['index_type']}, {size}"
        colour = {"hnsw": "C0", "int8_hnsw": "C1", "bbq_hnsw": "C2"}.get(row["index_type"])
        if label not in drawn:  # a second file's run of the same index adds only its oversample rows
            drawn.add(label)
            axis.plot(
                [r["num_candidates"] for r in row["sweep"]],
                [r["recall@10"] for r in row["sweep"]],
                marker="o",
                color=colour,
                linestyle="-" if row["passages"] >= 1_000_000 else ":",
                label=label,
            )
        wider = [r for r in row.get("oversample_sweep", []) if r["oversample"] == 10.0]
        if wider:
            axis.plot(
                [r["num_candidates"] for r in wider],
                [r["recall@10"] for r in wider],
                marker="x",
                linestyle="--",
                color=colour,
                label=f"{label}, oversample 10",
            )
    axis.set_xscale("log")
    axis.set_xlabel("num_candidates (k = 10)")
    axis.set_ylabel("kNN recall@10 against exact search")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("Recall against num_candidates, fitted (non-duplicate) vectors, one node")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-es", default=os.environ.get("ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--types", default="hnsw,int8_hnsw,bbq_hnsw")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "recall_sweep.json")
    parser.add_argument(
        "--chart-from", type=Path, nargs="+", help="draw these result files into --out's PNG (measures nothing)"
    )
    args = parser.parse_args()
    if args.chart_from:
        results = [row for name in args.chart_from for row in json.loads(name.read_text())["results"]]
        chart({"results": results}, args.out.with_suffix(".png"))
        return

    from elasticsearch import Elasticsearch

    from rrsearch.core.encoders import encode_passages, load_bi_encoder
    from rrsearch.core.es_client import make_client
    from rrsearch.core.es_compat import negotiate
    from rrsearch.core.settings import Settings
    from rrsearch.rrs.local_node import first_free_port, start_node, stop_node

    started = time.monotonic()
    base = Settings()
    bi_encoder = load_bi_encoder(base.bi_encoder, "cpu")
    source = negotiate(Elasticsearch(args.source_es, request_timeout=600))
    ensure_scifact_index(source, base, bi_encoder)
    _, real = read_source(source, BENCH_ALIAS)
    query_vectors = np.asarray(
        encode_passages(bi_encoder, list(load_queries("test")[0].values())[: args.queries]), dtype=np.float32
    )

    fitted = FittedDistribution(real)
    same_size = fitted.sample(len(real), seed=1)
    check = {
        "real_passages": len(real),
        "nn_cosine_median": {"real": nearest_neighbour_cosine(real), "fitted": nearest_neighbour_cosine(same_size)},
        "query_top1_cosine_median": {
            "real": round(float(np.median((query_vectors @ real.T).max(1))), 4),
            "fitted": round(float(np.median((query_vectors @ same_size.T).max(1))), 4),
        },
    }
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = base.model_copy(
        update={
            "es_url": None,
            "es_node_dir": base.home / "bench-recall",
            "es_nodes": 1,
            "es_port": first_free_port(9750),
            "es_heap": args.heap,
        }
    )
    shutil.rmtree(settings.node_dir, ignore_errors=True)
    start_node(settings, log=print)
    es = make_client(settings, request_timeout=600)
    results = []
    try:
        for size in sizes:
            vectors = fitted.sample(size, seed=size)
            check[f"nn_cosine_median_at_{size}"] = {
                "fitted": nearest_neighbour_cosine(vectors),
                "noise_grown": nearest_neighbour_cosine(noise_grown(real, size)),
            }
            print(json.dumps(check), flush=True)
            truth = exact_top(query_vectors, vectors)
            for index_type in args.types.split(","):
                name = f"recall-{index_type.replace('_', '-')}-{size}"
                row = {"passages": size, "index_type": index_type, **build_index(es, name, index_type, vectors)}
                row["sweep"] = sweep(es, name, query_vectors, truth)
                if index_type in QUANTIZED:  # the rescored set is k x oversample by the quantized estimate
                    row["oversample_sweep"] = [
                        r for factor in OVERSAMPLE for r in sweep(es, name, query_vectors, truth, (100, 500), factor)
                    ]
                es.indices.delete(index=name)
                results.append(row)
                print(json.dumps(row), flush=True)
                args.out.parent.mkdir(
                    parents=True, exist_ok=True
                )  # written after each index: a long run keeps what it measured
                args.out.write_text(
                    json.dumps(
                        {
                            "vectors": {
                                "distribution": f"k-means mixture ({CLUSTERS} clusters) fitted to SciFact passage "
                                "vectors, full-covariance residuals",
                                "check": check,
                            },
                            "queries": f"{len(query_vectors)} SciFact test queries",
                            "k": 10,
                            "machine": {"cpus": os.cpu_count(), "heap": args.heap},
                            "results": results,
                            "seconds": round(time.monotonic() - started, 1),
                        },
                        indent=2,
                    )
                    + "\n"
                )
    finally:
        es.close()
        stop_node(settings, log=print)
        shutil.rmtree(settings.node_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
