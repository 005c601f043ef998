"""Analyzer benchmark: SciFact BM25 and hybrid nDCG@10 with the `standard` and `english` analyzers.

Two indexes of the same SciFact corpus, ingested by ``rrs ingest`` with the same bi-encoder,
one with ``RRS_ANALYZER=standard`` and one with ``english`` (the local node has it through
the plugin ``rrs es start`` installs), so only the text analysis differs. (Copying one
index into another cannot do it here: the vectors are not kept in ``_source`` and this
distribution has no ``_reindex``.) The analyzer is chosen on the train split and both are
reported on test.

    RRS_ANALYZER=standard rrs ingest corpus.jsonl.gz --index scifact-standard
    RRS_ANALYZER=english  rrs ingest corpus.jsonl.gz --index scifact-english
    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/analyzer_bench.py \
        --standard scifact-standard --english scifact-english

Prints JSON and writes it to ``bench/results/analyzer_scifact.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import DATA  # noqa: E402

CONFIGS = ("bm25", "hybrid_rrf")


def describe(es, alias: str) -> dict:
    """The analyzer and encoder an alias's index was built with."""
    from rrsearch.core.indexes import current_index

    live = current_index(es, alias)
    mapping = es.indices.get_mapping(index=live)[live]["mappings"]
    return {
        "alias": alias,
        "index": live,
        "analyzer": mapping["properties"]["text"].get("analyzer", "standard"),
        "bi_encoder": mapping.get("_meta", {}).get("bi_encoder"),
        "passages": es.count(index=alias)["count"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--standard", required=True, help="Alias built with the standard analyzer.")
    parser.add_argument("--english", required=True, help="Alias built with the english analyzer.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "analyzer_scifact.json")
    args = parser.parse_args()

    from rrsearch.core.es_client import make_client
    from rrsearch.core.settings import Settings
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.offline import evaluate_dataset
    from rrsearch.evaluation.runner import FusionParams

    settings = Settings()
    es = make_client(settings)
    results: dict = {"analyzers": {}}
    for analyzer, alias in (("standard", args.standard), ("english", args.english)):
        row = describe(es, alias)
        if row["analyzer"] != analyzer:
            sys.exit(f"{alias} was built with the {row['analyzer']} analyzer, not {analyzer}")
        for split in ("train", "test"):
            rows, _ = evaluate_dataset(
                settings,
                load_dataset(DATA, split),
                index_alias=alias,
                candidates=100,
                reranker_name=None,
                configs=CONFIGS,
                fusion=FusionParams(settings.rrf_k, 0.5, "minmax"),
                progress=False,
            )
            row[split] = {r["config"]: r["metrics"]["ndcg@10"] for r in rows}
        results["analyzers"][analyzer] = row
        print(analyzer, json.dumps(row), flush=True)
    same = {key: {r[key] for r in results["analyzers"].values()} for key in ("bi_encoder", "passages")}
    if any(len(values) > 1 for values in same.values()):
        sys.exit(f"the two indexes differ in more than the analyzer: {same}")
    train = {name: row["train"]["hybrid_rrf"] for name, row in results["analyzers"].items()}
    results["chosen_on_train"] = max(train, key=train.get)
    results["test_gain_of_english"] = {
        config: round(
            results["analyzers"]["english"]["test"][config] - results["analyzers"]["standard"]["test"][config], 4
        )
        for config in CONFIGS
    }
    results["published_bm25_scifact"] = {"value": 0.665, "source": "BEIR (Thakur et al., 2021), Table 2, BM25"}
    text = json.dumps(results, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
