"""Bi-encoder throughput on a GPU: torch fp32 vs fp16 (what ingest uses on CUDA), same passages, one run.

    HF_HUB_OFFLINE=1 python bench/gpu_encode.py [--limit 5000] [--device cpu]

Encodes SciFact passages (title + text) with the packaged all-MiniLM-L6-v2, sorted by
length inside ``encode`` as ingest does, at a batch size chosen from a token budget
(``--token-budget`` tokens per batch / the model's max length). Reports passages/s for
each precision, their ratio, and the least cosine between fp16 and fp32 vectors. Writes
``bench/results/gpu_encode.json`` (or ``$OUT/gpu_encode.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import load_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=5183)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--token-budget", type=int, default=65_536)
    args = parser.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from rrsearch.core.encoders import resolve_model_path

    texts = [f"{d['title']}. {d['text']}" for d in load_corpus()[: args.limit]]
    model = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device=args.device)
    batch = max(1, args.token_budget // int(model.max_seq_length))
    figures, vectors = {}, {}
    for precision in ("fp32", "fp16"):
        if precision == "fp16":
            model.half()
        model.encode(texts[:256], batch_size=batch)  # warm up kernels
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        vectors[precision] = model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        figures[precision] = round(len(texts) / (time.perf_counter() - started), 1)
    cosine = np.sum(vectors["fp16"].astype(np.float32) * vectors["fp32"], axis=1)
    result = {
        "passages": len(texts),
        "device": args.device,
        "batch_size": batch,
        "passages_per_s": figures,
        "fp16_over_fp32": round(figures["fp16"] / figures["fp32"], 2),
        "min_cosine_fp16_fp32": round(float(cosine.min()), 5),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    print(json.dumps(result, indent=2))
    out = Path(os.environ.get("OUT", ROOT / "bench" / "results")) / "gpu_encode.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
