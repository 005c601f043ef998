"""How long our processes take to end: `rrs serve` stopped after answering requests, and a one-document
`rrs ingest` from start to exit, against another checkout.

A stop is what every deploy, restart and test fixture waits for; a short command's exit is most of
its time. The service is started on ``--alias`` (reranking with ``--cross-encoder``, first stage
only without), answers ``--requests`` searches, then its process group gets SIGTERM; the figure is
the time until the gunicorn master has exited. Two client modes: ``closed`` (every request says
``Connection: close``, so no connection is left open) and ``keep-alive`` (the client holds one
open: gunicorn then lingers up to 2 s for it, its graceful stop). A client that only calls
``requests.Session.close()`` may still hold its socket.

The ingest writes one document into ``<alias>-exit-bench`` (left in place; rerun it freely).

With ``--baseline-root`` the same runs alternate with that checkout (its processes start in it, with
it first on PYTHONPATH, so its ``rrsearch`` and gunicorn.conf.py serve), and the JSON gives the
ratio ours / baseline per mode. The node is the one the settings name (ES_URL, or the local node:
``rrs es start``).

    git worktree add /tmp/old-checkout <commit>
    python bench/process_exit_bench.py --alias sample --cross-encoder MODEL_DIR --rounds 4 --baseline-root /tmp/old-checkout
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from rrsearch.rrs.local_node import first_free_port

ROOT = Path(__file__).resolve().parents[1]
MODES = ("closed", "keep-alive", "one-doc ingest")


def _env(root: Path | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RRS_DEVICE": "cpu", "RRS_SEARCH_LOG_ENABLED": "false", **extra}
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    return env


def ingest_seconds(root: Path | None, alias: str, log: Path) -> float:
    """A one-document `rrs ingest`, from its start to its exit."""
    corpus = log.with_suffix(".jsonl")
    corpus.write_text(json.dumps({"id": "exit-bench", "text": "one short passage about otters"}) + "\n")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "rrsearch", "ingest", str(corpus), "--index", f"{alias}-exit-bench", "--no-progress"],
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root or ROOT,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"the ingest failed: {done.stderr[-2000:]}")
    return seconds


def stop_seconds(
    root: Path | None, alias: str, cross_encoder: str | None, mode: str, requests_before: int, log: Path
) -> float:
    """Start `rrs serve` (from ``root``'s checkout, or this environment's), answer requests, stop it."""
    port = first_free_port(18_990)
    model = {"RRS_CROSS_ENCODER": cross_encoder} if cross_encoder else {"RRS_RERANK_ENABLED": "false"}
    env = _env(root, RRS_INDEX_ALIAS=alias, **model)
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "rrsearch", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=root or ROOT,  # `python -m` puts the working directory first on sys.path
        )
    client = requests.Session()
    base = f"http://127.0.0.1:{port}"
    headers = {"Connection": "close"} if mode == "closed" else {}  # closed: the server ends each connection
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the service did not start: {log.read_text()[-2000:]}")
        try:
            if client.get(f"{base}/readyz", headers=headers, timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.1)
    for n in range(requests_before):
        body = {"query": f"notes {n}", "rerank": bool(cross_encoder)}
        client.post(f"{base}/search", json=body, headers=headers, timeout=30).raise_for_status()
    started = time.monotonic()
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=120)
    seconds = time.monotonic() - started
    client.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alias", default="sample", help="an index the service searches")
    parser.add_argument("--cross-encoder", help="a cross-encoder folder: searches rerank (none: first stage only)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3, help="requests answered before the stop")
    parser.add_argument("--baseline-root", type=Path, help="another checkout, measured alternately")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "process_exit.json")
    args = parser.parse_args()

    variants: dict[str, Path | None] = {"ours": None}
    if args.baseline_root:
        variants["baseline"] = args.baseline_root.resolve()
    seconds: dict[str, dict[str, list[float]]] = {name: {mode: [] for mode in MODES} for name in variants}
    log = Path(tempfile.gettempdir()) / "rrs-process-exit-bench.log"
    for round_ in range(args.rounds):
        for mode in MODES:
            for name, root in variants.items():
                if mode == "one-doc ingest":
                    took = ingest_seconds(root, args.alias, log)
                else:
                    took = stop_seconds(root, args.alias, args.cross_encoder, mode, args.requests, log)
                seconds[name][mode].append(took)
                print(f"round {round_ + 1} {mode:10s} {name:8s} {took:.2f} s", flush=True)
    medians = {
        name: {mode: statistics.median(values) for mode, values in by_mode.items()} for name, by_mode in seconds.items()
    }
    result: dict = {
        "rounds": args.rounds,
        "requests_before_stop": args.requests,
        "seconds": seconds,
        "median_s": medians,
    }
    if "baseline" in medians:
        result["ratio_ours_to_baseline"] = {
            mode: round(medians["ours"][mode] / medians["baseline"][mode], 2) for mode in MODES
        }
        result["baseline_root"] = str(variants["baseline"])
    print(json.dumps({k: v for k, v in result.items() if k != "seconds"}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
