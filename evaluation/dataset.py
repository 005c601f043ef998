"""Read a BEIR-format dataset: ``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Every problem names its file and line: a missing file, a malformed line, an empty query,
a judgment pointing at an unknown query or document.

Fingerprints tell the same query from a namesake: :func:`query_fingerprint` hashes a query's
id *and* text, :func:`queries_fingerprint` a whole collection's queries (every split's, so a
collection's train and test splits share it). ``rrs train-reranker`` records both in
``training.json``; tuning leaves out the queries whose own fingerprint is listed there,
and the collection's says whether they come from the collection the model was trained on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rrsearch.core.errors import DatasetError


@dataclass
class Dataset:
    root: Path
    corpus_path: Path
    queries: dict[str, str]  # query id -> text (only the judged ones of the split)
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: graded relevance}
    split: str
    doc_ids: set[str] = field(default_factory=set)


def corpus_file(root: Path) -> Path:
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (root / name).exists():
            return root / name
    raise DatasetError(f"{root}: no corpus.jsonl or corpus.jsonl.gz")


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def read_corpus_ids(path: Path) -> set[str]:
    """The corpus's document ids (to check judgments against), read as ingest reads them:
    the first of its id fields (``_id``, ``id``) a record has."""
    from rrsearch.ingest.validate import FieldMap

    id_fields = FieldMap().id
    ids: set[str] = set()
    with _open_text(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                ids.add(str(next(record[name] for name in id_fields if name in record)))
            except (json.JSONDecodeError, StopIteration, TypeError) as exc:
                raise DatasetError(
                    f"{path}:{number}: not a corpus record with an id field {id_fields} ({type(exc).__name__})"
                ) from None
    return ids


def read_queries(path: Path) -> dict[str, str]:
    if not path.exists():
        raise DatasetError(f"{path}: missing (queries.jsonl is required)")
    queries: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                query_id, text = str(record["_id"]), record["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetError(f"{path}:{number}: not a query record with _id and text ({exc})") from None
            if not isinstance(text, str) or not text.strip():
                raise DatasetError(f"{path}:{number}: query {query_id!r} has empty text")
            queries[query_id] = text
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id  corpus-id  score`` rows (a header line is allowed); scores are graded."""
    if not path.exists():
        raise DatasetError(f"{path}: missing (qrels/<split>.tsv is required)")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            parts = line.rstrip("\n").split("\t")
            if not line.strip() or (number == 1 and parts[0] == "query-id"):
                continue
            if len(parts) != 3:
                raise DatasetError(f"{path}:{number}: expected 3 tab-separated columns, got {len(parts)}")
            try:
                score = int(parts[2])
            except ValueError:
                raise DatasetError(f"{path}:{number}: relevance {parts[2]!r} is not an integer") from None
            qrels.setdefault(parts[0], {})[parts[1]] = score
    if not qrels:
        raise DatasetError(f"{path}: no judgments")
    return qrels


def load_dataset(root: Path, split: str = "test", *, check_corpus: bool = True) -> Dataset:
    """Queries and judgments of ``split``, checked against each other and the corpus."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    corpus = corpus_file(root)
    all_queries = read_queries(root / "queries.jsonl")
    qrels_path = root / "qrels" / f"{split}.tsv"
    qrels = read_qrels(qrels_path)
    unknown_queries = sorted(set(qrels) - set(all_queries))
    if unknown_queries:
        raise DatasetError(
            f"{qrels_path}: {len(unknown_queries)} query id(s) not in queries.jsonl, e.g. {unknown_queries[:3]}"
        )
    doc_ids: set[str] = set()
    if check_corpus:
        doc_ids = read_corpus_ids(corpus)
        unknown_docs = sorted({d for judged in qrels.values() for d in judged} - doc_ids)
        if unknown_docs:
            raise DatasetError(
                f"{qrels_path}: {len(unknown_docs)} document id(s) not in {corpus.name}, e.g. {unknown_docs[:3]}"
            )
    queries = {qid: all_queries[qid] for qid in qrels}
    return Dataset(root, corpus, queries, qrels, split, doc_ids)


def query_fingerprint(query_id: str, text: str) -> str:
    """A query's id and text, hashed (sha256, first 32 hex digits): equal only for the same query."""
    return hashlib.sha256(f"{query_id}\x1f{text}".encode()).hexdigest()[:32]


def queries_fingerprint(queries: Mapping[str, str]) -> str:
    """Every (id, text) of a collection's queries, hashed in id order (file order and layout don't count)."""
    digest = hashlib.sha256()
    for query_id in sorted(queries):
        digest.update(query_fingerprint(query_id, queries[query_id]).encode("ascii"))
    return digest.hexdigest()[:32]


def dataset_fingerprint(root: Path) -> str:
    """The fingerprint of a BEIR folder's collection: all of ``queries.jsonl``, whatever the split."""
    return queries_fingerprint(read_queries(Path(root) / "queries.jsonl"))
