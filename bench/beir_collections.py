"""Classic IR test collections (CISI, Medline, CACM) as BEIR folders, for measuring reranking beyond SciFact.

Every benchmark here reads SciFact, so a reranking policy tuned on it may only fit SciFact. These three
small collections have complete relevance judgements on other subjects (library science, medicine,
computing) and ship as SMART-format files: records that start at ``.I <id>``, with fields ``.T``
(title), ``.A`` (authors), ``.W`` (abstract or query text), ``.X``/``.B``/``.N``/``.K`` (references,
citations, bookkeeping) and a separate relevance file. This script parses them (its own parser) and
writes the BEIR layout that ``bench/_common.py`` reads:

* ``corpus.jsonl.gz``: ``{"_id", "title", "text"}`` per document, title from ``.T``, text from ``.W``;
  authors and the other fields stay out;
* ``queries.jsonl``: ``{"_id", "text"}`` for every query, text from ``.W``;
* ``qrels/train.tsv`` and ``qrels/test.tsv``: binary judgements (score 1) of the judged queries,
  split 50/50 by the sha256 of the query id, so the split does not depend on file order;
* ``README.md``: the source, the counts and the command that rebuilt the folder.

The counts are checked against the published figures; a mismatch is printed and exits 1.

    python bench/beir_collections.py cisi --docs RAW/cisi/CISI.ALL --queries RAW/cisi/CISI.QRY \\
        --qrels RAW/cisi/CISI.REL --source "github:OWNER/REPO@COMMIT" --out /work/collections/cisi

Ids are written unpadded (``01`` in CACM's qrels is query ``1``). The relevance files differ:
CISI.REL and CACM's qrels.text are ``query doc 0 0``, MED.REL is ``query 0 doc 1``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import shlex
import sys
from pathlib import Path

# Which whitespace-separated columns of a relevance line hold the query and the document id.
QRELS_COLUMNS = {"cisi": (0, 1), "medline": (0, 2), "cacm": (0, 1)}
# The published figures each build is held to: documents, queries, judged queries, relevant pairs.
PUBLISHED = {
    "cisi": {"docs": 1460, "queries": 112, "judged": 76, "pairs": 3114},
    "medline": {"docs": 1033, "queries": 30, "judged": 30, "pairs": 696},
    "cacm": {"docs": 3204, "queries": 64, "judged": 52, "pairs": 796},
}

RECORD_START = re.compile(r"^\.I\s+(\d+)\s*$")
FIELD_START = re.compile(r"^\.([A-Z])\s*$")


def normalise_id(raw: str) -> str:
    """``"007"`` and ``"7"`` are the same record."""
    return str(int(raw))


def clean(text: str) -> str:
    """One line, single spaces: the files are hard-wrapped, padded with blanks, some with CRLF."""
    return " ".join(text.split())


def parse_smart(text: str) -> dict[str, dict[str, str]]:
    """Records of a SMART file by id: each a mapping of field letter to its cleaned text.

    A line that is only ``.X`` (one capital letter) opens field X; anything else is content of the
    open field. A field that occurs twice in one record is joined; a repeated record id is an error.
    A record without any field (some copies of CACM's query.text end in a bare ``.I 0``) is dropped.
    """
    records: dict[str, dict[str, list[str]]] = {}
    fields: dict[str, list[str]] = {}
    field = None
    for line in text.splitlines():
        start = RECORD_START.match(line)
        marker = FIELD_START.match(line)
        if start:
            record_id = normalise_id(start.group(1))
            if record_id in records:
                raise ValueError(f"record {record_id} occurs twice")
            fields, field = records.setdefault(record_id, {}), None
        elif marker and records:
            field = marker.group(1)
            fields.setdefault(field, [])
        elif field is not None:
            fields[field].append(line)
    return {
        record_id: {name: clean("\n".join(lines)) for name, lines in parts.items()}
        for record_id, parts in records.items()
        if parts
    }


def corpus_rows(records: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    return [
        {"_id": doc_id, "title": fields.get("T", ""), "text": fields.get("W", "")} for doc_id, fields in records.items()
    ]


def query_rows(records: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    return [{"_id": query_id, "text": fields.get("W", "")} for query_id, fields in records.items()]


def parse_qrels(text: str, query_column: int, doc_column: int) -> dict[str, set[str]]:
    """Relevant documents by query; a pair listed twice counts once."""
    qrels: dict[str, set[str]] = {}
    for line in text.splitlines():
        columns = line.split()
        if columns:
            qrels.setdefault(normalise_id(columns[query_column]), set()).add(normalise_id(columns[doc_column]))
    return qrels


def split_half(query_ids: list[str]) -> tuple[list[str], list[str]]:
    """Train and test halves: the ids ordered by sha256 of the id, first half train (test takes an odd one)."""
    ordered = sorted(query_ids, key=lambda query_id: hashlib.sha256(query_id.encode()).hexdigest())
    half = len(ordered) // 2
    return sorted(ordered[:half], key=int), sorted(ordered[half:], key=int)


def dangling(qrels: dict[str, set[str]], query_ids: set[str], doc_ids: set[str]) -> list[str]:
    """Judgements that name a query or document the files do not have."""
    found = [f"query {query_id}" for query_id in sorted(qrels, key=int) if query_id not in query_ids]
    for query_id, docs in qrels.items():
        found += [f"doc {doc_id} (query {query_id})" for doc_id in sorted(docs - doc_ids, key=int)]
    return found


def counts_of(corpus: list[dict], queries: list[dict], qrels: dict[str, set[str]]) -> dict[str, int]:
    return {
        "docs": len(corpus),
        "queries": len(queries),
        "judged": len(qrels),
        "pairs": sum(len(docs) for docs in qrels.values()),
    }


def mismatches(counts: dict[str, int], published: dict[str, int]) -> list[str]:
    return [
        f"{key}: found {counts[key]}, published {published[key]}" for key in published if counts[key] != published[key]
    ]


def qrels_tsv(qrels: dict[str, set[str]], query_ids: list[str]) -> str:
    lines = ["query-id\tcorpus-id\tscore"]
    for query_id in query_ids:
        lines += [f"{query_id}\t{doc_id}\t1" for doc_id in sorted(qrels[query_id], key=int)]
    return "\n".join(lines) + "\n"


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def readme(
    name: str, source: str, inputs: list[Path], counts: dict[str, int], split: dict[str, int], command: str
) -> str:
    published = PUBLISHED[name]
    table = "\n".join(f"| {key} | {counts[key]} | {published[key]} |" for key in published)
    files = "\n".join(f"* `{path.name}` sha256 `{sha256_of(path)}`" for path in inputs)
    return f"""# {name} (BEIR layout)

Built by `bench/beir_collections.py` of rrsearch from the classic SMART-format files.

Source: `{source}`, files:

{files}

| count | found | published |
| --- | --- | --- |
{table}

Title from `.T`, text from `.W` (authors and the other fields left out); query text from `.W`.
Relevance is binary (score 1). Judged queries split by sha256 of the query id:
{split["train"]} in `qrels/train.tsv` ({split["train_pairs"]} pairs), {split["test"]} in `qrels/test.tsv` ({split["test_pairs"]} pairs).

Rebuilt with:

    {command}
"""


def write_gzip(path: Path, text: str) -> None:
    """gzip without a timestamp or name, so the same input gives the same bytes."""
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
        handle.write(text.encode("utf-8"))


def build(name: str, docs: Path, queries: Path, qrels_path: Path, out: Path, source: str, command: str) -> int:
    query_column, doc_column = QRELS_COLUMNS[name]
    corpus = corpus_rows(parse_smart(docs.read_text(encoding="latin-1")))
    query_list = query_rows(parse_smart(queries.read_text(encoding="latin-1")))
    qrels = parse_qrels(qrels_path.read_text(encoding="latin-1"), query_column, doc_column)

    counts = counts_of(corpus, query_list, qrels)
    problems = mismatches(counts, PUBLISHED[name])
    problems += [
        f"judgement of a missing {what}"
        for what in dangling(qrels, {q["_id"] for q in query_list}, {d["_id"] for d in corpus})
    ]
    empty = [row["_id"] for row in corpus if not row["title"] and not row["text"]]
    problems += [f"{len(empty)} documents without title and text"] if empty else []
    problems += [f"query {row['_id']} without text" for row in query_list if not row["text"]]

    train, test = split_half(sorted(qrels, key=int))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    write_gzip(out / "corpus.jsonl.gz", jsonl(corpus))
    (out / "queries.jsonl").write_text(jsonl(query_list), encoding="utf-8")
    (out / "qrels" / "train.tsv").write_text(qrels_tsv(qrels, train), encoding="utf-8")
    (out / "qrels" / "test.tsv").write_text(qrels_tsv(qrels, test), encoding="utf-8")
    split = {
        "train": len(train),
        "test": len(test),
        "train_pairs": sum(len(qrels[q]) for q in train),
        "test_pairs": sum(len(qrels[q]) for q in test),
    }
    (out / "README.md").write_text(
        readme(name, source, [docs, queries, qrels_path], counts, split, command), encoding="utf-8"
    )

    no_text = sum(1 for row in corpus if not row["text"])
    print(f"{name}: {counts} -> {out}")
    print(f"  published {PUBLISHED[name]}")
    print(
        f"  split train {split['train']} queries / {split['train_pairs']} pairs, test {split['test']} / {split['test_pairs']}"
    )
    print(f"  documents with a title only (no .W): {no_text}")
    for problem in problems:
        print(f"  MISMATCH {problem}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(PUBLISHED))
    parser.add_argument("--docs", type=Path, required=True, help="documents (CISI.ALL, MED.ALL, cacm.all)")
    parser.add_argument("--queries", type=Path, required=True, help="queries (CISI.QRY, MED.QRY, query.text)")
    parser.add_argument("--qrels", type=Path, required=True, help="judgements (CISI.REL, MED.REL, qrels.text)")
    parser.add_argument("--out", type=Path, required=True, help="the BEIR folder to write")
    parser.add_argument("--source", required=True, help="where the files came from, for the README (repo@commit)")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "bench/beir_collections.py", *(sys.argv[1:] if argv is None else argv)])
    return build(args.name, args.docs, args.queries, args.qrels, args.out, args.source, command)


if __name__ == "__main__":
    sys.exit(main())
