"""The defaults on a CPU against the torch fp32 they replaced, measured in one run.

With no backend setting (``auto``), a CPU with AMX bf16 units serves both models with torch in
bf16, one with AVX-512 VNNI the OpenVINO int8 exports, any other the ONNX int8 exports, all made
on first use (core/onnx_cache.py). This
prints and writes, for the same documents and the same pairs, torch fp32 (what ``auto``
replaced), ``auto`` as this machine resolves it, and int8 (``auto`` with ``cpu_engine="onnx-int8"``):

* ingest passages/s (rounds interleaved so machine drift counts against none), and the one-off
  export time each engine pays first (a fresh cache; loading time for torch);
* rerank of 100 candidates at concurrency 1 within the default budget (``RRS_RERANK_TIMEOUT_MS``,
  default length cap): p50/p95 and how many requests ran past the budget. The cross-encoder is
  MiniLM-L6-sized (bench/_common.py) with the default cap; the candidates are 100 SciFact
  abstracts drawn per query (their real lengths; ranking quality is not measured here).

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/defaults_bench.py [--docs 600] [--queries 20]

Writes ``bench/results/defaults_bench.json``. Every engine runs in this one process, so each
shares it with the others' thread pools; ``ingest_engines_bench.py`` measures ingest with each
engine in a fresh ``rrs ingest`` process, as users run it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from _common import DATA, build_minilm_cross_encoder, load_corpus, scifact_head  # noqa: E402


def ingest_rate(corpus: Path, settings, es) -> float:
    from rrsearch.core.indexes import delete_alias_and_versions
    from rrsearch.ingest.pipeline import run_ingest

    alias = f"bench-defaults-{uuid.uuid4().hex[:8]}"
    try:
        return run_ingest([corpus], settings, alias=alias, progress=False, es=es).passages_per_second
    finally:
        delete_alias_and_versions(es, alias)


def encode_rates(encoder, texts: list[str], sizes: tuple[int, ...], rounds: int = 3) -> dict[int, float]:
    """Encode passages/s of ``encoder`` at each batch size, best of interleaved rounds."""
    from rrsearch.core.encoders import encode_passages

    encode_passages(encoder, texts[:16], batch_size=16)  # warm
    best = dict.fromkeys(sizes, 0.0)
    for _ in range(rounds):
        for size in sizes:
            started = time.perf_counter()
            encode_passages(encoder, texts, batch_size=size)
            best[size] = max(best[size], round(len(texts) / (time.perf_counter() - started), 1))
    return best


def rerank_latencies(reranker, budget_s: float, requests: list[tuple[str, list[str]]]) -> dict:
    from rrsearch.core.errors import RerankTimeout

    times, late = [], 0
    for query, passages in requests:
        started = time.perf_counter()
        try:
            reranker.rerank(query, passages, budget_s=budget_s)
        except RerankTimeout:
            late += 1
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "past_budget": late,
        "requests": len(requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.es_client import make_client
    from rrsearch.core.settings import Settings
    from rrsearch.service.rerank import load_reranker

    base = Settings()
    assert base.es_url, "set ES_URL (e.g. `rrs es start`)"
    es = make_client(base)
    work = Path(tempfile.mkdtemp(prefix="defaults-bench-"))
    corpus = scifact_head(args.docs, work)
    fresh = base.model_copy(update={"home": work / "home", "device": "cpu"})
    settings = {
        "torch": fresh.model_copy(update={"bi_encoder_backend": "torch", "rerank_backend": "torch"}),
        "auto": fresh.model_copy(update={"bi_encoder_backend": "auto", "rerank_backend": "auto"}),
        "int8": fresh.model_copy(
            update={"bi_encoder_backend": "auto", "rerank_backend": "auto", "cpu_engine": "onnx-int8"}
        ),
    }
    names = ("torch", "auto", "int8")  # int8: what auto serves on a CPU without AMX bf16

    export_s: dict[str, float] = {}
    for name in ("int8", "auto"):  # the one-off exports into the fresh cache (auto's OpenVINO one starts from int8's)
        started = time.perf_counter()
        bi_encoder_from(settings[name])
        export_s[f"bi_encoder_{name}"] = round(time.perf_counter() - started, 1)
    rates = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            rates[name].append(round(ingest_rate(corpus, settings[name], es), 1))
    ingest = {name: statistics.mean(values) for name, values in rates.items()}

    passages = [f"{d['title']}. {d['text']}" for d in islice(load_corpus(), 300)]
    batch_sizes = {
        name: encode_rates(bi_encoder_from(settings[name]), passages, (8, 16, 32, 64)) for name in ("auto", "int8")
    }

    model_dir = build_minilm_cross_encoder(work / "cross-encoder")
    rerankers = {}
    for name in ("int8", "auto", "torch"):
        started = time.perf_counter()
        rerankers[name] = load_reranker(str(model_dir), settings[name])
        export_s[f"cross_encoder_{name}"] = round(time.perf_counter() - started, 1)
    texts = [f"{d.get('title', '')} {d['text']}".strip() for d in load_corpus()]
    queries = [json.loads(line)["text"] for line in (DATA / "queries.jsonl").read_text().splitlines()][: args.queries]
    draw = random.Random(0)
    requests = [(query, draw.sample(texts, 100)) for query in queries]
    budget_s = base.rerank_timeout_ms / 1000
    for reranker in rerankers.values():
        reranker.rerank(*requests[0], budget_s=60)  # warm
    rerank = {name: rerank_latencies(rerankers[name], budget_s, requests) for name in names}

    encoder = bi_encoder_from(settings["auto"])
    result = {
        "bench": "defaults_bench",
        "date": time.strftime("%Y-%m-%d"),
        "docs": args.docs,
        "ingest_passages_per_s": {
            "torch_fp32": ingest["torch"],
            "auto": ingest["auto"],
            "onnx_int8": ingest["int8"],
            "rounds": rates,
            "auto_over_torch": round(ingest["auto"] / ingest["torch"], 2),
            "int8_over_torch": round(ingest["int8"] / ingest["torch"], 2),
        },
        "encode_passages_per_s_by_batch_size": {
            "abstracts": len(passages),
            **batch_sizes,
            "default": base.encode_batch_size,
        },
        "first_use_export_s": export_s,
        "rerank_100_candidates_c1": {
            "budget_ms": base.rerank_timeout_ms,
            "max_length": rerankers["auto"].max_length,
            "torch_fp32": rerank["torch"],
            "auto": rerank["auto"],
            "onnx_int8": rerank["int8"],
            "p50_torch_over_auto": round(rerank["torch"]["p50_ms"] / rerank["auto"]["p50_ms"], 2),
            "p50_int8_over_auto": round(rerank["int8"]["p50_ms"] / rerank["auto"]["p50_ms"], 2),
        },
        "backends": {
            "auto": {
                "bi_encoder": [encoder.backend, encoder.precision],
                "reranker": [rerankers["auto"].backend, rerankers["auto"].dtype],
            }
        },
    }
    for reranker in rerankers.values():
        reranker.close()
    print(json.dumps(result, indent=2))
    (ROOT / "results" / "defaults_bench.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
