"""The rerank stage's scheduling under load, without the model's noise: does each search's plan hold?

    python bench/rerank_schedule_bench.py [--concurrency 1 4 16] [--seconds 60] [--out bench/results/rerank_schedule.json]

The depth planner (``service/rerank.py``'s ``adaptive_depth``) gives each search the candidates
that fit its share of the budget behind the work queued ahead of it, and the micro-batcher
(``service/batching.py``) serves the jobs. If the batcher later serves work that arrived after a
search ahead of that search's tail, the plan breaks and the search times out. This bench runs
the real planner and the real batcher with a model that sleeps for a fixed throughput (so the
figures do not depend on a shared machine), ``c`` closed-loop searches that each spend 0.15-0.25 s
in retrieval, then plan and submit 100 candidates of 120-256 tokens with a 3 s budget, and counts
what came back: reranked at full depth, at a reduced depth, timed out, or skipped as overloaded.

Two schedules, the same planner code path: ``before`` (a job's tail goes behind every job that
arrived meanwhile, and the queue term of the plan had no headroom) and ``now``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrsearch.service.batching import MicroBatcher  # noqa: E402
from rrsearch.service.pipeline import InFlight  # noqa: E402
from rrsearch.service.rerank import adaptive_depth  # noqa: E402

BUDGET_S = 3.0
CANDIDATES = 100
FLOOR = 10
FORWARD_PAIRS = 8  # the CPU forward pass (RRS_RERANK_BATCH_SIZE's default there)


class BatcherBefore(MicroBatcher):
    """The batcher as it was: a job served part of a batch always went behind the arrivals."""

    def _back_in_line(self, job) -> None:
        self._line.append(job)


def depth_before(pair_tokens, *, floor, queued_tokens, tokens_per_s, budget_s, concurrent, headroom=0.8) -> int:
    """The planner as it was: the queue term had the whole budget, not its headroom."""
    share = headroom * budget_s * tokens_per_s / max(concurrent, 1)
    allowance = min(share, budget_s * tokens_per_s - queued_tokens)
    depth, used = 0, 0
    for tokens in pair_tokens:
        used += tokens
        if used > allowance:
            break
        depth += 1
    if depth >= min(floor, len(pair_tokens)):
        return depth
    return min(floor, len(pair_tokens)) if queued_tokens <= 0 and concurrent <= 1 else 0


def run(schedule: str, concurrency: int, seconds: float, tokens_per_s: float, seed: int) -> dict:
    batcher: MicroBatcher

    def score(items, keep_going):
        scores = []
        for start in range(0, len(items), FORWARD_PAIRS):
            if not keep_going():
                raise RuntimeError("every caller gave up")
            chunk = items[start : start + FORWARD_PAIRS]
            spent = sum(chunk) / tokens_per_s
            time.sleep(spent)
            batcher.observe(sum(chunk), spent)
            scores += [0.0] * len(chunk)
        return scores

    batcher = (BatcherBefore if schedule == "before" else MicroBatcher)(score)
    plan = depth_before if schedule == "before" else adaptive_depth
    batcher.observe(16_000, 16_000 / tokens_per_s)  # the warm-up's measurement
    in_flight = InFlight()
    outcomes: dict[str, int] = {"full": 0, "reduced": 0, "timeout": 0, "overloaded": 0}
    depths: list[int] = []
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        while time.monotonic() < stop:
            with in_flight:
                started = time.monotonic()
                time.sleep(0.15 + 0.1 * rng.random())  # the query's embedding and the retrieval
                tokens = [rng.randint(120, 256) for _ in range(CANDIDATES)]
                deadline = time.monotonic() + BUDGET_S
                depth = plan(
                    tokens,
                    floor=FLOOR,
                    queued_tokens=batcher.live_tokens,
                    tokens_per_s=batcher.tokens_per_s,
                    budget_s=BUDGET_S,
                    concurrent=in_flight.count,
                )
                if depth == 0:
                    outcome = "overloaded"
                else:
                    future = batcher.submit(tokens[:depth], deadline, tokens=tokens[:depth])
                    try:
                        future.result(timeout=max(deadline - time.monotonic(), 0.0))
                        outcome = "full" if depth == CANDIDATES else "reduced"
                    except FutureTimeout:
                        future.cancel()
                        outcome = "timeout"
                with lock:
                    outcomes[outcome] += 1
                    latencies.append(time.monotonic() - started)
                    if outcome in ("full", "reduced"):
                        depths.append(depth)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    searches = sum(outcomes.values())
    return {
        "searches": searches,
        **outcomes,
        "timeout_share": round(outcomes["timeout"] / searches, 3),
        "median_depth": statistics.median(depths) if depths else None,
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(statistics.quantiles(latencies, n=20)[-1], 2) if len(latencies) > 1 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tokens-per-s", type=float, default=16_000.0, help="the sleeping model's throughput")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/rerank_schedule.json")
    args = parser.parse_args()
    report: dict = {
        "benchmark": "rerank_schedule_bench",
        "budget_s": BUDGET_S,
        "tokens_per_s": args.tokens_per_s,
        "seconds_per_run": args.seconds,
        "runs": {},
    }
    for concurrency in args.concurrency:
        # both schedules at once: the model sleeps, so they do not compete for the cores
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {
                schedule: pool.submit(run, schedule, concurrency, args.seconds, args.tokens_per_s, args.seed)
                for schedule in ("before", "now")
            }
            results = {schedule: future.result() for schedule, future in futures.items()}
        report["runs"][f"c={concurrency}"] = results
        print(f"c={concurrency}", json.dumps(results), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
