"""What the cross-encoder and the bi-encoder trainings share: one shape of training run.

Both fine-tune with a sentence-transformers trainer the same way: a seeded held-out slice of
the judged queries (never trained on, title queries only ever train), scored before training,
every few steps (the best checkpoint is kept, early stopping) and after; bf16/fp16 on CUDA;
a model folder that loads by path. This module holds that shape -- the settings both read
(:class:`FitConfig`), the facts both report (:class:`FitResult`), the trainer's arguments and
:func:`fit`, the run itself -- so that ``training/reranker.py`` and ``training/encoder.py``
keep only what is their own, a :class:`Recipe`: the model, its rows, loss and evaluator.

Example (what ``train_reranker`` does)::

    result = fit(RerankerRecipe(TrainConfig(epochs=1)), mined, Path("models/my-reranker"), extra_train=titles)
    result.steps, result.best_step, result.before["ndcg@10"], result.after["ndcg@10"]
"""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from rrsearch.core.errors import TrainingError
from rrsearch.training.mining import DEFAULTS, MinedQuery

EVALUATOR_NAME = "heldout"
AT_K = 10
CHECKPOINTS = ".checkpoints"  # inside the output folder while training; removed after


@dataclass(frozen=True)
class FitConfig:
    """The settings every training run has (each model's config adds its own; the card records all)."""

    SETTINGS_PREFIX: ClassVar[str] = ""  # a model's own ``train_<prefix>*`` settings win over ``train_*``

    base_model: str = DEFAULTS.train_base_model
    epochs: float = DEFAULTS.train_epochs
    batch_size: int = DEFAULTS.train_batch_size
    learning_rate: float = DEFAULTS.train_learning_rate
    warmup_ratio: float = DEFAULTS.train_warmup_ratio
    eval_fraction: float = DEFAULTS.train_eval_fraction
    eval_depth: int = DEFAULTS.train_eval_depth
    eval_steps: int | None = DEFAULTS.train_eval_steps
    early_stopping_patience: int = DEFAULTS.train_early_stopping_patience
    seed: int = DEFAULTS.train_seed
    device: str | None = None

    @classmethod
    def from_settings(cls, settings, **overrides):
        """Each field from ``train_<prefix><field>``, else ``train_<field>``; then the model's own
        :meth:`settings_values`, the configured device, and any non-None override on top."""
        from rrsearch.core.settings import TrainingSettings

        group = settings.group(TrainingSettings, "train_")
        values = {}
        for name in (f.name for f in fields(cls)):
            for key in (f"{cls.SETTINGS_PREFIX}{name}", name):
                if key in group:
                    values[name] = group[key]
                    break
        values.update(cls.settings_values(group, settings))
        values["device"] = settings.device
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @classmethod
    def settings_values(cls, group: dict, settings) -> dict:
        """Values a model takes from settings not named after its fields (none here)."""
        return {}


@dataclass(kw_only=True)
class FitResult:
    """What a run produced, either model; the CLI prints it and the model card records it."""

    output_dir: str
    config: dict
    device: str
    precision: str
    train_queries: int
    heldout_queries: int
    title_queries: int
    train_rows: int
    steps: int
    seconds: float
    stopped_early: bool
    best_step: int | None
    before: dict[str, float] = field(default_factory=dict)  # held-out, base model
    after: dict[str, float] = field(default_factory=dict)  # held-out, trained model
    eval_history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --- pure helpers -----------------------------------------------------------------------


def split_heldout(
    queries: Sequence[MinedQuery], fraction: float, seed: int
) -> tuple[list[MinedQuery], list[MinedQuery]]:
    """A seeded split: ``round(fraction * n)`` queries held out (at least one when
    ``fraction`` > 0 and there are two or more), the rest for training, input order kept."""
    n = len(queries)
    if n == 0:
        raise TrainingError("no training queries left after mining")
    held = 0 if fraction <= 0 or n < 2 else min(n - 1, max(1, round(fraction * n)))
    chosen = set(random.Random(seed).sample(range(n), held))
    train = [q for i, q in enumerate(queries) if i not in chosen]
    heldout = [q for i, q in enumerate(queries) if i in chosen]
    return train, heldout


