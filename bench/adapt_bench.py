"""`rrs adapt` on SciFact, as a user runs it: ingest with the defaults, then the whole loop, timed.

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/adapt_bench.py [--alias adapt-scifact] \
        [--output DIR] [-- extra rrs adapt options]

1. ``rrs ingest`` SciFact into a fresh ``--alias`` with no backend setting (the packaged MiniLM
   through its ONNX int8 export on a CPU), unless the alias already exists.
2. ``rrs adapt`` with its defaults (train-encoder, reindex, cross-fitted train-reranker) into
   ``--output``; its log lines (mining, each training, each fold) are kept.

Issue 24's bar is the adapt command under 3 hours on this machine's 2 cores. The command's own
JSON (each stage's nDCG@10 before and after on the test split, the step times, what is served)
goes into bench/results/adapt_scifact.json with the ingest report, the wall times, the blend's
figures (``rrs_rerank.json``) and the bi-encoder's training facts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import DATA

RESULTS = Path(__file__).resolve().parent / "results"


def alias_exists(alias: str) -> bool:
    from rrsearch.core.es_client import make_client
    from rrsearch.core.settings import Settings

    es = make_client(Settings())
    try:
        return bool(es.indices.exists_alias(name=alias))
    finally:
        es.close()


def timed(command: list[str], log_path: Path) -> tuple[float, str, list[str]]:
    """Run ``command``: its wall seconds, its stdout, and its stderr lines (also kept in ``log_path``)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    log_path.write_text(done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}; its log: {log_path}")
    return time.perf_counter() - started, done.stdout, done.stderr.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alias", default="adapt-scifact")
    parser.add_argument("--output", type=Path, help="rrs adapt --output [RRS_HOME/adapt/ALIAS]")
    parser.add_argument("extra", nargs="*", help="more rrs adapt options, after --")
    args = parser.parse_args()
    assert os.environ.get("ES_URL"), "set ES_URL (e.g. `rrs es start`)"
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"adapt-bench-{args.alias}"
    logs.mkdir(parents=True, exist_ok=True)

    result: dict = {
        "bench": "adapt_bench",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "alias": args.alias,
    }
    if not alias_exists(args.alias):
        seconds, out, _ = timed(
            ["rrs", "ingest", str(DATA / "corpus.jsonl.gz"), "--index", args.alias, "--no-progress", "--json"],
            logs / "ingest.log",
        )
        result["ingest"] = {"wall_s": round(seconds, 1), "report": json.loads(out)}
    command = ["rrs", "adapt", str(DATA), "--index", args.alias, "--no-progress", "--json", *args.extra]
    if args.output:
        command += ["--output", str(args.output)]
    seconds, out, lines = timed(command, logs / "adapt.log")
    outcome = json.loads(out)
    served = outcome["served"]
    result["adapt"] = {
        "wall_s": round(seconds, 1),
        "command": command,
        "outcome": outcome,
        "blend": json.loads((Path(served["cross_encoder"]) / "rrs_rerank.json").read_text()),
        "encoder_training": json.loads((Path(served["bi_encoder"]) / "training.json").read_text())["result"],
        "log": lines,
    }
    print(json.dumps({"adapt_wall_s": round(seconds, 1), "outcome": outcome}, indent=2, default=str))
    (RESULTS / "adapt_scifact.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
