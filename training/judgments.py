"""Training judgments: which passages answer which query, read from the user's files.

Two layouts are accepted:

* a BEIR folder (``queries.jsonl`` + ``qrels/<split>.tsv``): judgments name documents by
  id, so their text comes from the index; a relevance of 0 marks a judged negative;
* a JSONL file, one object per line::

      {"query": "...", "positive": "text" | ["text", ...], "negatives": ["text", ...],
       "positive_ids": ["doc id", ...]}

  ``negatives`` and ``positive_ids`` are optional (the ids keep a positive's document out
  of the mined negatives when its text is not verbatim what the index holds).

Every problem names its file (and line). Example::

    queries = load_judgments(Path("data/scifact"), split="train")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rrsearch.core.errors import JudgmentsError
from rrsearch.evaluation.dataset import read_qrels, read_queries


@dataclass
class TrainingQuery:
    """One query with what is known about it before mining."""

    id: str
    text: str
    positive_ids: list[str] = field(default_factory=list)  # documents in the index
    negative_ids: list[str] = field(default_factory=list)  # judged non-relevant documents
    positive_texts: list[str] = field(default_factory=list)  # given verbatim (JSONL)
    negative_texts: list[str] = field(default_factory=list)

    @property
    def has_positive(self) -> bool:
        return bool(self.positive_ids or self.positive_texts)


class JsonlJudgment(BaseModel):
    """One line of a JSONL judgments file."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    positive: str | list[str]
    negatives: list[str] = Field(default_factory=list)
    positive_ids: list[str] = Field(default_factory=list)

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is blank")
        return value

    @field_validator("positive")
    @classmethod
    def _positives_not_blank(cls, value: str | list[str]) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts or not all(text.strip() for text in texts):
            raise ValueError("positive must be a non-blank text or a non-empty list of them")
        return texts


def load_beir_judgments(root: Path, split: str = "train") -> list[TrainingQuery]:
    """Queries of ``split`` with their judged document ids (relevance > 0 = positive)."""
    root = Path(root)
    qrels_path = root / "qrels" / f"{split}.tsv"
    queries = read_queries(root / "queries.jsonl")
    qrels = read_qrels(qrels_path)
    unknown = sorted(set(qrels) - set(queries))
    if unknown:
        raise JudgmentsError(f"{qrels_path}: {len(unknown)} query id(s) not in queries.jsonl, e.g. {unknown[:3]}")
    judged = []
    for query_id, docs in qrels.items():
        positives = sorted(doc for doc, grade in docs.items() if grade > 0)
        negatives = sorted(doc for doc, grade in docs.items() if grade <= 0)
        judged.append(TrainingQuery(query_id, queries[query_id], positives, negatives))
    if not any(query.has_positive for query in judged):
        raise JudgmentsError(f"{qrels_path}: no positive judgment (every relevance is 0)")
    return [query for query in judged if query.has_positive]


def load_jsonl_judgments(path: Path) -> list[TrainingQuery]:
    """One :class:`TrainingQuery` per non-blank line; a bad line stops with file:line."""
    path = Path(path)
    judged: list[TrainingQuery] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = JsonlJudgment.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise JudgmentsError(f"{path}:{number}: not JSON ({exc.msg})") from None
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())
                raise JudgmentsError(f"{path}:{number}: {problems}") from None
            judged.append(
                TrainingQuery(
                    id=f"{path.name}:{number}",
                    text=record.query,
                    positive_ids=list(record.positive_ids),
                    positive_texts=list(record.positive),
                    negative_texts=list(record.negatives),
                )
            )
    if not judged:
        raise JudgmentsError(f"{path}: no judgments (the file has no records)")
    return judged


def load_judgments(path: Path, split: str = "train") -> list[TrainingQuery]:
    """A BEIR folder or a JSONL file, chosen by what ``path`` is."""
    path = Path(path)
    if path.is_dir():
        return load_beir_judgments(path, split)
    if path.is_file():
        return load_jsonl_judgments(path)
    raise JudgmentsError(f"{path}: no such file or directory (expected a BEIR folder or a JSONL file)")