def listwise_rows(queries: Sequence[MinedQuery], negatives: int, seed: int) -> dict[str, list]:
    """(query, positive, negative_1..n) columns for multiple-negatives ranking, one row per
    positive. A query with fewer than ``n`` hard negatives is topped up with other
    queries' negatives (seeded), since every row needs the same columns."""
    rng = random.Random(seed)
    pool = [text for query in queries for text in query.negatives] or [p for q in queries for p in q.positives]
    rows: dict[str, list] = {"query": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(negatives)}}
    for query in queries:
        own = list(query.negatives[:negatives])
        banned = set(query.positives) | set(own)
        while len(own) < negatives:
            candidate = rng.choice(pool)
            if candidate not in banned or len(pool) <= len(banned):
                own.append(candidate)
        for positive in query.positives:
            rows["query"].append(query.query)
            rows["positive"].append(positive)
            for i, text in enumerate(own):
                rows[f"negative_{i + 1}"].append(text)
    return rows


def default_eval_steps(rows: int, batch_size: int, epochs: float, per_epoch: int = 4) -> int:
    """About ``per_epoch`` evaluations per epoch, at least one step apart."""
    steps_per_epoch = max(1, math.ceil(rows / batch_size))
    return max(1, min(steps_per_epoch, math.ceil(steps_per_epoch / per_epoch)))


