"""A blend for a cross-encoder on an index nobody judged: chosen and confirmed on pseudo-queries from the index.

The serving policy's second source (``service/blend_policy.py``). Without judgments, the index
still says what some queries are about: a titled document's title asks for that document, and
an untitled one's first sentence asks for it. Each becomes a query judged by its own document.
The cross-encoder scores every pseudo-query's candidates once; the grid of
``evaluation/tuning.py`` is replayed from those scores; the setting chosen on one hash half
must be confirmed on the other (out of sample: the model never saw these queries).

These queries are easy for the first stage (their words are in the document), so a good
cross-encoder can mostly only tie there. Up to weight ``HARMLESS_UP_TO`` the rule is therefore non-inferiority: such a setting is
kept when its confirmed lower bound of the gain is above ``-MARGIN`` (it costs at most that),
ties going to the larger weight; a larger weight needs a confirmed gain, as with judgments
(``evaluation/tuning.pick``). A model that scrambles what the first stage finds gets weight 0
(the stage is then skipped).

The result is cached per model and concrete index under ``RRS_HOME/calibrations``
(``calibration_path``): a retrained model or a reindex has none until ``rrs calibrate`` runs.

    best, facts = calibrate(pipeline, es, "docs", count=200, candidates=50)
"""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from rrsearch.core.errors import RerankError
from rrsearch.evaluation.dataset import Dataset
from rrsearch.service.blend import BlendConfig, write_calibration_file

MARGIN = 0.005  # the most nDCG@10 a confirmed corpus blend may cost on the pseudo-queries
HARMLESS_UP_TO = 0.3  # weights that need only do no harm there; a larger one needs a confirmed gain
MIN_QUERY_WORDS = 3  # shorter titles or sentences ask for nothing in particular
MAX_QUERY_WORDS = 30


def first_sentence(text: str) -> str | None:
    """The first sentence of ``text`` with at least ``MIN_QUERY_WORDS`` words, capped (pure)."""
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        words = sentence.split()
        if len(words) >= MIN_QUERY_WORDS:
            return " ".join(words[:MAX_QUERY_WORDS])
    return None


def pseudo_query(source: dict) -> tuple[str, str] | None:
    """(kind, query) for one document's first passage: its title, else its first sentence (pure)."""
    title = " ".join((source.get("title") or "").split())
    if len(title.split()) >= MIN_QUERY_WORDS:
        return "title", title
    sentence = first_sentence(source.get("text") or "")
    return ("sentence", sentence) if sentence else None


def pseudo_judgments(es, alias: str, *, count: int, seed: int = 13) -> Dataset:
    """Up to ``count`` pseudo-queries, each judged by the document it came from (seeded draw
    over the documents' first passages, sorted ids first so the draw does not depend on the
    order the node returned them in)."""
    from elasticsearch import helpers

    firsts: dict[str, tuple[int, dict]] = {}
    query = {"query": {"match_all": {}}, "_source": ["parent_id", "chunk", "title", "text"]}
    for hit in helpers.scan(es, index=alias, query=query, size=1000):
        source = hit["_source"]
        parent, chunk = source.get("parent_id") or hit["_id"], int(source.get("chunk") or 0)
        if parent not in firsts or chunk < firsts[parent][0]:
            firsts[parent] = (chunk, source)
    made = {doc: q for doc in sorted(firsts) if (q := pseudo_query(firsts[doc][1])) is not None}
    drawn = random.Random(seed).sample(sorted(made), min(count, len(made)))
    queries = {f"{made[doc][0]}:{doc}": made[doc][1] for doc in sorted(drawn)}
    qrels = {qid: {qid.split(":", 1)[1]: 1} for qid in queries}
    return Dataset(root=Path(alias), corpus_path=Path(alias), queries=queries, qrels=qrels, split="pseudo")


def calibrate(
    pipeline, es, alias: str, *, count: int, candidates: int, seed: int = 13, progress: bool = False
) -> tuple[BlendConfig, dict]:
    """Choose and confirm the blend on ``count`` pseudo-queries (see the module's docstring)."""
    from tqdm import tqdm

    from rrsearch.evaluation.tuning import choose, collect

    dataset = pseudo_judgments(es, alias, count=count, seed=seed)
    if len(dataset.queries) < 20:
        raise RerankError(
            f"index {alias!r} gives only {len(dataset.queries)} pseudo-queries (titles or first sentences of "
            f"{MIN_QUERY_WORDS}+ words); a corpus calibration needs at least 20: the default blend serves"
        )
    started = time.perf_counter()
    with tqdm(total=len(dataset.queries), desc="pseudo-queries", unit="q", disable=not progress) as bar:
        collected = collect(pipeline, dataset, candidates=candidates, index=alias, progress=bar)
    kinds = [qid.split(":", 1)[0] for qid in dataset.queries]
    chosen_on = {
        "split": "pseudo-queries from the index (a document's title, else its first sentence, asks for it)",
        "queries": len(dataset.queries),
        "titles": kinds.count("title"),
        "sentences": kinds.count("sentence"),
        "candidates": candidates,
        "margin": MARGIN,
        "harmless_up_to": HARMLESS_UP_TO,
        "seconds": round(time.perf_counter() - started, 1),
    }
    best, facts = choose(dataset.qrels, collected, chosen_on, harmless_up_to=HARMLESS_UP_TO, margin=MARGIN)
    facts["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    return best, facts


def save(path: Path, best: BlendConfig, facts: dict, *, model: str, index_version: str) -> Path:
    """Write the calibration where the service looks for it (``calibration_path``)."""
    return write_calibration_file(path, best, {**facts, "model": model, "index_version": index_version})
