"""Turn raw records into validated documents, or into rejects that say why.

A ``FieldMap`` says which source fields hold the id, title, text and metadata. The
defaults read BEIR's ``corpus.jsonl`` (``_id``, ``title``, ``text``, ``metadata``) and the
sample corpus (``id``) with no options. Fields the map does not name go into
``metadata`` (unless ``extra_to_metadata`` is off), so nothing accepted is dropped.

Every reject is written, with its source file, line and reason, to the rejects file.

Example::

    doc = to_document(RawRecord("a.jsonl", 1, data={"id": 7, "text": "hi"}), FieldMap())
    doc.id   # '7'
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError, field_validator

from rrsearch.core.errors import RecordRejected
from rrsearch.ingest.ids import MAX_DOC_ID_BYTES, derive_doc_id
from rrsearch.ingest.sources import RawRecord


@dataclass(frozen=True)
class FieldMap:
    """Which source fields are the id, title, text and metadata."""

    id: tuple[str, ...] = ("_id", "id")  # the first present one wins
    title: str = "title"
    text: str = "text"
    metadata: str = "metadata"  # a field holding an object, merged into metadata
    extra_to_metadata: bool = True  # other top-level fields also go into metadata

    def named(self) -> set[str]:
        return {*self.id, self.title, self.text, self.metadata}


class Document(BaseModel):
    """A validated source document (before chunking)."""

    model_config = ConfigDict(frozen=True)

    id: StrictStr
    title: StrictStr = ""
    text: StrictStr
    metadata: dict[str, Any] = {}

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty")
        return value

    @field_validator("id")
    @classmethod
    def _id_fits(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("id is empty")
        if len(value.encode()) > MAX_DOC_ID_BYTES:
            raise ValueError(f"id longer than {MAX_DOC_ID_BYTES} bytes")
        return value


def _scalar_id(value: Any, field_name: str) -> str:
    """Ids may be strings or integers (CSV/Parquet often hold numbers); nothing else."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordRejected(f"field {field_name!r}: id must be a string or an integer, got {type(value).__name__}")
    return str(value)


def _text_field(data: dict, name: str, *, required: bool) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise RecordRejected(f"field {name!r}: missing")
        return ""
    if not isinstance(value, str):
        raise RecordRejected(f"field {name!r}: must be a string, got {type(value).__name__}")
    return value


def _metadata(data: dict, field_map: FieldMap) -> dict:
    meta = data.get(field_map.metadata)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise RecordRejected(f"field {field_map.metadata!r}: must be an object, got {type(meta).__name__}")
    meta = dict(meta)
    if field_map.extra_to_metadata:
        for key, value in data.items():
            if key not in field_map.named() and value is not None and key not in meta:
                meta[key] = value
    return meta


def _json_safe(value: Any) -> Any:
    """Values from Parquet (dates, decimals, bytes) as JSON-friendly ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


@dataclass(frozen=True)
class Limits:
    """Size caps that keep every accepted document indexable and searchable (RRS_INGEST_MAX_*)."""

    text_chars: int = 2_000_000
    title_chars: int = 2_000
    metadata_bytes: int = 65_536

    @classmethod
    def from_settings(cls, settings) -> Limits:
        return cls(settings.ingest_max_text_chars, settings.ingest_max_title_chars, settings.ingest_max_metadata_bytes)


def _check_size(name: str, size: int, limit: int, unit: str) -> None:
    if size > limit:
        raise RecordRejected(f"field {name!r}: {size} {unit}, over the limit of {limit}")


def _check_encodable(name: str, value: Any) -> None:
    """Lone surrogates (from ``\\ud800`` escapes) cannot be sent to Elasticsearch as UTF-8."""
    try:
        (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordRejected(
            f"field {name!r}: {exc.reason} (a lone \\u{ord(exc.object[exc.start]):04x} escape)"
        ) from None


def to_document(record: RawRecord, field_map: FieldMap, *, limits: Limits = Limits()) -> Document:
    """The validated document of ``record``, or RecordRejected with the reason."""
    if record.error:
        raise RecordRejected(record.error)
    data = record.data or {}
    text = _text_field(data, field_map.text, required=True)
    _check_size(field_map.text, len(text), limits.text_chars, "characters")
    title = _text_field(data, field_map.title, required=False)
    _check_size(field_map.title, len(title), limits.title_chars, "characters")
    metadata = _json_safe(_metadata(data, field_map))
    for name, value in ((field_map.text, text), (field_map.title, title), (field_map.metadata, metadata)):
        _check_encodable(name, value)
    _check_size(
        field_map.metadata,
        len(json.dumps(metadata, ensure_ascii=False).encode()),
        limits.metadata_bytes,
        "bytes as JSON",
    )
    id_field = next((name for name in field_map.id if data.get(name) not in (None, "")), None)
    doc_id = _scalar_id(data[id_field], id_field) if id_field else derive_doc_id(title, text)
    _check_encodable(id_field or "id", doc_id)
    try:
        return Document(id=doc_id, title=title, text=text, metadata=metadata)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "record"
        raise RecordRejected(f"field {where!r}: {first['msg']}") from None


@dataclass
class RejectsWriter:
    """Appends one JSON line per reject (source, line, reason, the record) to a file.

    With no path, rejects are only counted (and the first few kept for the summary).
    """

    path: Path | None
    count: int = 0  # rejected records
    superseded: int = 0  # records replaced by a later one with the same id
    examples: list[dict] = field(default_factory=list)
    _stream: Any = None
    _lock: Any = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.path is not None:  # truncate now: the file holds this run's rejects only
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # backslashreplace: a lone surrogate in a rejected record is written as its JSON escape
            self._stream = open(self.path, "w", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115 (closed by close())

    def write(
        self,
        *,
        source: str,
        line: int | None,
        reason: str,
        record: Any = None,
        doc_id: str | None = None,
        superseded: bool = False,
    ) -> None:
        entry = {"source": source, "line": line, "reason": reason}
        if doc_id is not None:
            entry["id"] = doc_id
        if superseded:
            entry["superseded"] = True
        entry["record"] = record
        line_out = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with self._lock:  # validation and indexing threads both reject
            if superseded:
                self.superseded += 1
            else:
                self.count += 1
            if len(self.examples) < 5:
                self.examples.append({k: v for k, v in entry.items() if k != "record"})
            if self._stream is not None:
                self._stream.write(line_out)
                self._stream.flush()

    def reject(self, record: RawRecord, reason: str) -> None:
        self.write(
            source=record.source,
            line=record.line,
            reason=reason,
            record=record.data if record.data is not None else record.raw,
        )

    def supersede(self, record: RawRecord, doc_id: str, by: tuple[str, int | None]) -> None:
        """A record replaced by a later one with the same id (last one wins); counted apart."""
        source, line = by
        where = f"line {line}" if line is not None else "a later file"
        where += "" if source == record.source else f" of {source}"
        self.write(
            source=record.source,
            line=record.line,
            doc_id=doc_id,
            record=record.data,
            reason=f"duplicate id {doc_id!r}: superseded by {where} (the last record with an id wins)",
            superseded=True,
        )

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None