def strip_prefix(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """``{"heldout_ndcg@10": x}`` -> ``{"ndcg@10": x}`` (other keys dropped)."""
    return {key[len(prefix) :]: round(float(value), 4) for key, value in metrics.items() if key.startswith(prefix)}


def precision_for(device: str) -> str:
    """Mixed precision on CUDA: bf16 where the GPU supports it, else fp16; fp32 on CPU."""
    if not device.startswith("cuda"):
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def step_of(checkpoint: str | None) -> int | None:
    """``.../checkpoint-120`` -> 120."""
    if not checkpoint:
        return None
    tail = Path(checkpoint).name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


# --- the run ----------------------------------------------------------------------------


@dataclass
class FitPlan:
    """Where and on what a run trains: the device and its precision, the judged queries split
    (held-out ones never train) and the title queries added to the training side."""

    device: str
    precision: str
    train: list[MinedQuery]  # the judged training queries, then the title queries
    heldout: list[MinedQuery]
    judged_train: int
    title_queries: int


def plan_fit(mined: Sequence[MinedQuery], config: FitConfig, *, extra_train: Sequence[MinedQuery] = ()) -> FitPlan:
    """The device, and the held-out split of ``mined``; ``extra_train`` (title queries) only ever trains."""
    from rrsearch.core.encoders import pick_device

    device = pick_device(config.device)
    train, heldout = split_heldout(list(mined), config.eval_fraction, config.seed)
    return FitPlan(device, precision_for(device), [*train, *extra_train], heldout, len(train), len(extra_train))


# What a recipe's :meth:`Recipe.result` makes, and so what :func:`fit` returns.
ResultT = TypeVar("ResultT", bound="FitResult")


class Recipe(Generic[ResultT]):
    """A model's own parts of a training run, which :func:`fit` calls in this order: :meth:`rows`
    (from the training queries), :meth:`load` (the base model), :meth:`evaluator` (for the
    held-out queries), :meth:`loss`, :meth:`describe` (the log line before training), and
    :meth:`result` (the facts, with the held-out figures). One recipe serves one run: it may
    keep what a later part needs (the number of negatives, of held-out queries)."""

    prefix = f"{EVALUATOR_NAME}_"  # the evaluator's figure names start with it
    batch_sampler = "batch_sampler"

    def __init__(self, config: FitConfig) -> None:
        self.config = config

    def trainer(self) -> tuple[type, type]:
        """sentence-transformers' trainer and training-arguments classes for this model."""
        raise NotImplementedError

    def rows(self, train: list[MinedQuery]) -> dict[str, list]:
        """The training rows (a ``query`` column first); raises ``TrainingError`` when there are none."""
        raise NotImplementedError

    def load(self, device: str):
        raise NotImplementedError

    def evaluator(self, heldout: list[MinedQuery]) -> tuple[Any, str]:
        """The held-out evaluator and a line saying what it scores; (None, "") when nothing is held out."""
        raise NotImplementedError

    def loss(self, model, rows: dict[str, list]):
        raise NotImplementedError

    def describe(self, plan: FitPlan, rows: dict[str, list]) -> str:
        raise NotImplementedError

    def result(self, facts: dict, before: dict[str, float], after: dict[str, float]) -> ResultT:
        raise NotImplementedError


def fit(
    recipe: Recipe[ResultT],
    mined: Sequence[MinedQuery],
    output_dir: Path,
    *,
    extra_train: Sequence[MinedQuery] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> ResultT:
    """Train the recipe's model on ``mined`` (held-out slice aside) with sentence-transformers'
    trainer, keep the best checkpoint by held-out nDCG@10 (when anything is held out), save a
    folder that loads by path to ``output_dir`` and drop the checkpoints.

    ``extra_train`` (title queries) only ever trains: the held-out slice comes from ``mined``."""
    from datasets import Dataset

    config, output_dir = recipe.config, Path(output_dir)
    plan = plan_fit(mined, config, extra_train=extra_train)
    rows = recipe.rows(plan.train)
    model = recipe.load(plan.device)
    evaluator, scoring = recipe.evaluator(plan.heldout)
    if evaluator is not None:
        log(scoring)
    before = held_out_scores(evaluator, model, recipe.prefix)
    log(recipe.describe(plan, rows))
    n_rows = len(rows["query"])
    key = f"eval_{recipe.prefix}ndcg@{AT_K}"
    evaluating = evaluator is not None
    trainer_class, arguments_class = recipe.trainer()
    arguments = training_arguments(
        config,
        n_rows=n_rows,
        output_dir=output_dir,
        metric=key if evaluating else None,
        precision=plan.precision,
        device=plan.device,
        progress=progress,
        batch_sampler=recipe.batch_sampler,
    )
    trainer = trainer_class(
        model=model,
        args=arguments_class(**arguments),
        train_dataset=Dataset.from_dict(rows),
        loss=recipe.loss(model, rows),
        evaluator=evaluator,
        callbacks=early_stopping(config, evaluating),
    )
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    state = trainer.state
    after = held_out_scores(evaluator, trainer.model, recipe.prefix)
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(output_dir))
    shutil.rmtree(output_dir / CHECKPOINTS, ignore_errors=True)
    facts = {
        "output_dir": str(output_dir),
        "config": asdict(config),
        "device": plan.device,
        "precision": plan.precision,
        "train_queries": plan.judged_train,
        "title_queries": plan.title_queries,
        "train_rows": n_rows,
        "steps": int(output.global_step),
        "seconds": round(seconds, 1),
        "stopped_early": int(output.global_step) < state.max_steps,
        "best_step": step_of(state.best_model_checkpoint),
        "eval_history": [
            {"step": entry["step"], f"ndcg@{AT_K}": round(entry[key], 4)} for entry in state.log_history if key in entry
        ],
    }
    return recipe.result(facts, before, after)


def held_out_scores(evaluator, model, prefix: str) -> dict[str, float]:
    """The evaluator's figures for ``model`` less the ``prefix`` of their names; none without one."""
    return strip_prefix(evaluator(model), prefix) if evaluator is not None else {}


def training_arguments(
    config: FitConfig,
    *,
    n_rows: int,
    output_dir: Path,
    metric: str | None,
    precision: str | None,
    device: str,
    progress: bool,
    batch_sampler: str,
) -> dict:
    """The trainer arguments both trainers share (``metric``: the held-out measure that picks the
    best checkpoint, None when nothing is held out)."""
    evaluating = metric is not None
    eval_steps = config.eval_steps or default_eval_steps(n_rows, config.batch_size, config.epochs)
    return dict(
        output_dir=str(output_dir / CHECKPOINTS),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        **_warmup(config.warmup_ratio),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        seed=config.seed,
        data_seed=config.seed,
        eval_strategy="steps" if evaluating else "no",
        eval_steps=eval_steps if evaluating else None,
        save_strategy="steps" if evaluating else "no",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=evaluating,
        metric_for_best_model=metric,
        greater_is_better=True,
        logging_steps=max(1, eval_steps // 2),
        disable_tqdm=not progress,
        report_to="none",
        dataloader_num_workers=0,
        use_cpu=device == "cpu",
        batch_sampler=batch_sampler,
    )


def early_stopping(config: FitConfig, evaluating: bool) -> list:
    """The early-stopping callback when held-out queries are scored and patience is set."""
    from transformers import EarlyStoppingCallback

    if evaluating and config.early_stopping_patience > 0:
        return [EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)]
    return []


def _warmup(ratio: float) -> dict:
    """Transformers 5 takes the warmup share as a float ``warmup_steps``; 4 as ``warmup_ratio``."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"warmup_steps": float(ratio)}
    return {"warmup_ratio": ratio}
