"""Freeze SciFact's first-stage lists into one file, so a GPU machine without Elasticsearch can train on them.

    HF_HUB_OFFLINE=1 ES_URL=... python bench/gpu_prepare.py --index scifact --out .gpu/scifact_lists.json.gz

The lent GPU machines have PyTorch but no JDK, so they cannot run our node. This script runs
where the node is (the index built by ``rrs ingest`` of SciFact's corpus): for every train and
test query it runs the service's own first stage (hybrid, fused, one hit per document, 100
deep, no rerank) and writes the ranked document ids, each hit's passage text (as the reranker
sees it) and fused score, the first passage of every judged document, and the qrels.
``bench/gpu_rerank_train.py`` trains and scores from that file alone; the scores come back and
``bench/gpu_blend_eval.py`` evaluates them here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/scifact")
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu/scifact_lists.json.gz")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from tqdm import tqdm

    from rrsearch.core.passage import passage_text
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.offline import open_pipeline
    from rrsearch.training.mining import first_passages, search_request

    offline = open_pipeline(Settings(), alias=args.index, depth=args.depth)
    texts: list[str] = []  # each distinct passage text once; lists refer to it by position
    position: dict[str, int] = {}

    def text_id(text: str) -> int:
        if text not in position:
            position[text] = len(texts)
            texts.append(text)
        return position[text]

    splits = {}
    for split in ("train", "test"):
        dataset = load_dataset(args.data, split, check_corpus=False)
        lists = []
        for qid, query in tqdm(dataset.queries.items(), desc=split, unit=" queries"):
            hits = offline.pipeline.search(search_request(query, depth=args.depth, candidates=args.depth)).hits
            lists.append(
                {
                    "id": qid,
                    "query": query,
                    "docs": [hit.parent_id for hit in hits],
                    "texts": [text_id(passage_text({"title": hit.title, "text": hit.text})) for hit in hits],
                    "scores": [round(hit.score, 6) for hit in hits],
                }
            )
        judged = {doc for qid in dataset.queries for doc in dataset.qrels.get(qid, {})}
        firsts = first_passages(offline.pipeline.es, args.index, judged)
        splits[split] = {
            "lists": lists,
            "qrels": {qid: dataset.qrels[qid] for qid in dataset.queries if qid in dataset.qrels},
            "first_passages": {doc: text_id(text) for doc, text in firsts.items()},
        }
    offline.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out, "wt") as handle:
        json.dump({"index": args.index, "depth": args.depth, "texts": texts, "splits": splits}, handle)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {len(texts)} passages)")


if __name__ == "__main__":
    main()
