"""``rrs adapt DATASET --index ALIAS --output DIR``: learn from the user's data in one command.

    before  (test split: BM25, kNN, hybrid, what is served, with the models configured now)
      -> train-encoder   (DIR/encoder: the bi-encoder on the train judgments + title queries)
      -> reindex         (a new index version behind ALIAS, embedded by DIR/encoder)
      -> train-reranker  (DIR/reranker: hard negatives mined from the new index, cross-fitted blend)
      -> after           (test split again, with both new models)

It ends with one table, each stage before and after, and what is now served. Each step is
recorded in ``DIR/adapt.json`` with a key made of its inputs (the dataset's files, the
options that shape it, the key of the step it builds on) and what it produced; running the
command again skips a step whose key is unchanged and whose output is still there (the model
folder, the index behind the alias), so an interrupted run resumes at the step it stopped in
and a finished one only prints its table. It is the learning loop, so it lives with training;
the reindex step is ingest's own (``ingest/pipeline.py``), and the click command is in
``training/cli.py``.

Example::

    outcome = run_adapt(Path("data/scifact"), Settings(), alias="scifact", output=Path("adapt/scifact"),
                        encoder_overrides={}, reranker_overrides={}, folds=2)
    print(render_table(outcome))
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "adapt.json"
STAGES = (
    ("bm25", False, "BM25"),
    ("knn", False, "kNN"),
    ("hybrid_rrf", False, "hybrid (RRF)"),
    ("hybrid_rrf", True, "served (hybrid + reranker blend)"),
)
STEPS = ("before", "train-encoder", "reindex", "train-reranker", "after")


def step_key(inputs: dict) -> str:
    """A step's key: its inputs as canonical JSON, hashed (pure)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:20]


def data_fingerprint(root: Path) -> str:
    """The dataset's queries, train and test judgments and corpus file, by content."""
    from rrsearch.evaluation.dataset import corpus_file, dataset_fingerprint

    digest = hashlib.sha256(dataset_fingerprint(root).encode())
    for path in (root / "qrels" / "train.tsv", root / "qrels" / "test.tsv", corpus_file(root)):
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:20]


@dataclass
class AdaptState:
    """``adapt.json``: per step, its key, what it produced and how long it took."""

    path: Path
    steps: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> AdaptState:
        try:
            return cls(path, json.loads(path.read_text(encoding="utf-8")).get("steps", {}))
        except (OSError, ValueError):
            return cls(path)

    def finished(self, name: str, key: str) -> dict | None:
        entry = self.steps.get(name)
        return entry if entry and entry.get("key") == key else None

    def record(self, name: str, key: str, seconds: float, **facts) -> dict:
        self.steps[name] = {"key": key, "seconds": round(seconds, 1), **facts}
        self.path.write_text(json.dumps({"steps": self.steps}, indent=2, default=str) + "\n", encoding="utf-8")
        return self.steps[name]


def evaluate_stages(settings, dataset, *, alias: str, reranker: str | None, progress: bool) -> dict[str, dict]:
    """nDCG@10 (and recall@100) of each stage on ``dataset`` over ``alias``; the served row
    reranks with ``reranker``'s carried blend, or is the hybrid order when there is none."""
    from tqdm import tqdm

    from rrsearch.evaluation.offline import open_dataset_pipeline
    from rrsearch.evaluation.runner import FusionParams, run_configuration

    candidates = max(settings.default_candidates, 10)
    figures: dict[str, dict] = {}
    with open_dataset_pipeline(
        settings, dataset, index_alias=alias, candidates=candidates, reranker_name=reranker, progress=progress
    ) as offline:
        for config, rerank, label in STAGES:
            if rerank and reranker is None:
                figures[label] = figures["hybrid (RRF)"]
                continue
            with tqdm(total=len(dataset.queries), desc=f"eval {label}", unit="q", disable=not progress) as bar:
                result = run_configuration(
                    offline.pipeline,
                    dataset,
                    config,
                    rerank=rerank,
                    candidates=candidates,
                    index=alias,
                    fusion=FusionParams(rrf_k=settings.rrf_k),
                    progress=bar,
                )
            figures[label] = {k: result["metrics"][k] for k in ("ndcg@10", "recall@100") if k in result["metrics"]}
    return figures


