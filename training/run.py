"""The run both training commands share, without click: judgments -> index check -> mining
(hard negatives and title queries, by the service's own first stage) -> the model's trainer
-> the facts its model card and ``training.json`` record. ``training/reranker_run.py``
(``rrs train-reranker``) and ``training/encoder_run.py`` (``rrs train-encoder``) each add
what follows training for their model: the blend, the ONNX export.

``training.json`` names the judgments by name (``data.source``) and fingerprint
(``data.dataset_fingerprint``), and lists a fingerprint of each trained query's id and text
(``data.trained_query_fingerprints``), so that ``rrs eval --tune-rerank`` leaves out exactly
those queries and no namesake of theirs in another collection.

Example::

    run = TrainingRun(Path("data/scifact"), Settings(), "scifact", Path("models/scifact-reranker"))
    gathered = run.gather(mining_config_from(run.settings), eval_depth=30)
    result = train_reranker(gathered.mined, TrainConfig(), run.output_dir, extra_train=gathered.titles)
    facts = run.facts(gathered, result)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rrsearch.core.settings import Settings, TrainingSettings
from rrsearch.training.fit import FitResult, split_heldout
from rrsearch.training.judgments import load_judgments
from rrsearch.training.mining import MiningConfig, check_index, drop_missing, mine

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


def mining_config_from(settings: Settings, prefix: str = "", **overrides) -> MiningConfig:
    """The mining settings, ``train_<prefix><field>`` before ``train_<field>`` (``prefix``
    ``"encoder_"``: the bi-encoder's own rank range, negative and title-query counts), with
    any non-None override on top."""
    group = settings.group(TrainingSettings, "train_")
    group["sampling"] = group["negative_sampling"]  # the setting names what is sampled
    values = {f.name: group.get(f"{prefix}{f.name}", group[f.name]) for f in fields(MiningConfig)}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return MiningConfig(**values)


@dataclass
class Gathered:
    """The judged queries mined over the alias, plus title queries: what a trainer reads."""

    queries: list
    mined: list
    titles: list
    missing: set
    index: str | None
    bi_encoder: object
    mined_total: int
    mining_seconds: float
    mining: MiningConfig
    depth: int = 0  # how deep the first stage was read: mining's rank range or the held-out lists
    collection: str = ""  # the fingerprint of the judgments' collection


def gather_training_data(
    queries,
    settings: Settings,
    *,
    alias: str,
    mining: MiningConfig,
    depth: int,
    es,
    bi_encoder=None,
    skip_missing: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Gathered:
    """Check the alias holds the judged documents, mine hard negatives for each judged query
    ``depth`` deep with the service's own first stage, and make ``mining.title_queries``
    title queries; shared by the reranker and the bi-encoder trainers."""
    from rrsearch.core.indexes import current_index
    from rrsearch.evaluation.offline import open_pipeline

    missing = check_index(es, alias, queries, skip_missing=skip_missing)
    if missing:
        before = len(queries)
        queries = drop_missing(queries, missing)
        log(f"skipped {len(missing)} judged id(s) missing from {alias!r}; {before - len(queries)} query(ies) dropped")
    # Mining runs the service's own first stage over this alias, with the limits opened
    # up to the depth training asks for (they guard the public API, not this job).
    offline = open_pipeline(settings, alias=alias, depth=depth, es=es, bi_encoder=bi_encoder)
    pipeline = offline.pipeline
    started = time.perf_counter()
    mined = mine(pipeline, queries, config=mining, depth=depth, es=es, progress=progress)
    mining_seconds = round(time.perf_counter() - started, 1)
    mined_total = sum(query.mined for query in mined)
    log(f"mined {mined_total} hard negatives for {len(mined)} queries in {mining_seconds} s")
    titles: list = []
    if mining.title_queries:
        from rrsearch.training.pseudo_queries import pseudo_queries

        started = time.perf_counter()
        judged = {doc for query in queries for doc in query.positive_ids}
        titles = pseudo_queries(
            pipeline, es, alias, count=mining.title_queries, config=mining, exclude=judged, progress=progress
        )
        log(f"{len(titles)} title queries from the corpus in {time.perf_counter() - started:.1f} s")
    return Gathered(
        list(queries),
        mined,
        titles,
        missing,
        current_index(es, alias),
        offline.bi_encoder,
        mined_total,
        mining_seconds,
        mining=mining,
        depth=depth,
    )


@dataclass
class TrainingRun:
    """One training command's inputs, either model: the judgments (``source``, a BEIR folder
    or a JSONL file, and its ``split``), the alias they refer to, the model folder to write,
    and how to talk (``es``: the caller's client, None to open one for mining only)."""

    source: Path
    settings: Settings
    alias: str
    output_dir: Path
    split: str = "train"
    skip_missing: bool = False
    progress: bool = True
    es: Elasticsearch | None = None
    log: Callable[[str], None] = print

    def gather(self, mining: MiningConfig, *, eval_depth: int, bi_encoder=None) -> Gathered:
        """Load the judgments, then :func:`gather_training_data` as deep as mining and the
        held-out lists (``eval_depth``) need. Raises ``DatasetError`` (bad judgments) and
        ``MiningError`` (alias missing or empty, judged ids not in it) before any long work."""
        from rrsearch.core.es_client import make_client

        source, settings = Path(self.source), self.settings
        queries = load_judgments(source, self.split)
        collection = collection_fingerprint(source, queries)
        es = self.es or make_client(settings, request_timeout=max(settings.es_request_timeout_s, 60.0))
        try:
            gathered = gather_training_data(
                queries,
                settings,
                alias=self.alias,
                mining=mining,
                depth=max(mining.max_rank, eval_depth),
                es=es,
                bi_encoder=bi_encoder,
                skip_missing=self.skip_missing,
                progress=self.progress,
                log=self.log,
            )
        finally:
            if self.es is None:
                es.close()
        gathered.collection = collection
        return gathered

    def facts(self, gathered: Gathered, result: FitResult) -> dict:
        """What every model card and ``training.json`` record: the model's name, date and base,
        the judgments (and the fingerprints of the trained ones), the mining, the result."""
        source, config = Path(self.source), result.config
        trained, _ = split_heldout(list(gathered.mined), config["eval_fraction"], config["seed"])
        return {
            "name": Path(self.output_dir).name,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "base_model": config["base_model"],
            "data": {
                "source": source.resolve().name,  # by name (and fingerprint), not by a path that may move
                "format": f"BEIR ({self.split} split)" if source.is_dir() else "JSONL",
                "queries": len(gathered.mined),
                "alias": self.alias,
                "index": gathered.index,
                "dropped_missing": len(gathered.missing),
                **trained_queries_facts(gathered.collection, trained),
            },
            "mining": {
                **asdict(gathered.mining),
                "mined_total": gathered.mined_total,
                "seconds": gathered.mining_seconds,
                "depth": gathered.depth,
                "title_queries_made": len(gathered.titles),
                # whose titles the model learnt to find: rrs calibrate asks for them otherwise
                "title_query_docs": sorted(query.id.split(":", 1)[1] for query in gathered.titles),
            },
            "result": result.to_dict(),
        }


def collection_fingerprint(source: Path, queries) -> str:
    """The fingerprint of the collection the judgments come from: a BEIR folder's whole
    ``queries.jsonl`` (every split), or a JSONL file's queries (ids ``file:line``)."""
    from rrsearch.evaluation.dataset import dataset_fingerprint, queries_fingerprint

    if Path(source).is_dir():
        return dataset_fingerprint(source)
    return queries_fingerprint({query.id: query.text for query in queries})


def trained_queries_facts(collection: str, trained) -> dict:
    """What ``training.json`` records of the trained queries (``trained``: items with ``id`` and
    ``query``) for ``rrs eval --tune-rerank`` to leave them out: the collection's fingerprint
    and one fingerprint (id and text) per query -- ids alone name other queries elsewhere."""
    from rrsearch.evaluation.dataset import query_fingerprint

    return {
        "dataset_fingerprint": collection,
        "trained_query_fingerprints": sorted(query_fingerprint(query.id, query.query) for query in trained),
        "fingerprints": "query: sha256 of id + U+001F + text, first 32 hex digits; dataset: sha256 of its "
        "queries' fingerprints in id order (evaluation/dataset.py)",
    }
