"""Judgments from use: the marks people make on the search page, kept in Elasticsearch.

A mark says how well one document (or one pasted paragraph) answers one query: grade 2
(relevant), 1 (partly) or 0 (not). ``POST /judgments`` (service/http/judgments.py) hands
marks here; :class:`JudgmentStore` checks that each judged document is in the alias,
notes which concrete index (the alias's version) holds it, and writes one document per
(alias, query, id, client) into the judgments index (``es_mappings/judgments.json``). The
document id is a hash of those four, so a person who changes their mind overwrites their
earlier mark: the latest mark per (query, id, client) wins without a read.

Queries are keyed by :func:`query_key` (spaces collapsed, case folded), so "Vitamin D" and
"vitamin  d" are one query. ``rrs judgments export`` (evaluation/judgments_export.py)
turns the index into a BEIR folder.

Example::

    store = JudgmentStore(es, "rrs-judgments")
    store.record([Mark(query="vitamin d", id="doc-7", grade=2)], alias="passages",
                 client="10.0.0.5", request_id="abc")
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from elasticsearch import Elasticsearch, NotFoundError, helpers

from rrsearch.core.errors import BackendUnavailable, IndexMissing, InvalidRequest
from rrsearch.core.mappings import load_template

GRADES = {2: "relevant", 1: "partly", 0: "not relevant"}
DOCUMENT, PARAGRAPH = "document", "paragraph"


# --- identities (pure) ---------------------------------------------------------------------


def query_key(text: str) -> str:
    """The query as marks are grouped: runs of space collapsed, case folded."""
    return " ".join(text.split()).casefold()


def query_id(key: str) -> str:
    """A stable query id for a :func:`query_key` (the export's ``_id`` in queries.jsonl)."""
    return "q-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def paragraph_id(text: str) -> str:
    """The id of a pasted paragraph (not in the index): a hash of its stripped text."""
    return "para-" + hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:24]


def judgment_doc_id(alias: str, key: str, judged_id: str, client: str) -> str:
    """The judgments index ``_id`` of one (alias, query, id, client): a re-mark overwrites."""
    payload = json.dumps([alias, key, judged_id, client], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:40]


# --- the marks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """One mark as the caller sent it: a document ``id`` of the alias, or a ``paragraph``'s text."""

    query: str
    grade: int
    id: str | None = None
    paragraph: str | None = None

    @property
    def kind(self) -> str:
        return PARAGRAPH if self.paragraph is not None else DOCUMENT

    @property
    def judged_id(self) -> str:
        return paragraph_id(self.paragraph) if self.paragraph is not None else str(self.id)


class UnknownDocuments(InvalidRequest, LookupError):
    """Judged ids the alias does not hold; ``missing`` lists them, ``field`` names the first."""

    def __init__(self, alias: str, missing: list[tuple[int, str]], batch: bool):
        position, first = missing[0]
        self.field = f"judgments.{position}.id" if batch else "id"
        self.missing = [doc for _, doc in missing]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        super().__init__(f"no document {first!r} in index {alias!r}{more}: judge the ids search returns")


def build_records(
    marks: Sequence[Mark], *, alias: str, versions: dict[str, str], client: str, request_id: str, now: str
) -> list[tuple[str, dict]]:
    """(``_id``, ``_source``) of each mark (pure); ``versions`` maps a document id to its concrete index."""
    records = []
    for mark in marks:
        key, judged = query_key(mark.query), mark.judged_id
        records.append(
            (
                judgment_doc_id(alias, key, judged, client),
                {
                    "@timestamp": now,
                    "request_id": request_id,
                    "query": mark.query,
                    "query_key": key,
                    "query_id": query_id(key),
                    "id": judged,
                    "kind": mark.kind,
                    "grade": mark.grade,
                    "client": client,
                    "index": alias,
                    "index_version": versions.get(judged),
                    "paragraph": mark.paragraph,
                },
            )
        )
    return records


# --- the store --------------------------------------------------------------------------------


class JudgmentStore:
    """Checks judged ids against the alias and writes marks (synchronously: the page shows the outcome)."""

    def __init__(self, es: Elasticsearch, index: str, *, shards: int = 1, replicas: int = 0, timeout_s: float = 5.0):
        self.es, self.index, self.timeout_s = es, index, timeout_s
        self.shape = {"shards": shards, "replicas": replicas}
        self._ready = False
        self._lock = threading.Lock()

    def _client(self) -> Elasticsearch:
        return self.es.options(request_timeout=self.timeout_s)

    def locate(self, alias: str, ids: Sequence[str]) -> dict[str, str]:
        """Each of ``ids`` the alias holds (as a document: any of its passages) -> its concrete index."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        try:
            found = self._client().search(
                index=alias,
                query={"terms": {"parent_id": wanted}},
                collapse={"field": "parent_id"},
                size=len(wanted),
                source={"includes": ["parent_id"]},
                track_total_hits=False,
            )
        except NotFoundError as exc:
            raise IndexMissing(f"no index or alias named {alias!r}") from exc
        return {hit["_source"]["parent_id"]: hit["_index"] for hit in found["hits"]["hits"]}

    def record(
        self, marks: Sequence[Mark], *, alias: str, client: str, request_id: str, batch: bool = False
    ) -> list[dict]:
        """Check and write ``marks`` (all or none); the stored records, each with its ``judgment_id``."""
        documents = [mark.judged_id for mark in marks if mark.kind == DOCUMENT]
        versions = self.locate(alias, documents)
        missing = [
            (n, mark.judged_id)
            for n, mark in enumerate(marks)
            if mark.kind == DOCUMENT and mark.judged_id not in versions
        ]
        if missing:
            raise UnknownDocuments(alias, missing, batch)
        now = datetime.now(UTC).isoformat()
        records = build_records(marks, alias=alias, versions=versions, client=client, request_id=request_id, now=now)
        self._ensure_index()
        actions = [{"_index": self.index, "_id": doc_id, "_source": source} for doc_id, source in records]
        _, errors = helpers.bulk(self._client(), actions, raise_on_error=False, max_retries=0, stats_only=False)
        assert isinstance(errors, list)  # stats_only=False: the failed items, not their count
        if errors:
            status = next(iter(errors[0].values())).get("status", 0)
            raise BackendUnavailable(f"the judgments index refused {len(errors)} mark(s) (status {status})")
        return [{"judgment_id": doc_id, **source} for doc_id, source in records]

    def _ensure_index(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            if not self._client().indices.exists(index=self.index):
                body = load_template("judgments")
                settings = {
                    "index": {
                        **body["settings"]["index"],
                        "number_of_shards": self.shape["shards"],
                        "number_of_replicas": self.shape["replicas"],
                    }
                }
                try:
                    self._client().indices.create(index=self.index, settings=settings, mappings=body["mappings"])
                except Exception as exc:  # another worker made it first
                    if "resource_already_exists" not in str(exc):
                        raise
            self._ready = True
