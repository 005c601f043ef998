"""``rrs judgments export``: the marks made on the search page as a BEIR folder.

The judgments index (written by ``POST /judgments``, service/judgments.py) holds one
record per (alias, query, id, client). The export turns the records of one alias into:

* ``queries.jsonl``: one query per query key (spaces collapsed, case folded), with the
  text of its latest mark and a stable id (``q-`` + hash of the key);
* ``qrels/train.tsv`` and ``qrels/test.tsv``: one grade per (query, document). Each
  client's latest mark counts once; several clients' grades are combined by
  :func:`combine_grades` (their mean, rounded to the nearest grade, a half rounded *down*:
  a disagreement never makes a document look more relevant than the marks say). A query
  is in test when a hash of its id falls under the test share (:func:`split_of`), so it
  never moves between splits as marks are added;
* ``corpus.jsonl``: the judged documents' title, text and metadata, read from the alias
  (a document's passages joined in chunk order, their overlap removed by :func:`join_chunks`).
  With ``paragraphs=True``, pasted paragraphs judged on the rerank tab come too, with the
  text stored in their marks (they are not in the index, so train-reranker needs
  ``--skip-missing`` for them);
* ``judgments.json``: counts, the split share and the combination rule.

Library code raises our errors; evaluation/cli.py prints them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

from elasticsearch import Elasticsearch, NotFoundError, helpers

from rrsearch.core.errors import DatasetError, IndexMissing

COMBINE_RULE = "mean of the clients' latest grades, rounded to the nearest grade, halves down"
SPLITS = ("train", "test")


# --- pure parts ------------------------------------------------------------------------------


def latest_marks(records: Iterable[dict]) -> list[dict]:
    """The latest record per (index, query key, id, client) (later ``@timestamp`` wins)."""
    latest: dict[tuple, dict] = {}
    for record in records:
        key = (record["index"], record["query_key"], record["id"], record["client"])
        if key not in latest or record["@timestamp"] >= latest[key]["@timestamp"]:
            latest[key] = record
    return list(latest.values())


def combine_grades(grades: Sequence[int]) -> int:
    """Several clients' grades of one (query, document) as one: the mean, halves rounded down.

    >>> combine_grades([2, 1]), combine_grades([2, 2, 1]), combine_grades([2, 0])
    (1, 2, 1)
    """
    if not grades:
        raise ValueError("no grades to combine")
    return math.ceil(Fraction(sum(grades), len(grades)) - Fraction(1, 2))


def split_of(query_id: str, test_share: float) -> str:
    """``test`` or ``train`` by a hash of the query id alone: adding marks never moves a query."""
    if not 0 < test_share < 1:
        raise ValueError(f"test share must be between 0 and 1, got {test_share}")
    digest = hashlib.sha256(f"rrs-split\x1f{query_id}".encode()).hexdigest()
    return "test" if int(digest[:15], 16) / 16**15 < test_share else "train"


def join_chunks(texts: Sequence[str]) -> str:
    """Passages of one document, in chunk order, as one text: the words a chunk repeats from
    the end of the one before (ingest's overlap) are kept once."""
    joined: list[str] = []
    for text in texts:
        words = text.split()
        if joined:
            for size in range(min(len(joined), len(words)), 0, -1):
                if joined[-size:] == words[:size]:
                    words = words[size:]
                    break
        joined.extend(words)
    return " ".join(joined)


def build_qrels(marks: Iterable[dict]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """(query id -> text of its latest mark, query id -> {judged id: combined grade})."""
    texts: dict[str, tuple[str, str]] = {}
    grades: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for mark in marks:
        qid = mark["query_id"]
        if qid not in texts or mark["@timestamp"] >= texts[qid][0]:
            texts[qid] = (mark["@timestamp"], mark["query"])
        grades[qid][mark["id"]].append(int(mark["grade"]))
    qrels = {qid: {doc: combine_grades(given) for doc, given in sorted(docs.items())} for qid, docs in grades.items()}
    return {qid: text for qid, (_, text) in texts.items()}, qrels


def split_qrels(qrels: dict[str, dict[str, int]], test_share: float) -> dict[str, dict[str, dict[str, int]]]:
    """``{"train": qrels, "test": qrels}`` by :func:`split_of`."""
    parts: dict[str, dict[str, dict[str, int]]] = {name: {} for name in SPLITS}
    for qid in sorted(qrels):
        parts[split_of(qid, test_share)][qid] = qrels[qid]
    return parts


# --- reading Elasticsearch --------------------------------------------------------------------


def read_marks(es: Elasticsearch, judgments_index: str, alias: str) -> list[dict]:
    """Every stored mark on ``alias`` (the index refreshed first: marks made a moment ago count)."""
    try:
        es.indices.refresh(index=judgments_index)
        return [
            hit["_source"]
            for hit in helpers.scan(es, index=judgments_index, query={"query": {"term": {"index": alias}}})
        ]
    except NotFoundError:
        raise DatasetError(
            f"no judgments index {judgments_index!r}: mark hits on the search page first (POST /judgments)"
        ) from None


def read_documents(es: Elasticsearch, alias: str, ids: Iterable[str], batch: int = 500) -> dict[str, dict]:
    """The BEIR corpus record (``_id``, ``title``, ``text``, ``metadata``) of each id the alias holds."""
    wanted = sorted(set(ids))
    passages: dict[str, list[dict]] = defaultdict(list)
    try:
        for start in range(0, len(wanted), batch):
            query = {"query": {"terms": {"parent_id": wanted[start : start + batch]}}}
            fields = ["parent_id", "chunk", "title", "text", "metadata"]
            for hit in helpers.scan(es, index=alias, query=query, _source=fields):
                passages[hit["_source"]["parent_id"]].append(hit["_source"])
    except NotFoundError:
        raise IndexMissing(f"no index or alias named {alias!r}") from None
    documents = {}
    for doc_id, parts in passages.items():
        parts.sort(key=lambda p: p.get("chunk") or 0)
        text = join_chunks([p.get("text") or "" for p in parts])
        record = {"_id": doc_id, "title": parts[0].get("title") or "", "text": text}
        if parts[0].get("metadata"):
            record["metadata"] = parts[0]["metadata"]
        documents[doc_id] = record
    return documents


# --- writing the folder -----------------------------------------------------------------------


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write beside, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        out.writelines(lines)
    os.replace(partial, path)


def export_judgments(
    es: Elasticsearch, *, judgments_index: str, alias: str, output: Path, test_share: float, paragraphs: bool = False
) -> dict:
    """Write ``output`` as a BEIR folder from the marks on ``alias``; the facts of the export."""
    marks = latest_marks(read_marks(es, judgments_index, alias))
    if not marks:
        raise DatasetError(f"no marks on index {alias!r} in {judgments_index!r}: mark hits on the search page first")
    documents = read_documents(es, alias, {m["id"] for m in marks if m.get("kind", "document") == "document"})
    pasted = {
        m["id"]: {"_id": m["id"], "title": "", "text": m["paragraph"]}
        for m in marks
        if m.get("kind") == "paragraph" and paragraphs
    }
    usable = [m for m in marks if m["id"] in documents or m["id"] in pasted]
    if not usable:
        raise DatasetError(f"none of the {len(marks)} marks on {alias!r} judges a document the index still holds")
    queries, qrels = build_qrels(usable)
    parts = split_qrels(qrels, test_share)
    corpus = {**documents, **pasted}
    output = Path(output)
    _write_lines(output / "corpus.jsonl", (json.dumps(corpus[d], ensure_ascii=False) + "\n" for d in sorted(corpus)))
    _write_lines(
        output / "queries.jsonl",
        (json.dumps({"_id": q, "text": queries[q]}, ensure_ascii=False) + "\n" for q in sorted(queries)),
    )
    for name, part in parts.items():
        rows = [f"{qid}\t{doc}\t{grade}\n" for qid, docs in part.items() for doc, grade in docs.items()]
        _write_lines(output / "qrels" / f"{name}.tsv", ["query-id\tcorpus-id\tscore\n", *rows])
    facts = {
        "index": alias,
        "judgments_index": judgments_index,
        "exported_at": datetime.now(UTC).isoformat(),
        "marks": len(marks),
        "marks_used": len(usable),
        "marks_left_out": {
            "document_gone": sum(
                1 for m in marks if m.get("kind", "document") == "document" and m["id"] not in documents
            ),
            "paragraph": sum(1 for m in marks if m.get("kind") == "paragraph" and not paragraphs),
        },
        "clients": len({m["client"] for m in usable}),
        "documents": len(documents),
        "paragraphs": len(pasted),
        "queries": {name: len(part) for name, part in parts.items()},
        "judgments": {name: sum(len(docs) for docs in part.values()) for name, part in parts.items()},
        "test_share": test_share,
        "split": "sha256 of the query id below the test share -> test",
        "combine": COMBINE_RULE,
    }
    _write_lines(output / "judgments.json", [json.dumps(facts, indent=2) + "\n"])
    return facts
