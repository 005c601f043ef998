"""The cross-encoder's own parts of a training run, its :class:`RerankerRecipe` (the run
itself: ``training/fit.py``).

The held-out queries are scored by ``CrossEncoderRerankingEvaluator`` over their first-stage
lists, so "before" and "after" mean: the base model and the trained one reranking what hybrid
retrieval found. Rows are (query, passage, label) pairs for binary cross-entropy, or listwise
rows for multiple-negatives ranking; the model is a one-label ``CrossEncoder``.

Example::

    config = TrainConfig(base_model="all-MiniLM-L6-v2", epochs=1)
    result = train_reranker(mined, config, Path("models/my-reranker"))
    result.after["ndcg@10"], result.before["ndcg@10"]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rrsearch.core.errors import TrainingError
from rrsearch.training.fit import AT_K, EVALUATOR_NAME, FitConfig, FitPlan, FitResult, Recipe, fit, listwise_rows
from rrsearch.training.mining import DEFAULTS, MinedQuery


@dataclass(frozen=True)
class TrainConfig(FitConfig):
    """Everything that shapes one reranker training run (recorded in the model card)."""

    loss: Literal["bce", "mnrl"] = DEFAULTS.train_loss
    max_length: int = DEFAULTS.train_max_length
    recipe: str = "quick"  # RRS_TRAIN_RECIPE as resolved by with_recipe (the card says which)


def with_recipe(settings):
    """``settings`` with ``RRS_TRAIN_RECIPE`` applied: ``auto`` resolved by the device (strong on
    a GPU, where it takes minutes; quick on CPU, where strong takes hours), and the strong recipe's
    values put in every ``train_*`` setting that neither the environment nor an option set."""
    from rrsearch.core.encoders import pick_device
    from rrsearch.core.settings import STRONG_RERANKER_RECIPE

    name = settings.train_recipe
    if name == "auto":
        name = "strong" if pick_device(settings.device).startswith("cuda") else "quick"
    update: dict[str, object] = {"train_recipe": name}
    if name == "strong":
        chosen = settings.model_fields_set
        update |= {
            f"train_{key}": value for key, value in STRONG_RERANKER_RECIPE.items() if f"train_{key}" not in chosen
        }
    return settings.model_copy(update=update)


def with_blend_heldout(settings, *, tuned_on_heldout: bool):
    """``settings`` holding out ``BLEND_HELDOUT_FRACTION`` of the judged queries when the blend is
    chosen and confirmed on them (``tuned_on_heldout``) and nobody set ``train_eval_fraction``: a
    confirming half of 40 queries could not confirm the quick recipe's gain on SciFact, one of 81 did."""
    from rrsearch.core.settings import BLEND_HELDOUT_FRACTION

    if not tuned_on_heldout or "train_eval_fraction" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"train_eval_fraction": BLEND_HELDOUT_FRACTION})


@dataclass(kw_only=True)
class TrainResult(FitResult):
    """A reranker run's facts; its held-out figures also have the first stage's own order."""

    first_stage: dict[str, float] = field(default_factory=dict)  # held-out, hybrid order


def pair_rows(queries: Sequence[MinedQuery]) -> dict[str, list]:
    """(query, passage, label) columns for binary cross-entropy: 1 = positive, 0 = negative."""
    rows: dict[str, list] = {"query": [], "passage": [], "label": []}
    for query in queries:
        for text, label in [*((p, 1.0) for p in query.positives), *((n, 0.0) for n in query.negatives)]:
            rows["query"].append(query.query)
            rows["passage"].append(text)
            rows["label"].append(label)
    return rows


def heldout_samples(queries: Sequence[MinedQuery], depth: int) -> list[dict]:
    """Evaluator samples: the first-stage list (top ``depth``) to rerank, positives marked;
    a query the first stage found nothing for is scored on its negatives instead."""
    samples = []
    for query in queries:
        if query.ranked:
            samples.append({"query": query.query, "positive": query.positives, "documents": query.ranked[:depth]})
        elif query.negatives:
            samples.append({"query": query.query, "positive": query.positives, "negative": query.negatives})
    return samples


