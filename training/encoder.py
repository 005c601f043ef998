"""The bi-encoder's own parts of a training run, its :class:`EncoderRecipe` (the run itself:
``training/fit.py``).

The retriever learns the user's domain the way the sentence-transformers training guide
teaches: ``MultipleNegativesRankingLoss`` over (query, positive, hard negative) rows, so every
other passage of the batch is a negative too (in-batch negatives), and the hard negative is a
document our hybrid first stage ranked high that is not judged relevant (``training/mining.py``).

The held-out queries are scored by ``InformationRetrievalEvaluator`` -- retrieval from a corpus
made of every held-out query's first-stage list plus its positives, so the figure moves when
the encoder learns to find the positive among the documents it confused with it.

Example::

    config = EncoderConfig.from_settings(Settings(), epochs=1)  # RRS_TRAIN_ENCODER_* before RRS_TRAIN_*
    result = train_encoder(mined, config, Path("models/my-encoder"), extra_train=titles)
    result.heldout_corpus, result.before["ndcg@10"], result.after["ndcg@10"]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrsearch.core.errors import TrainingError
from rrsearch.core.settings import ModelSettings
from rrsearch.training.fit import AT_K, EVALUATOR_NAME, FitConfig, FitPlan, FitResult, Recipe, fit, listwise_rows
from rrsearch.training.mining import DEFAULTS, MinedQuery

SCORE = "cosine"
METRIC = f"{SCORE}_ndcg@{AT_K}"


@dataclass(frozen=True)
class EncoderConfig(FitConfig):
    """Everything that shapes one bi-encoder training run (recorded in the model card); its
    ``train_encoder_*`` settings win over the shared ``train_*`` ones."""

    SETTINGS_PREFIX = "encoder_"

    base_model: str = ModelSettings().bi_encoder
    epochs: float = DEFAULTS.train_encoder_epochs
    batch_size: int = DEFAULTS.train_encoder_batch_size
    learning_rate: float = DEFAULTS.train_encoder_learning_rate
    hard_negatives: int = DEFAULTS.train_encoder_negatives  # per row, besides the in-batch ones
    max_seq_length: int | None = DEFAULTS.train_encoder_max_seq_length
    mini_batch: int = DEFAULTS.train_encoder_mini_batch  # texts per forward pass; 0 = whole batch

    @classmethod
    def settings_values(cls, group: dict, settings) -> dict:
        """The configured bi-encoder is the base unless ``train_encoder_base_model`` names one."""
        return {
            "base_model": group.get("encoder_base_model") or settings.bi_encoder,
            "hard_negatives": group["encoder_negatives"],
        }


@dataclass(kw_only=True)
class EncoderResult(FitResult):
    """A bi-encoder run's facts; its held-out figures are retrieval from ``heldout_corpus`` passages."""

    heldout_corpus: int


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


class EncoderRecipe(Recipe[EncoderResult]):
    """A bi-encoder's parts of :func:`training.fit.fit`: (query, positive, hard negatives) rows,
    the base ``SentenceTransformer``, the retrieval evaluator over the held-out lists."""

    prefix = f"{EVALUATOR_NAME}_{SCORE}_"
    batch_sampler = "no_duplicates"  # a duplicate in the batch would be its own false negative

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__(config)
        self.config: EncoderConfig = config
        self.queries = 0  # the training queries with a positive
        self.questions: dict = {}
        self.corpus: dict = {}

    def trainer(self) -> tuple[type, type]:
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

        return SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    def rows(self, train: list[MinedQuery]) -> dict[str, list]:
        """Only queries with a positive train; one row per positive."""
        train = [query for query in train if query.positives]
        self.queries = len(train)
        if not train:
            raise TrainingError("no training query with a positive passage")
        if self.config.hard_negatives:
            return listwise_rows(train, self.config.hard_negatives, self.config.seed)
        return {
            "query": [q.query for q in train for _ in q.positives],
            "positive": [p for q in train for p in q.positives],
        }

    def load(self, device: str):
        from transformers import set_seed

        set_seed(self.config.seed)
        return load_base_encoder(self.config.base_model, max_seq_length=self.config.max_seq_length, device=device)

    def evaluator(self, heldout: list[MinedQuery]) -> tuple[Any, str]:
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
        from sentence_transformers.util import cos_sim

        questions, corpus, relevant = heldout_retrieval(heldout, self.config.eval_depth)
        self.questions, self.corpus = questions, corpus
        if not questions:
            return None, ""
        evaluator = InformationRetrievalEvaluator(
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
        scoring = (
            f"held-out: {len(questions)} queries over {len(corpus)} passages of their first-stage lists; "
            f"scoring the base encoder"
        )
        return evaluator, scoring

    def loss(self, model, rows: dict[str, list]):
        """MultipleNegativesRankingLoss; its cached (GradCache) form when the batch is larger than
        ``mini_batch`` texts: the same in-batch negatives, memory bounded by the mini-batch."""
        from sentence_transformers.sentence_transformer.losses import (
            CachedMultipleNegativesRankingLoss,
            MultipleNegativesRankingLoss,
        )

        config = self.config
        if config.mini_batch and config.mini_batch < config.batch_size:
            return CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch)
        return MultipleNegativesRankingLoss(model)

    def describe(self, plan: FitPlan, rows: dict[str, list]) -> str:
        return (
            f"training the bi-encoder on {self.queries} queries ({plan.title_queries} of them from titles; "
            f"{len(rows['query'])} rows, {self.config.hard_negatives} hard negative(s) per row plus in-batch "
            f"negatives) on {plan.device} ({plan.precision})"
        )

    def result(self, facts: dict, before: dict[str, float], after: dict[str, float]) -> EncoderResult:
        return EncoderResult(
            **facts, heldout_queries=len(self.questions), heldout_corpus=len(self.corpus), before=before, after=after
        )


def train_encoder(mined: Sequence[MinedQuery], config: EncoderConfig, output_dir: Path, **options) -> EncoderResult:
    """Train, keep the best held-out checkpoint, save a ``SentenceTransformer(path)`` folder;
    ``options``: :func:`training.fit.fit`'s (``extra_train``, ``progress``, ``log``)."""
    return fit(EncoderRecipe(config), mined, output_dir, **options)
