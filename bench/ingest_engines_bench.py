"""Default CPU ingest against torch fp32, each as a user runs it: `rrs ingest` in its own process.

``defaults_bench.py`` times every engine inside one Python process, one after another. There,
torch fp32 shares the process with the OpenVINO and ONNX Runtime thread pools loaded before it,
and its rate moved between runs (12.9-24.7 passages/s on the same machine). Here each run is a
fresh ``rrs ingest --json`` with only ``RRS_BI_ENCODER_BACKEND`` set (``torch``, or unset for
``auto``), rounds interleaved, into a fresh alias each time. A first untimed ``auto`` run makes
the export, so the timed ones measure the cached model, as every run after a user's first does.
Rates are the report's end to end passages/s (model loading included).

    ES_URL=http://127.0.0.1:9200 HF_HUB_OFFLINE=1 python bench/ingest_engines_bench.py [--docs 1000] [--rounds 3]

Writes ``bench/results/ingest_engines.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from _common import scifact_head  # noqa: E402

from rrsearch.core.encoders import detected_cpu_engine  # noqa: E402

ENGINES = {"torch fp32": {"RRS_BI_ENCODER_BACKEND": "torch"}, "auto": {}}


def ingest(corpus: Path, home: Path, engine_env: dict[str, str]) -> dict:
    """One `rrs ingest` run in a process of its own: its JSON report."""
    alias = f"bench-ingest-engines-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "RRS_BI_ENCODER_BACKEND"}
    env.update(engine_env, RRS_HOME=str(home), HF_HUB_OFFLINE="1")
    run = subprocess.run(
        [sys.executable, "-m", "rrsearch", "ingest", str(corpus), "--index", alias, "--json", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    subprocess.run(
        [sys.executable, "-m", "rrsearch", "index", "delete", "--alias", alias, "--yes"],
        env=env,
        capture_output=True,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"rrs ingest failed ({run.returncode}): {run.stderr[-2000:]}")
    return json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("ES_URL"):
        raise SystemExit("set ES_URL (e.g. `rrs es start`)")

    work = Path(tempfile.mkdtemp(prefix="ingest-engines-"))
    corpus = scifact_head(args.docs, work)
    home = work / "home"
    first = ingest(corpus, home, ENGINES["auto"])  # makes the export; not timed
    rates: dict[str, list[float]] = {name: [] for name in ENGINES}
    for round_ in range(args.rounds):
        for name, env in ENGINES.items():
            report = ingest(corpus, home, env)
            rates[name].append(round(report["passages_per_second"], 1))
            print(f"round {round_ + 1} {name}: {rates[name][-1]} passages/s ({report['indexed']} passages)", flush=True)
    mean = {name: statistics.mean(values) for name, values in rates.items()}
    result = {
        "docs": args.docs,
        "passages": first["indexed"],
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "auto_engine": detected_cpu_engine(),
        "passages_per_s": rates,
        "mean_passages_per_s": {name: round(value, 1) for name, value in mean.items()},
        "auto_vs_torch_fp32": round(mean["auto"] / mean["torch fp32"], 2),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    (ROOT / "results" / "ingest_engines.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