def load_base_model(name_or_path: str, *, max_length: int, seed: int, device: str):
    """The base as a one-label ``CrossEncoder``; a plain BERT-like checkpoint (such as the
    packaged all-MiniLM-L6-v2) gets a fresh, seeded classification head."""
    from sentence_transformers import CrossEncoder
    from transformers import set_seed

    from rrsearch.core.encoders import resolve_model_path

    set_seed(seed)  # the new head's initial weights
    path = resolve_model_path(name_or_path)
    try:
        model = CrossEncoder(path, num_labels=1, max_length=max_length, device=device)
    except Exception as exc:
        hint = "" if Path(path).exists() else " (not a local folder: a hub name needs network access or a cached copy)"
        raise TrainingError(f"cannot load base model {name_or_path!r}{hint}: {exc}") from exc
    if model.num_labels != 1:
        raise TrainingError(f"base model {name_or_path!r} has {model.num_labels} labels; a reranker needs 1")
    return model


class RerankerRecipe(Recipe[TrainResult]):
    """A cross-encoder's parts of :func:`training.fit.fit`: pairs (bce) or listwise rows (mnrl),
    a one-label ``CrossEncoder``, the reranking evaluator over the first-stage lists."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.config: TrainConfig = config
        self.negatives = 0  # the most hard negatives a training query has (mnrl's column count)
        self.samples: list[dict] = []
        self.batch_sampler = "no_duplicates" if config.loss == "mnrl" else "batch_sampler"

    def trainer(self) -> tuple[type, type]:
        from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments

        return CrossEncoderTrainer, CrossEncoderTrainingArguments

    def rows(self, train: list[MinedQuery]) -> dict[str, list]:
        config = self.config
        if not any(q.negatives for q in train) and config.loss == "bce":
            raise TrainingError("no negatives for any training query: raise --negatives or widen the rank range")
        self.negatives = max((len(q.negatives) for q in train), default=0)
        if config.loss == "mnrl":
            return listwise_rows(train, max(1, min(self.negatives, 16)), config.seed)
        return pair_rows(train)

    def load(self, device: str):
        config = self.config
        return load_base_model(config.base_model, max_length=config.max_length, seed=config.seed, device=device)

    def evaluator(self, heldout: list[MinedQuery]) -> tuple[Any, str]:
        from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

        depth = self.config.eval_depth
        self.samples = samples = heldout_samples(heldout, depth)
        if not samples:
            return None, ""
        evaluator = CrossEncoderRerankingEvaluator(
            samples, at_k=AT_K, name=EVALUATOR_NAME, batch_size=64, write_csv=False
        )
        return (
            evaluator,
            f"held-out: {len(samples)} queries, first-stage lists of up to {depth}; scoring the base model",
        )

    def loss(self, model, rows: dict[str, list]):
        import torch
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, MultipleNegativesRankingLoss

        if self.config.loss == "bce":
            positives = sum(1 for label in rows["label"] if label > 0)
            ratio = max(1.0, (len(rows["label"]) - positives) / max(positives, 1))
            return BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(ratio))
        return MultipleNegativesRankingLoss(model, num_negatives=self.negatives)

    def describe(self, plan: FitPlan, rows: dict[str, list]) -> str:
        return (
            f"training on {len(plan.train)} queries ({plan.title_queries} of them from titles; {len(rows['query'])} "
            f"rows, loss {self.config.loss}) on {plan.device} ({plan.precision})"
        )

    def result(self, facts: dict, before: dict[str, float], after: dict[str, float]) -> TrainResult:
        """The evaluator's ``base_*`` figures are the first stage's own order."""
        return TrainResult(
            **facts,
            heldout_queries=len(self.samples),
            first_stage={k.removeprefix("base_"): v for k, v in before.items() if k.startswith("base_")},
            before={k: v for k, v in before.items() if not k.startswith("base_")},
            after={k: v for k, v in after.items() if not k.startswith("base_")},
        )


def train_reranker(mined: Sequence[MinedQuery], config: TrainConfig, output_dir: Path, **options) -> TrainResult:
    """Train, keep the best held-out checkpoint, save a ``CrossEncoder(path)`` folder to ``output_dir``;
    ``options``: :func:`training.fit.fit`'s (``extra_train``, ``progress``, ``log``)."""
    return fit(RerankerRecipe(config), mined, output_dir, **options)
