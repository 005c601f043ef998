"""Ingest benchmark: end-to-end passages/s against pure encoding of the same passages.

Ingests a corpus (default: BEIR SciFact) into a fresh alias on a real node with
``run_ingest``, and in the same process encodes exactly the passages that run made, with
nothing else going on. The pure-encode rate is the limit of an encoder-bound pipeline;
the ratio says how close ingest comes to it (target: >= 0.85 on CPU). Pure encoding runs
before and after the ingest and their mean is the baseline, so drift in machine load
during the run counts against neither side.

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/ingest_bench.py [--limit N]

Prints JSON and writes it to ``bench/results/ingest_bench.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
import uuid
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl.gz"
if not DEFAULT_CORPUS.exists():
    DEFAULT_CORPUS = Path("/work/shared/data/scifact/corpus.jsonl.gz")


def _limited_copy(corpus: Path, limit: int, folder: Path) -> Path:
    """The first ``limit`` lines of the corpus in a temporary file (for quick runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"corpus-{limit}.jsonl.gz"
    opener = gzip.open if corpus.suffix == ".gz" else open
    with opener(corpus, "rt") as src, gzip.open(out, "wt") as dst:
        dst.writelines(islice(src, limit))
    return out


def _passage_texts(corpus: Path, model, settings) -> list[str]:
    """Exactly what the pipeline embeds: validated documents, chunked the same way."""
    from rrsearch.core.errors import RecordRejected
    from rrsearch.ingest.chunking import Chunker
    from rrsearch.ingest.sources import read_sources
    from rrsearch.ingest.validate import FieldMap, Limits, to_document

    docs = []
    for record in read_sources([corpus]):
        try:
            docs.append(to_document(record, FieldMap(), limits=Limits.from_settings(settings)))
        except RecordRejected:
            continue
    chunker = Chunker.for_model(
        model,
        chunk_tokens=settings.ingest_chunk_tokens,
        overlap=settings.ingest_chunk_overlap,
        prompt=settings.passage_prompt,
    )
    return [p.embed_text for passages in chunker.split(docs) for p in passages]


def _pure_encode(model, texts: list[str], settings) -> float:
    """Passages/s of one encode call over all passages (sorted by length inside: the best case)."""
    from rrsearch.core.encoders import encode_passages

    start = time.perf_counter()
    encode_passages(model, texts, prompt=settings.passage_prompt, batch_size=settings.encode_batch_size)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit", type=int, help="Only the first N documents.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest_bench.json")
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark index.")
    args = parser.parse_args()

    import torch

    from rrsearch.core.encoders import encode_passages, load_bi_encoder
    from rrsearch.core.es_client import make_client
    from rrsearch.core.indexes import delete_alias_and_versions
    from rrsearch.core.settings import Settings
    from rrsearch.ingest.pipeline import run_ingest

    settings = Settings()
    corpus = _limited_copy(args.corpus, args.limit, Path("/tmp/rrs-bench")) if args.limit else args.corpus
    model = load_bi_encoder(settings.bi_encoder, settings.device)
    encode_passages(model, ["warm up the encoder"] * 64)
    texts = _passage_texts(corpus, model, settings)
    load_before = os.getloadavg()

    pure_before = _pure_encode(model, texts, settings)
    alias = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    es = make_client(settings)
    try:
        cpu_start = time.process_time()
        report = run_ingest([corpus], settings, alias=alias, progress=False)
        ingest_cpu = time.process_time() - cpu_start
    finally:
        if not args.keep:
            delete_alias_and_versions(es, alias)
    pure_after = _pure_encode(model, texts, settings)
    pure = (pure_before + pure_after) / 2

    assert report.chunks == len(texts) == report.indexed, (report.chunks, len(texts), report.indexed)
    end_to_end = report.chunks / report.wall_seconds
    result = {
        "corpus": str(args.corpus),
        "documents": report.documents,
        "passages": report.chunks,
        "end_to_end_passages_per_s": round(end_to_end, 2),
        "pure_encode_passages_per_s": round(pure, 2),
        "pure_encode_before_after": [round(pure_before, 2), round(pure_after, 2)],
        "ratio": round(end_to_end / pure, 3),
        "target_ratio": 0.85,
        "ingest_wall_s": round(report.wall_seconds, 2),
        "ingest_process_cpu_s": round(ingest_cpu, 2),
        "stage_busy_s": {k: round(v, 2) for k, v in report.stage_seconds.items()},
        "stage_throughput": {k: round(v, 1) for k, v in report.stage_throughput.items()},
        "settings": {
            "bi_encoder": settings.bi_encoder,
            "device": str(model.device),
            "encode_batch_size": settings.encode_batch_size,
            "ingest_batch_size": settings.ingest_batch_size,
            "chunk_tokens": settings.ingest_chunk_tokens or model.max_seq_length - 2,
            "overlap": settings.ingest_chunk_overlap,
            "vector_index_type": settings.vector_index_type,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
