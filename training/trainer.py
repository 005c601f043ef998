"""Fine-tune a cross-encoder on mined queries with the sentence-transformers trainer.

What this adds around ``CrossEncoderTrainer``: a seeded held-out slice of the training
queries scored by ``CrossEncoderRerankingEvaluator`` over their first-stage lists (so
"before" and "after" mean: the base model and the trained one reranking what hybrid
retrieval found), evaluation every few steps with the best checkpoint kept and early
stopping, bf16/fp16 on CUDA, and a model folder that ``CrossEncoder(path)`` loads.

Example::

    config = TrainConfig(base_model="all-MiniLM-L6-v2", epochs=1)
    result = train_reranker(mined, config, Path("models/my-reranker"))
    result.after["ndcg@10"], result.before["ndcg@10"]
"""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from rrsearch.core.errors import TrainingError
from rrsearch.training.mining import DEFAULTS, MinedQuery

EVALUATOR_NAME = "heldout"
AT_K = 10


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes one training run (recorded in the model card)."""

    base_model: str = DEFAULTS.train_base_model
    loss: Literal["bce", "mnrl"] = DEFAULTS.train_loss
    epochs: float = DEFAULTS.train_epochs
    batch_size: int = DEFAULTS.train_batch_size
    learning_rate: float = DEFAULTS.train_learning_rate
    warmup_ratio: float = DEFAULTS.train_warmup_ratio
    max_length: int = DEFAULTS.train_max_length
    eval_fraction: float = DEFAULTS.train_eval_fraction
    eval_depth: int = DEFAULTS.train_eval_depth
    eval_steps: int | None = DEFAULTS.train_eval_steps
    early_stopping_patience: int = DEFAULTS.train_early_stopping_patience
    seed: int = DEFAULTS.train_seed
    device: str | None = None

    @classmethod
    def from_settings(cls, settings, **overrides) -> TrainConfig:
        """The ``train_*`` settings, with any non-None override on top."""
        from rrsearch.core.settings import TrainingSettings

        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in settings.group(TrainingSettings, "train_").items() if k in names}
        values["device"] = settings.device
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass
class TrainResult:
    """What a run produced; the CLI prints it and the model card records it."""

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
    first_stage: dict[str, float] = field(default_factory=dict)  # held-out, hybrid order
    before: dict[str, float] = field(default_factory=dict)  # held-out, base model reranking
    after: dict[str, float] = field(default_factory=dict)  # held-out, trained model reranking
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


def pair_rows(queries: Sequence[MinedQuery]) -> dict[str, list]:
    """(query, passage, label) columns for binary cross-entropy: 1 = positive, 0 = negative."""
    rows: dict[str, list] = {"query": [], "passage": [], "label": []}
    for query in queries:
        for text, label in [*((p, 1.0) for p in query.positives), *((n, 0.0) for n in query.negatives)]:
            rows["query"].append(query.query)
            rows["passage"].append(text)
            rows["label"].append(label)
    return rows


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


# --- the model ------------------------------------------------------------------------


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


def _loss(model, config: TrainConfig, rows: dict[str, list], negatives: int):
    import torch
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, MultipleNegativesRankingLoss

    if config.loss == "bce":
        positives = sum(1 for label in rows["label"] if label > 0)
        ratio = max(1.0, (len(rows["label"]) - positives) / max(positives, 1))
        return BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(ratio))
    return MultipleNegativesRankingLoss(model, num_negatives=negatives)


def train_reranker(
    mined: Sequence[MinedQuery],
    config: TrainConfig,
    output_dir: Path,
    *,
    extra_train: Sequence[MinedQuery] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train, keep the best held-out checkpoint, save a loadable folder to ``output_dir``.

    ``extra_train`` (title queries) only ever trains: the held-out slice comes from ``mined``."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    from rrsearch.core.encoders import pick_device

    output_dir = Path(output_dir)
    device = pick_device(config.device)
    precision = precision_for(device)
    train, heldout = split_heldout(list(mined), config.eval_fraction, config.seed)
    judged_train = len(train)
    train = train + list(extra_train)
    if not any(q.negatives for q in train) and config.loss == "bce":
        raise TrainingError("no negatives for any training query: raise --negatives or widen the rank range")
    negatives = max((len(q.negatives) for q in train), default=0)
    if config.loss == "mnrl":
        rows = listwise_rows(train, max(1, min(negatives, 16)), config.seed)
    else:
        rows = pair_rows(train)
    n_rows = len(rows["query"])
    dataset = Dataset.from_dict(rows)

    model = load_base_model(config.base_model, max_length=config.max_length, seed=config.seed, device=device)
    samples = heldout_samples(heldout, config.eval_depth)
    evaluator = (
        CrossEncoderRerankingEvaluator(samples, at_k=AT_K, name=EVALUATOR_NAME, batch_size=64, write_csv=False)
        if samples
        else None
    )
    prefix = f"{EVALUATOR_NAME}_"
    first_stage: dict[str, float] = {}
    before: dict[str, float] = {}
    if evaluator is not None:
        log(f"held-out: {len(samples)} queries, first-stage lists of up to {config.eval_depth}; scoring the base model")
        scores = strip_prefix(evaluator(model), prefix)
        first_stage = {k[len("base_") :]: v for k, v in scores.items() if k.startswith("base_")}
        before = {k: v for k, v in scores.items() if not k.startswith("base_")}

    evaluating = evaluator is not None
    checkpoints = output_dir / ".checkpoints"
    args = CrossEncoderTrainingArguments(
        **training_arguments(
            config,
            n_rows=n_rows,
            output_dir=output_dir,
            precision=precision,
            device=device,
            progress=progress,
            metric=f"eval_{prefix}ndcg@{AT_K}" if evaluating else None,
            batch_sampler="no_duplicates" if config.loss == "mnrl" else "batch_sampler",
        )
    )
    callbacks = early_stopping(config, evaluating)
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=_loss(model, config, rows, negatives),
        evaluator=evaluator,
        callbacks=callbacks,
    )
    log(
        f"training on {len(train)} queries ({len(extra_train)} of them from titles; {n_rows} rows, loss {config.loss}) "
        f"on {device} ({precision})"
    )
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    state = trainer.state
    planned = state.max_steps
    best_step = _step_of(state.best_model_checkpoint)

    after: dict[str, float] = {}
    if evaluator is not None:
        after = {k: v for k, v in strip_prefix(evaluator(trainer.model), prefix).items() if not k.startswith("base_")}
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(output_dir))
    shutil.rmtree(checkpoints, ignore_errors=True)
    history = [
        {"step": entry["step"], "ndcg@10": round(entry[f"eval_{prefix}ndcg@{AT_K}"], 4)}
        for entry in state.log_history
        if f"eval_{prefix}ndcg@{AT_K}" in entry
    ]
    return TrainResult(
        output_dir=str(output_dir),
        config=asdict(config),
        device=device,
        precision=precision,
        train_queries=judged_train,
        title_queries=len(extra_train),
        heldout_queries=len(samples),
        train_rows=n_rows,
        steps=int(output.global_step),
        seconds=round(seconds, 1),
        stopped_early=int(output.global_step) < planned,
        best_step=best_step,
        first_stage=first_stage,
        before=before,
        after=after,
        eval_history=history,
    )


def training_arguments(
    config,
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
        output_dir=str(output_dir / ".checkpoints"),
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


def early_stopping(config, evaluating: bool) -> list:
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


def _step_of(checkpoint: str | None) -> int | None:
    """``.../checkpoint-120`` -> 120."""
    if not checkpoint:
        return None
    tail = Path(checkpoint).name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None
