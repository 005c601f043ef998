"""Analyzer benchmark: SciFact BM25 and hybrid nDCG@10 with the `standard` and `english` analyzers.

The passages and their vectors are copied (``_reindex``) from an alias that already holds
SciFact into one index per analyzer, so only the text analysis differs. The analyzer is
chosen on the train split and both are reported on test. Needs a node with the english
analysis plugin (``rrs es start`` installs it).

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/analyzer_bench.py --source scifact

Prints JSON and writes it to ``bench/results/analyzer_scifact.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import DATA  # noqa: E402

ANALYZERS = ("standard", "english")
CONFIGS = ("bm25", "hybrid_rrf")


def copy_with_analyzer(es, settings, source: str, analyzer: str) -> tuple[str, float]:
    """A new index behind ``<source>-<analyzer>`` holding ``source``'s documents; seconds taken."""
    from core.indexes import create_versioned_index, current_index, delete_alias_and_versions, passage_index_body

    live = current_index(es, source)
    meta = es.indices.get_mapping(index=live)[live]["mappings"].get("_meta", {})
    body = passage_index_body(es, settings.model_copy(update={"analyzer": analyzer}), dims=int(meta["dims"]),
                              model=meta["bi_encoder"], encoder_meta={k: v for k, v in meta.items() if k != "ingest"})
    alias = f"{source}-{analyzer}"
    delete_alias_and_versions(es, alias)
    name = create_versioned_index(es, alias, body)
    started = time.perf_counter()
    es.options(request_timeout=3600).reindex(source={"index": live}, dest={"index": name}, wait_for_completion=True)
    es.indices.refresh(index=name)
    es.indices.update_aliases(actions=[{"add": {"index": name, "alias": alias}}])
    return alias, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="scifact", help="Alias holding SciFact (ingested by rrs ingest).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "analyzer_scifact.json")
    args = parser.parse_args()

    from core.es_client import make_client
    from core.settings import Settings
    from evaluation.cli import evaluate_dataset
    from evaluation.dataset import load_dataset
    from evaluation.runner import FusionParams

    settings = Settings()
    es = make_client(settings)
    try:
        es.indices.analyze(analyzer="english", text="probe")
    except Exception as exc:  # noqa: BLE001
        sys.exit(f"the node has no english analyzer ({exc}); start it with `rrs es start`")
    results: dict = {"source": args.source, "documents": es.count(index=args.source)["count"], "analyzers": {}}
    for analyzer in ANALYZERS:
        alias, seconds = copy_with_analyzer(es, settings, args.source, analyzer)
        row: dict = {"alias": alias, "reindex_s": round(seconds, 1)}
        for split in ("train", "test"):
            rows, _ = evaluate_dataset(settings, load_dataset(DATA, split), index_alias=alias, candidates=100,
                                       reranker_name=None, configs=CONFIGS,
                                       fusion=FusionParams(settings.rrf_k, 0.5, "minmax"), progress=False)
            row[split] = {r["config"]: r["metrics"]["ndcg@10"] for r in rows}
        results["analyzers"][analyzer] = row
        print(analyzer, json.dumps(row), flush=True)
    train = {a: results["analyzers"][a]["train"]["hybrid_rrf"] for a in ANALYZERS}
    chosen = max(train, key=train.get)
    results["chosen_on_train"] = chosen
    results["test_gain_of_english"] = {
        config: round(results["analyzers"]["english"]["test"][config] - results["analyzers"]["standard"]["test"][config], 4)
        for config in CONFIGS
    }
    results["published_bm25_scifact"] = {"value": 0.665, "source": "BEIR paper (Thakur et al. 2021), Table 2, BM25"}
    text = json.dumps(results, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
