"""A blend for a cross-encoder on an index nobody judged: chosen and confirmed on pseudo-queries from the index.

The serving policy's second source (``service/blend_policy.py``). Without judgments, the index
still says what some queries are about: a titled document's title asks for that document, and
an untitled one's first sentence asks for it. Each becomes a query judged by its own document.
The cross-encoder scores every pseudo-query's candidates once; the grid of
``evaluation/tuning.py`` is replayed from those scores; the setting chosen on one hash half
must be confirmed on the other (out of sample: the model never saw these queries).

A model trained with title queries (``rrs train-reranker --title-queries``; the demo's) has seen
some titles asking for their documents: those documents ask with their first sentence instead,
so the confirmation stays out of sample (``training.json`` lists them; a file from before that
list makes every document ask with its first sentence).

These queries are easy for the first stage (their words are in the document), so a good
cross-encoder can mostly only tie there, and a tie says little about real queries. Up to
``HARMLESS_UP_TO`` (0.1, the lightest non-zero weight of the grid) the rule is therefore
non-inferiority: such a setting is kept when its confirmed lower bound of the gain is above
``-MARGIN`` (it costs at most that), ties going to the larger weight, then minmax, then the
smaller depth; a larger weight needs a confirmed gain, as with judgments
(``evaluation/tuning.pick``). Non-inferiority once reached to 0.3: on CACM, whose pseudo-queries
the first stage already answered (nDCG@10 0.996), 0.3 (rank) passed it and then cost 0.012 on
the real test queries.

When no setting is kept, the default blend is replayed on every query (``tuning.blend_verdict``,
as for judged queries): a model shown to hurt it there (``harmful``) gets weight 0 and the stage
is skipped; otherwise (``inconclusive``: the queries showed neither a gain nor harm) the file says
so and the default blend keeps serving, since a tie on queries the first stage already answers
says nothing the default does not already assume.

Judged queries, where a user has some (``rrs calibrate --judgments DIR``; ``./run demo`` passes the
sample's), join the pseudo-queries in the same cross-fitted choice, except those the model was
trained on (``training.json``'s fingerprints, as ``rrs eval --tune-rerank`` leaves out): they are
real questions in the user's words, which the pseudo-queries only stand in for.

The result is cached per model and concrete index under ``RRS_HOME/calibrations``
(``calibration_path``): a retrained model or a reindex has none until ``rrs calibrate`` runs.

    best, facts = calibrate(pipeline, es, "docs", count=200, candidates=50, default=default_blend(settings))
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Container
from datetime import UTC, datetime
from pathlib import Path

from rrsearch.core.errors import RerankError
from rrsearch.evaluation.dataset import Dataset
from rrsearch.service.blend import TRAINING_FACTS, BlendConfig, write_calibration_file

MARGIN = 0.005  # the most nDCG@10 a confirmed corpus blend may cost on the pseudo-queries
# Non-inferiority suffices up to this weight. It is the blind default's weight of before
# (bench/README.md: every corpus calibration at or under it held within 0.005 on the real test
# queries of SciFact, CISI, CACM and the demo's held-out set); the blind default is now lighter,
# since it has no confirmation at all on the index it serves.
HARMLESS_UP_TO = 0.1
MIN_QUERY_WORDS = 3  # shorter titles or sentences ask for nothing in particular
MAX_QUERY_WORDS = 30


def first_sentence(text: str) -> str | None:
    """The first sentence of ``text`` with at least ``MIN_QUERY_WORDS`` words, capped (pure)."""
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        words = sentence.split()
        if len(words) >= MIN_QUERY_WORDS:
            return " ".join(words[:MAX_QUERY_WORDS])
    return None


class Everything:
    """Stands for "every document" where a model trained on titles did not record which."""

    def __contains__(self, _item: object) -> bool:
        return True


def trained_titles(model_folder: str | None, alias: str) -> frozenset[str] | Everything:
    """The documents of ``alias`` whose titles the model in ``model_folder`` was trained to find:
    its ``training.json``'s ``mining.title_query_docs`` when it trained over that alias;
    :class:`Everything` when it made title queries there without recording which; none for
    another index or any other model."""
    if not model_folder:
        return frozenset()
    try:
        facts = json.loads((Path(model_folder) / TRAINING_FACTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    if (facts.get("data") or {}).get("alias") != alias:
        return frozenset()
    mining = facts.get("mining") or {}
    if "title_query_docs" in mining:
        return frozenset(mining["title_query_docs"])
    return Everything() if mining.get("title_queries_made") else frozenset()


def pseudo_query(source: dict, *, title_trained_on: bool = False) -> tuple[str, str] | None:
    """(kind, query) for one document's first passage: its title (unless the model was trained
    on that title), else its first sentence (pure)."""
    title = " ".join((source.get("title") or "").split())
    if len(title.split()) >= MIN_QUERY_WORDS and not title_trained_on:
        return "title", title
    sentence = first_sentence(source.get("text") or "")
    return ("sentence", sentence) if sentence else None


def pseudo_judgments(
    es, alias: str, *, count: int, seed: int = 13, titles_trained_on: Container[str] = frozenset()
) -> Dataset:
    """Up to ``count`` pseudo-queries, each judged by the document it came from (seeded draw
    over the documents' first passages, sorted ids first so the draw does not depend on the
    order the node returned them in); a document in ``titles_trained_on`` asks with its first
    sentence."""
    from elasticsearch import helpers

    firsts: dict[str, tuple[int, dict]] = {}
    query = {"query": {"match_all": {}}, "_source": ["parent_id", "chunk", "title", "text"]}
    for hit in helpers.scan(es, index=alias, query=query, size=1000):
        source = hit["_source"]
        parent, chunk = source.get("parent_id") or hit["_id"], int(source.get("chunk") or 0)
        if parent not in firsts or chunk < firsts[parent][0]:
            firsts[parent] = (chunk, source)
    made = {
        doc: q
        for doc in sorted(firsts)
        if (q := pseudo_query(firsts[doc][1], title_trained_on=doc in titles_trained_on)) is not None
    }
    drawn = random.Random(seed).sample(sorted(made), min(count, len(made)))
    queries = {f"{made[doc][0]}:{doc}": made[doc][1] for doc in sorted(drawn)}
    qrels = {qid: {qid.split(":", 1)[1]: 1} for qid in queries}
    return Dataset(root=Path(alias), corpus_path=Path(alias), queries=queries, qrels=qrels, split="pseudo")


JUDGED = "judged"  # the kind (id prefix) of a judged query among the pseudo-queries


def with_judged(pseudo: Dataset, judged: Dataset, trained: Container[str] = frozenset()) -> Dataset:
    """``pseudo`` plus ``judged``'s queries that have a relevant document and are not in
    ``trained`` (the ids the model was trained on), as ``judged:<id>`` so that no id meets a
    pseudo-query's (pure)."""
    kept = {
        qid: text
        for qid, text in judged.queries.items()
        if qid not in trained and any(grade > 0 for grade in judged.qrels.get(qid, {}).values())
    }
    return Dataset(
        root=pseudo.root,
        corpus_path=pseudo.corpus_path,
        queries={**pseudo.queries, **{f"{JUDGED}:{qid}": text for qid, text in kept.items()}},
        qrels={**pseudo.qrels, **{f"{JUDGED}:{qid}": judged.qrels[qid] for qid in kept}},
        split=f"pseudo+{judged.split}",
    )


