"""Show an evaluation: a terminal table, the JSON file, a PNG chart, a diff to an earlier run.

The JSON shape other tools read::

    {"settings": {...},
     "results": [{"config": "bm25" | "knn" | "hybrid_rrf" | "hybrid_linear", "rerank": bool,
                  "metrics": {"ndcg@10", "recall@100", "mrr@10", "map@100"},
                  "latency_ms": {"p50", "p95"}}]}
"""

from __future__ import annotations

import json
from pathlib import Path

METRIC_NAMES = ("ndcg@10", "recall@100", "mrr@10", "map@100")


def label(result: dict) -> str:
    return f"{result['config']}{' +rerank' if result['rerank'] else ''}"


def format_table(results: list[dict]) -> str:
    """A fixed-width table: one row per configuration."""
    header = f"{'configuration':<22}" + "".join(f"{m:>12}" for m in METRIC_NAMES) + f"{'p50 ms':>10}{'p95 ms':>10}"
    rows = [header, "-" * len(header)]
    for result in results:
        rows.append(
            f"{label(result):<22}"
            + "".join(f"{result['metrics'][m]:>12.4f}" for m in METRIC_NAMES)
            + f"{result['latency_ms']['p50']:>10.1f}{result['latency_ms']['p95']:>10.1f}"
        )
    return "\n".join(rows)


def blend_lines(results: list[dict]) -> list[str]:
    """Which blend served each reranked configuration, and who chose it (the serving policy's source)."""
    return [
        f"{label(r)}: blend from {b['source']} (weight {b['weight']:g}, depth {b['depth']}, {b['normalization']}; "
        f"{b['queries']} queries): {b['detail']}"
        for r in results
        if (b := r.get("blend"))
    ]


def compare(current: dict, previous: dict) -> str:
    """Per configuration and metric: previous -> current (difference); new/missing rows said."""
    before = {label(r): r for r in previous.get("results", [])}
    lines = [f"{'configuration':<22}{'metric':>12}{'previous':>10}{'current':>10}{'diff':>10}"]
    for result in current["results"]:
        old = before.pop(label(result), None)
        if old is None:
            lines.append(f"{label(result):<22}  (new in this run)")
            continue
        for metric in METRIC_NAMES:
            a, b = old["metrics"][metric], result["metrics"][metric]
            lines.append(f"{label(result):<22}{metric:>12}{a:>10.4f}{b:>10.4f}{b - a:>+10.4f}")
    lines += [f"{name:<22}  (only in the previous run)" for name in before]
    return "\n".join(lines)


def write_json(path: Path, settings: dict, results: list[dict]) -> dict:
    document = {"settings": settings, "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return document


def write_chart(path: Path, results: list[dict], title: str = "") -> None:
    """nDCG@10 and Recall@100 side by side for every configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [label(r) for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.3 * len(names) + 4), 4.5), sharey=False)
    for axis, metric in zip(axes, ("ndcg@10", "recall@100")):
        values = [r["metrics"][metric] for r in results]
        colors = ["#c0504d" if r["rerank"] else "#4f81bd" for r in results]
        bars = axis.bar(range(len(names)), values, color=colors)
        axis.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=8)
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        axis.set_ylim(0, 1.05)
        axis.set_title(metric)
    fig.suptitle(title or "Search quality per configuration (red: with cross-encoder rerank)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
