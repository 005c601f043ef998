"""Fine-tune the bi-encoder on mined queries with sentence-transformers' own trainer.

The retriever learns the user's domain the way the sentence-transformers training guide
teaches: ``MultipleNegativesRankingLoss`` over (query, positive, hard negative) rows, so every
other passage of the batch is a negative too (in-batch negatives), and the hard negative is a
document our hybrid first stage ranked high that is not judged relevant (``training/mining.py``).

What this adds around ``SentenceTransformerTrainer``: a seeded held-out slice of the judged
training queries (never trained on) scored by ``InformationRetrievalEvaluator`` -- retrieval
from a corpus made of every held-out query's first-stage list plus its positives, so the
figure moves when the encoder learns to find the positive among the documents it confused
with it -- before training, every few steps (the best checkpoint is kept) and after.

Example::

    config = EncoderConfig(base_model="all-MiniLM-L6-v2", epochs=1)
    result = train_encoder(mined, config, Path("models/my-encoder"))
    result.before["ndcg@10"], result.after["ndcg@10"]
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rrsearch.core.errors import TrainingError
from rrsearch.core.settings import ModelSettings
from rrsearch.training.mining import DEFAULTS, MinedQuery
from rrsearch.training.trainer import (
    _step_of,
    early_stopping,
    listwise_rows,
    precision_for,
    split_heldout,
    strip_prefix,
    training_arguments,
)

EVALUATOR_NAME = "heldout"
SCORE = "cosine"
AT_K = 10
METRIC = f"{SCORE}_ndcg@{AT_K}"


@dataclass(frozen=True)
class EncoderConfig:
    """Everything that shapes one bi-encoder training run (recorded in the model card)."""

    base_model: str = ModelSettings().bi_encoder
    epochs: float = DEFAULTS.train_encoder_epochs
    batch_size: int = DEFAULTS.train_encoder_batch_size
    learning_rate: float = DEFAULTS.train_encoder_learning_rate
    warmup_ratio: float = DEFAULTS.train_warmup_ratio
    hard_negatives: int = DEFAULTS.train_encoder_negatives  # per row, besides the in-batch ones
    max_seq_length: int | None = DEFAULTS.train_encoder_max_seq_length
    mini_batch: int = DEFAULTS.train_encoder_mini_batch  # texts per forward pass; 0 = whole batch
    eval_fraction: float = DEFAULTS.train_eval_fraction
    eval_depth: int = DEFAULTS.train_eval_depth
    eval_steps: int | None = DEFAULTS.train_eval_steps
    early_stopping_patience: int = DEFAULTS.train_early_stopping_patience
    seed: int = DEFAULTS.train_seed
    device: str | None = None

    @classmethod
    def from_settings(cls, settings, **overrides) -> EncoderConfig:
        """The ``train_encoder_*`` settings (then the shared ``train_*`` ones), the configured
        bi-encoder as the base, and any non-None override on top."""
        from rrsearch.core.settings import TrainingSettings

        group = settings.group(TrainingSettings, "train_")
        values = {f.name: group[f"encoder_{f.name}"] for f in fields(cls) if f"encoder_{f.name}" in group}
        values.update({f.name: group[f.name] for f in fields(cls) if f.name in group and f.name not in values})
        values["base_model"] = group.get("encoder_base_model") or settings.bi_encoder
        values["hard_negatives"] = group["encoder_negatives"]
        values["device"] = settings.device
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass
class EncoderResult:
    """What a run produced; the CLI prints it and the model card records it."""

    output_dir: str
    config: dict
    device: str
    precision: str
    train_queries: int
    heldout_queries: int
    heldout_corpus: int
    title_queries: int
    train_rows: int
    steps: int
    seconds: float
    stopped_early: bool
    best_step: int | None
    before: dict[str, float] = field(default_factory=dict)  # held-out retrieval, base encoder
    after: dict[str, float] = field(default_factory=dict)  # held-out retrieval, trained encoder
    eval_history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def heldout_retrieval(queries: Sequence[MinedQuery], depth: int) -> tuple[dict, dict, dict]:
    """(queries, corpus, relevant) for ``InformationRetrievalEvaluator`` (pure): the corpus is
    every held-out query's first-stage list (top ``depth``) and positives, one id per distinct
    text; a query is relevant to its positives' ids."""
    ids: dict[str, str] = {}

    def doc_id(text: str) -> str:
        return ids.setdefault(text, f"c{len(ids)}")

    questions, relevant = {}, {}
    for query in queries:
        for text in query.ranked[:depth]:
            doc_id(text)
        positives = {doc_id(text) for text in query.positives}
        if positives:
            questions[query.id], relevant[query.id] = query.query, positives
    return questions, {cid: text for text, cid in ids.items()}, relevant