def _judged_part(folder: str | None, judged: Dataset) -> tuple[frozenset[str], dict]:
    """The judged queries to leave out (the model's own training queries) and what the facts say of them."""
    from rrsearch.evaluation.offline import trained_on

    left_out = trained_on(folder, judged) if folder else None
    ids = left_out.ids if left_out else frozenset()
    return ids, {
        "source": str(judged.root),
        "split": judged.split,
        "left_out_trained": len(ids),
        "left_out_why": left_out.reason if left_out else "a remote reranker: which queries trained it is unknown",
    }


def calibrate(
    pipeline,
    es,
    alias: str,
    *,
    count: int,
    candidates: int,
    seed: int = 13,
    progress: bool = False,
    default: BlendConfig,
    judged: Dataset | None = None,
) -> tuple[BlendConfig, dict]:
    """Choose and confirm the blend on ``count`` pseudo-queries, plus ``judged``'s queries the
    model was not trained on, and say what it means when none is kept against ``default`` (the
    blend served meanwhile; see the module's docstring)."""
    from tqdm import tqdm

    from rrsearch.evaluation.tuning import choose, collect, fusion_of

    folder = getattr(pipeline.reranker, "folder", None)
    titles_trained_on = trained_titles(folder, alias)
    dataset = pseudo_judgments(es, alias, count=count, seed=seed, titles_trained_on=titles_trained_on)
    if len(dataset.queries) < 20:
        raise RerankError(
            f"index {alias!r} gives only {len(dataset.queries)} pseudo-queries (titles or first sentences of "
            f"{MIN_QUERY_WORDS}+ words); a corpus calibration needs at least 20: the default blend serves"
        )
    judged_facts = None
    if judged is not None:
        trained, judged_facts = _judged_part(folder, judged)
        dataset = with_judged(dataset, judged, trained)
    started = time.perf_counter()
    with tqdm(total=len(dataset.queries), desc="pseudo-queries", unit="q", disable=not progress) as bar:
        collected = collect(pipeline, dataset, candidates=candidates, index=alias, progress=bar)
    kinds = [qid.split(":", 1)[0] for qid in dataset.queries]
    chosen_on = {
        "split": "pseudo-queries from the index (a document's title, else its first sentence, asks for it)"
        + (" and judged queries the model was not trained on" if judged_facts else ""),
        "titles_trained_on": "all" if isinstance(titles_trained_on, Everything) else len(titles_trained_on),
        "queries": len(dataset.queries),
        "titles": kinds.count("title"),
        "sentences": kinds.count("sentence"),
        **({"judged": {"queries": kinds.count(JUDGED), **judged_facts}} if judged_facts else {}),
        "candidates": candidates,
        "fusion": fusion_of(pipeline, alias),
        "margin": MARGIN,
        "harmless_up_to": HARMLESS_UP_TO,
        "seconds": round(time.perf_counter() - started, 1),
    }
    best, facts = choose(
        dataset.qrels, collected, chosen_on, harmless_up_to=HARMLESS_UP_TO, margin=MARGIN, default=default
    )
    facts["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    return best, facts


def save(path: Path, best: BlendConfig, facts: dict, *, model: str, index_version: str) -> Path:
    """Write the calibration where the service looks for it (``calibration_path``)."""
    return write_calibration_file(path, best, {**facts, "model": model, "index_version": index_version})