def run_adapt(
    dataset_dir: Path,
    settings,
    *,
    alias: str,
    output: Path,
    encoder_overrides: dict,
    reranker_overrides: dict,
    folds: int,
    export: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """The whole loop (see the module's docstring); returns the state with the table's figures.
    Raises our errors (``DatasetError``, ``MiningError``, ``TrainingError``, ...) for the CLI."""
    from rrsearch.core.es_client import make_client
    from rrsearch.core.indexes import current_index
    from rrsearch.core.model_names import model_label
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.training.encoder import EncoderConfig
    from rrsearch.training.encoder_run import encoder_mining_config, run_encoder_training
    from rrsearch.training.reranker import TrainConfig, with_recipe
    from rrsearch.training.reranker_run import run_training
    from rrsearch.training.run import mining_config_from

    dataset_dir, output = Path(dataset_dir), Path(output)
    output.mkdir(parents=True, exist_ok=True)
    test = load_dataset(dataset_dir, "test")
    load_dataset(dataset_dir, "train")  # both splits must be readable before any long work
    state = AdaptState.load(output / STATE_FILE)
    data = data_fingerprint(dataset_dir)
    encoder_dir, reranker_dir = output / "encoder", output / "reranker"
    es = make_client(settings)

    def retrain(run_command: Callable[..., dict], folder: Path, step_settings, **options) -> dict:
        """A training step writes its model folder from empty: a half-written one is not resumed."""
        shutil.rmtree(folder, ignore_errors=True)
        return run_command(
            dataset_dir, step_settings, alias=alias, output_dir=folder, progress=progress, log=log, **options
        )

    def step(number: int, name: str, inputs: dict, produced_ok: Callable[[dict], bool], work: Callable[[], dict]):
        key = step_key(inputs)
        done = state.finished(name, key)
        if done and produced_ok(done):
            log(f"[{number}/{len(STEPS)}] {name}: done before ({done['seconds']} s), not redone")
            return done, key
        log(f"[{number}/{len(STEPS)}] {name} ...")
        started = time.perf_counter()
        facts = work()
        entry = state.record(name, key, time.perf_counter() - started, **facts)
        log(f"[{number}/{len(STEPS)}] {name}: {entry['seconds']} s")
        return entry, key

    try:
        before, _ = step(
            1,
            "before",
            {"data": data, "alias": alias, "bi_encoder": model_label(settings.bi_encoder)},
            lambda _done: True,
            lambda: {"figures": evaluate_stages(settings, test, alias=alias, reranker=None, progress=progress)},
        )

        encoder_settings = settings.model_copy(update={k: v for k, v in encoder_overrides.items() if v is not None})
        encoder_config, encoder_mining = (
            EncoderConfig.from_settings(encoder_settings),
            encoder_mining_config(encoder_settings),
        )

        def train_encoder_step() -> dict:
            facts = retrain(
                run_encoder_training,
                encoder_dir,
                encoder_settings,
                mining=encoder_mining,
                training=encoder_config,
                export=export,
            )
            return {
                "heldout": {
                    "before": facts["result"]["before"].get("ndcg@10"),
                    "after": facts["result"]["after"].get("ndcg@10"),
                }
            }

        _, encoder_key = step(
            2,
            "train-encoder",
            {
                "data": data,
                "alias": alias,
                "before": before["key"],
                "config": asdict(encoder_config),
                "mining": asdict(encoder_mining),
                "export": export,
            },
            lambda _done: (encoder_dir / "training.json").is_file(),
            train_encoder_step,
        )

        served = settings.model_copy(update={"bi_encoder": str(encoder_dir)})

        def reindex_step() -> dict:
            from rrsearch.evaluation.dataset import corpus_file
            from rrsearch.ingest.pipeline import run_ingest

            report = run_ingest(
                [corpus_file(dataset_dir)], served, alias=alias, reindex=True, progress=progress, es=es, log=log
            )
            return {"index": current_index(es, alias), "documents": report.documents}

        reindexed, reindex_key = step(
            3,
            "reindex",
            {"data": data, "alias": alias, "encoder": encoder_key},
            lambda done: current_index(es, alias) == done.get("index"),
            reindex_step,
        )

        reranker_settings = with_recipe(
            served.model_copy(update={k: v for k, v in reranker_overrides.items() if v is not None})
        )
        training, mining = TrainConfig.from_settings(reranker_settings), mining_config_from(reranker_settings)

        def train_reranker_step() -> dict:
            facts = retrain(
                run_training, reranker_dir, reranker_settings, mining=mining, training=training, cross_fit=folds
            )
            blend = json.loads((reranker_dir / "rrs_rerank.json").read_text(encoding="utf-8"))
            return {
                "steps": facts["result"]["steps"],
                "blend": blend["chosen"],
                "chosen_on": blend["chosen_on"].get("split"),
            }

        reranker, reranker_key = step(
            4,
            "train-reranker",
            {"reindex": reindex_key, "config": asdict(training), "mining": asdict(mining), "folds": folds},
            lambda _done: (reranker_dir / "rrs_rerank.json").is_file(),
            train_reranker_step,
        )

        after, _ = step(
            5,
            "after",
            {"reranker": reranker_key, "index": reindexed["index"]},
            lambda _done: True,
            lambda: {
                "figures": evaluate_stages(served, test, alias=alias, reranker=str(reranker_dir), progress=progress)
            },
        )
    finally:
        es.close()
    return {
        "before": before["figures"],
        "after": after["figures"],
        "steps": state.steps,
        "served": {
            "bi_encoder": str(encoder_dir),
            "cross_encoder": str(reranker_dir),
            "blend": reranker["blend"],
            "index": reindexed["index"],
            "alias": alias,
        },
    }


def render_table(outcome: dict) -> str:
    """The closing table: each stage's nDCG@10 before and after on the test split (pure)."""
    rows = [f"{'stage':<34} {'before':>8} {'after':>8} {'change':>8}"]
    for _config, _rerank, label in STAGES:
        old, new = outcome["before"][label]["ndcg@10"], outcome["after"][label]["ndcg@10"]
        rows.append(f"{label:<34} {old:>8.4f} {new:>8.4f} {new - old:>+8.4f}")
    served, blend = outcome["served"], outcome["served"]["blend"]
    rerank = (
        "not called (weight 0: the blend was not confirmed, hybrid alone is served)"
        if blend["weight"] == 0
        else f"weight {blend['weight']}, depth {blend['depth']}, {blend['normalization']}"
    )
    times = ", ".join(f"{name} {entry['seconds']} s" for name, entry in outcome["steps"].items())
    return "\n".join(
        [
            "nDCG@10 on the test split",
            *rows,
            "",
            f"now served: index {served['index']} behind alias {served['alias']}",
            f"  RRS_BI_ENCODER={served['bi_encoder']}",
            f"  RRS_CROSS_ENCODER={served['cross_encoder']}  (reranker: {rerank})",
            f"step times: {times}",
        ]
    )
