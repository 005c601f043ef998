"""Bigger reranker trainings on a GPU, from frozen first-stage lists (no Elasticsearch needed there).

    HF_HUB_OFFLINE=1 python bench/gpu_rerank_train.py --lists .gpu/scifact_lists.json.gz --out $OUT

``bench/gpu_prepare.py`` writes the lists where the node runs. Here, for each recipe, with
the project's own trainer (``training/reranker.py``) on CUDA:

* two fold models, each trained on half of the judged train queries (folds as
  ``training/crossfit.py`` deals them), score the other half's 100 candidates: every train
  query gets an out-of-fold score, what the serving policy calibrates on;
* one model trained on every train query scores the test queries' candidates.

Negatives are mined from the frozen lists as ``training/mining.py`` does. Scores (not
models: they stay on the lent machine) go to ``$OUT/gpu_scores_<recipe>.json.gz``;
``bench/gpu_blend_eval.py`` turns them into test nDCG@10 here. Recipes run in order until
``--deadline-s`` would be passed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> (trainer settings, mining settings): the CPU default is bce, 6 negatives, 2 epochs,
# 128 tokens; a GPU affords more negatives, longer pairs and a listwise loss.
RECIPES = {
    "bce-n16-256": (
        {"loss": "bce", "epochs": 3, "batch_size": 64, "learning_rate": 3e-5, "max_length": 256},
        {"negatives": 16, "min_rank": 1, "max_rank": 100, "sampling": "random"},
    ),
    "mnrl-n15-256": (
        {"loss": "mnrl", "epochs": 3, "batch_size": 16, "learning_rate": 3e-5, "max_length": 256},
        {"negatives": 15, "min_rank": 1, "max_rank": 100, "sampling": "random"},
    ),
}


def mined_queries(split: dict, texts: list[str], *, negatives: int, min_rank: int, max_rank: int, sampling: str):
    """MinedQuery rows from the frozen lists (positives: the judged documents' passages as the
    first stage found them, else their first passage)."""
    from rrsearch.training.mining import MinedQuery, pick_negatives

    rng = random.Random(13)
    firsts = split["first_passages"]
    rows = []
    for entry in split["lists"]:
        qrels = split["qrels"].get(entry["id"], {})
        positives = {doc for doc, grade in qrels.items() if grade > 0}
        hit_text = dict(zip(entry["docs"], entry["texts"], strict=True))
        positive_texts = [texts[hit_text.get(doc, firsts.get(doc, -1))] for doc in sorted(positives)]
        picked = pick_negatives(
            entry["docs"],
            positives,
            min_rank=min_rank,
            max_rank=max_rank,
            count=negatives,
            sampling=sampling,
            rng=rng,
        )
        rows.append(
            MinedQuery(
                id=entry["id"],
                query=entry["query"],
                positives=positive_texts,
                negatives=[texts[hit_text[doc]] for doc in picked],
                ranked=[texts[i] for i in entry["texts"]],
                mined=len(picked),
            )
        )
    return rows


def score_lists(
    model_dir: Path, lists: list[dict], texts: list[str], max_length: int, device: str
) -> dict[str, list[float]]:
    """Each list's candidates scored by the saved cross-encoder (fp16 on CUDA; one raw logit per pair)."""
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(model_dir), device=device, max_length=max_length)
    if device.startswith("cuda"):
        model.model.half()
    pairs = [(entry["query"], texts[i]) for entry in lists for i in entry["texts"]]
    with torch.inference_mode():
        flat = model.predict(pairs, batch_size=512, activation_fn=torch.nn.Identity(), show_progress_bar=False)
    scores, start = {}, 0
    for entry in lists:
        scores[entry["id"]] = [round(float(s), 5) for s in flat[start : start + len(entry["texts"])]]
        start += len(entry["texts"])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=Path, default=ROOT / ".gpu/scifact_lists.json.gz")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "bench/results")))
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES))
    parser.add_argument("--deadline-s", type=float, default=420.0, help="Start no recipe after this many seconds.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rrs-gpu-train"))
    parser.add_argument("--device", default="cuda", help="cpu with --limit: a quick check of the script itself")
    parser.add_argument("--limit", type=int, help="Only the first N queries of each split (a check).")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from rrsearch.training.crossfit import assign_folds
    from rrsearch.training.reranker import TrainConfig, train_reranker

    started = time.perf_counter()
    with gzip.open(args.lists, "rt") as handle:
        frozen = json.load(handle)
    texts, train_split, test_split = frozen["texts"], frozen["splits"]["train"], frozen["splits"]["test"]
    if args.limit:
        for split in (train_split, test_split):
            split["lists"] = split["lists"][: args.limit]
    judged = [entry["id"] for entry in train_split["lists"] if entry["id"] in train_split["qrels"]]
    fold_of = assign_folds(judged, 2)
    for name in args.recipes:
        if time.perf_counter() - started > args.deadline_s:
            print(f"{name}: skipped (past the {args.deadline_s:.0f} s deadline)", flush=True)
            continue
        trainer, mining = RECIPES[name]
        config = TrainConfig(**trainer, eval_fraction=0.1, eval_depth=30, seed=13, device=args.device)
        mined = mined_queries(train_split, texts, **mining)
        recipe_started = time.perf_counter()
        out_of_fold: dict[str, list[float]] = {}
        facts: dict = {"recipe": name, "trainer": trainer, "mining": mining, "folds": 2}
        for fold in (0, 1):
            own = {qid for qid, f in fold_of.items() if f == fold}
            result = train_reranker(
                [q for q in mined if q.id not in own], config, args.work / name / f"fold-{fold}", progress=False
            )
            facts[f"fold_{fold}"] = {"seconds": result.seconds, "heldout_after": result.after}
            own_lists = [entry for entry in train_split["lists"] if entry["id"] in own]
            out_of_fold.update(
                score_lists(args.work / name / f"fold-{fold}", own_lists, texts, config.max_length, args.device)
            )
        result = train_reranker(mined, config, args.work / name / "all", progress=False)
        facts["all"] = {
            "seconds": result.seconds,
            "heldout_first_stage": result.first_stage,
            "heldout_before": result.before,
            "heldout_after": result.after,
        }
        test = score_lists(args.work / name / "all", test_split["lists"], texts, config.max_length, args.device)
        facts["seconds"] = round(time.perf_counter() - recipe_started, 1)
        facts["gpu"] = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"gpu_scores_{name}.json.gz"
        with gzip.open(path, "wt") as handle:
            json.dump({"facts": facts, "out_of_fold_train": out_of_fold, "test": test}, handle)
        print(f"{name}: {facts['seconds']} s; held-out (all) {result.first_stage} -> {result.after}; wrote {path}")


if __name__ == "__main__":
    main()