def load_base_encoder(name_or_path: str, *, max_seq_length: int | None, device: str):
    """The base bi-encoder (the packaged name resolves offline)."""
    from sentence_transformers import SentenceTransformer

    from rrsearch.core.encoders import resolve_model_path

    path = resolve_model_path(name_or_path)
    try:
        model = SentenceTransformer(path, device=device)
    except Exception as exc:
        hint = "" if Path(path).exists() else " (not a local folder: a hub name needs network access or a cached copy)"
        raise TrainingError(f"cannot load base bi-encoder {name_or_path!r}{hint}: {exc}") from exc
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def ranking_loss(model, config: EncoderConfig):
    """MultipleNegativesRankingLoss; its cached (GradCache) form when the batch is larger than
    ``mini_batch`` texts: the same in-batch negatives, memory bounded by the mini-batch."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    if config.mini_batch and config.mini_batch < config.batch_size:
        return CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch)
    return MultipleNegativesRankingLoss(model)


def train_encoder(
    mined: Sequence[MinedQuery],
    config: EncoderConfig,
    output_dir: Path,
    *,
    extra_train: Sequence[MinedQuery] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> EncoderResult:
    """Train, keep the best held-out checkpoint, save a ``SentenceTransformer(path)`` folder.

    ``extra_train`` (title queries) only ever trains: the held-out slice comes from ``mined``."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.util import cos_sim
    from transformers import set_seed

    from rrsearch.core.encoders import pick_device

    output_dir = Path(output_dir)
    device = pick_device(config.device)
    precision = precision_for(device)
    train, heldout = split_heldout(list(mined), config.eval_fraction, config.seed)
    judged_train = len(train)
    train = [query for query in [*train, *extra_train] if query.positives]
    if not train:
        raise TrainingError("no training query with a positive passage")
    rows = (
        listwise_rows(train, config.hard_negatives, config.seed)
        if config.hard_negatives
        else {
            "query": [q.query for q in train for _ in q.positives],
            "positive": [p for q in train for p in q.positives],
        }
    )
    n_rows = len(rows["query"])
    set_seed(config.seed)
    model = load_base_encoder(config.base_model, max_seq_length=config.max_seq_length, device=device)

    questions, corpus, relevant = heldout_retrieval(heldout, config.eval_depth)
    evaluator = (
        InformationRetrievalEvaluator(
            questions,
            corpus,
            relevant,
            name=EVALUATOR_NAME,
            score_functions={SCORE: cos_sim},
            ndcg_at_k=[AT_K],
            mrr_at_k=[AT_K],
            accuracy_at_k=[1, AT_K],
            precision_recall_at_k=[AT_K],
            map_at_k=[100],
            batch_size=64,
            write_csv=False,
        )
        if questions
        else None
    )
    prefix = f"{EVALUATOR_NAME}_{SCORE}_"
    before: dict[str, float] = {}
    if evaluator is not None:
        log(
            f"held-out: {len(questions)} queries over {len(corpus)} passages of their first-stage lists; "
            f"scoring the base encoder"
        )
        before = strip_prefix(evaluator(model), prefix)

    evaluating = evaluator is not None
    checkpoints = output_dir / ".checkpoints"
    args = SentenceTransformerTrainingArguments(
        **training_arguments(
            config,
            n_rows=n_rows,
            output_dir=output_dir,
            precision=precision,
            device=device,
            progress=progress,
            metric=f"eval_{prefix}ndcg@{AT_K}" if evaluating else None,
            batch_sampler="no_duplicates",  # a duplicate in the batch would be its own false negative,
        )
    )
    callbacks = early_stopping(config, evaluating)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        loss=ranking_loss(model, config),
        evaluator=evaluator,
        callbacks=callbacks,
    )
    log(
        f"training the bi-encoder on {len(train)} queries ({len(extra_train)} of them from titles; {n_rows} rows, "
        f"{config.hard_negatives} hard negative(s) per row plus in-batch negatives) on {device} ({precision})"
    )
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    state = trainer.state
    after = strip_prefix(evaluator(trainer.model), prefix) if evaluator is not None else {}
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save(str(output_dir))
    shutil.rmtree(checkpoints, ignore_errors=True)
    key = f"eval_{prefix}ndcg@{AT_K}"
    history = [{"step": entry["step"], "ndcg@10": round(entry[key], 4)} for entry in state.log_history if key in entry]
    return EncoderResult(
        output_dir=str(output_dir),
        config=asdict(config),
        device=device,
        precision=precision,
        train_queries=judged_train,
        heldout_queries=len(questions),
        heldout_corpus=len(corpus),
        title_queries=len(extra_train),
        train_rows=n_rows,
        steps=int(output.global_step),
        seconds=round(seconds, 1),
        stopped_early=int(output.global_step) < state.max_steps,
        best_step=_step_of(state.best_model_checkpoint),
        before=before,
        after=after,
        eval_history=history,
    )
