"""What each CPU engine costs in ranking quality: torch fp32, torch bf16 (``auto`` on a CPU with
AMX), OpenVINO int8 (``auto`` with AVX-512 VNNI) and ONNX int8 (``auto`` elsewhere), for both
models, on SciFact test.

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/cpu_precision_bench.py \
        [--reranker DIR] [--candidates 100] [--precisions torch_fp32 torch_bf16 onnx_int8 openvino_int8] \
        [--reuse-indexes] [--out FILE]

For each precision: the SciFact corpus is ingested with that bi-encoder into its own alias (the
real ``run_ingest``), and kNN and hybrid RRF nDCG@10 are measured on the 300 test queries with the
same encoder's query vectors. Then the cross-encoder ``--reranker`` (a trained one: an untrained
head ranks nothing) reranks the 100 hybrid candidates of each test query of the fp32 index at
each precision, weight 1 (``bench/_common.rerank_quality``). The bar: every precision within
0.005 nDCG@10 of fp32. Speed is ``bench/defaults_bench.py``'s (a quiet machine); the figures here
do not depend on load. Writes bench/results/cpu_precision_scifact.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from _common import DATA, rerank_quality  # noqa: E402

PRECISIONS = {
    "torch_fp32": {"bi_encoder_backend": "torch", "rerank_backend": "torch"},
    "torch_bf16": {"bi_encoder_backend": "auto", "rerank_backend": "auto", "cpu_engine": "torch-bf16"},
    "onnx_int8": {"bi_encoder_backend": "auto", "rerank_backend": "auto", "cpu_engine": "onnx-int8"},
    "openvino_int8": {"bi_encoder_backend": "auto", "rerank_backend": "auto", "cpu_engine": "openvino-int8"},
}
WITHIN = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reranker", type=Path, help="A trained cross-encoder folder; without one, kNN and hybrid only."
    )
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS), default=list(PRECISIONS))
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--reuse-indexes", action="store_true", help="Skip ingest where a previous run's alias exists.")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "cpu_precision_scifact.json")
    args = parser.parse_args()
    assert os.environ.get("ES_URL"), "set ES_URL (e.g. `rrs es start`)"

    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.es_client import make_client
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.offline import evaluate_dataset
    from rrsearch.evaluation.runner import FusionParams
    from rrsearch.ingest.pipeline import run_ingest

    started = time.perf_counter()
    base = Settings(device="cpu")
    es = make_client(base, request_timeout=120)
    dataset = load_dataset(DATA, "test")
    fusion = FusionParams(base.rrf_k, 0.5, "minmax")
    rows: dict[str, dict] = {}
    for name in args.precisions:
        settings = base.model_copy(update=PRECISIONS[name])
        alias = f"bench-precision-{name.replace('_', '-')}"
        if args.reuse_indexes and es.indices.exists_alias(name=alias):
            passages = int(es.count(index=alias)["count"])
        else:
            report = run_ingest([DATA / "corpus.jsonl.gz"], settings, alias=alias, reindex=True, progress=False, es=es)
            passages = report.chunks
        results, _ = evaluate_dataset(
            settings,
            dataset,
            index_alias=alias,
            candidates=args.candidates,
            reranker_name=None,
            configs=("knn", "hybrid_rrf"),
            fusion=fusion,
            progress=False,
        )
        encoder = bi_encoder_from(settings)
        rows[name] = {
            "bi_encoder": [encoder.backend, encoder.precision],
            "passages": passages,
            "ndcg@10": {row["config"]: round(row["metrics"]["ndcg@10"], 4) for row in results},
        }
        print(name, json.dumps(rows[name]), flush=True)
    first_stage = "bench-precision-torch-fp32"
    fp32_encoder = bi_encoder_from(base.model_copy(update=PRECISIONS["torch_fp32"]))
    for name in args.precisions if args.reranker else ():
        rows[name]["rerank"] = rerank_quality(
            base.model_copy(update=PRECISIONS[name]),
            es,
            fp32_encoder,
            first_stage,
            args.reranker,
            dataset.queries,
            dataset.qrels,
            args.candidates,
        )
        print(name, "rerank", json.dumps(rows[name]["rerank"]), flush=True)
    es.close()
    reference = rows.get("torch_fp32")
    deltas = {}
    if reference:
        for name, row in rows.items():
            deltas[name] = {
                **{k: round(v - reference["ndcg@10"][k], 4) for k, v in row["ndcg@10"].items()},
            }
            if args.reranker:
                deltas[name]["rerank"] = round(row["rerank"]["ndcg@10"] - reference["rerank"]["ndcg@10"], 4)
    result = {
        "bench": "cpu_precision",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": "test",
        "queries": len(dataset.queries),
        "reranker": str(args.reranker) if args.reranker else None,
        "candidates": args.candidates,
        "precisions": rows,
        "minus_fp32": deltas,
        "bar_within": WITHIN,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(deltas, indent=2))


if __name__ == "__main__":
    main()
