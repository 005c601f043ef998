"""Read source files into raw records, each tagged with its file and line (or row).

Formats: JSONL, CSV, Parquet, and a folder of ``.txt`` / ``.md`` / ``.html`` files (HTML
reduced to text). Any file may be gzipped (``.gz``). Readers never raise on one bad record:
a line that does not parse becomes a ``RawRecord`` with ``error`` set, so the caller can
write it to the rejects file and go on. An unreadable *file* (missing, unknown format)
raises ``SourceError`` before anything is read, naming the file.

Example::

    for record in read_sources([Path("corpus.jsonl.gz")]):
        print(record.source, record.line, record.data or record.error)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import SourceError

TEXT_FILE_SUFFIXES = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}
TABLE_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class RawRecord:
    """One record as read: its fields, or the reason it could not be parsed."""

    source: str
    line: int | None  # 1-based line (JSONL, CSV) or row (Parquet); None for a whole file
    data: dict | None = None
    raw: str | None = None  # the original text when it did not parse
    error: str | None = None


def _strip_gz(path: Path) -> tuple[str, bool]:
    """The format suffix of ``path`` and whether it is gzipped (``a.jsonl.gz`` -> .jsonl, True)."""
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), gzipped


def source_format(path: Path) -> str:
    """'jsonl', 'csv', 'parquet', 'folder', or a SourceError naming the file."""
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    suffix, _ = _strip_gz(path)
    if suffix in TABLE_SUFFIXES:
        return TABLE_SUFFIXES[suffix]
    raise SourceError(
        f"{path}: unknown format {suffix or '(no suffix)'!r}; expected .jsonl, .csv, .parquet "
        "(optionally .gz) or a folder of .txt/.md/.html files"
    )


def open_text(path: Path) -> io.TextIOBase:
    """A text stream over ``path``, gunzipping ``.gz`` files; UTF-8 (BOM tolerated)."""
    _, gzipped = _strip_gz(path)
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors="strict", newline="")
    return open(path, encoding="utf-8-sig", errors="strict", newline="")


def read_jsonl(path: Path) -> Iterator[RawRecord]:
    """One record per non-blank line; a bad line (not JSON, not an object) is a rejected record."""
    name = str(path)
    with open_text(path) as stream:
        line_no = 0
        while True:
            try:
                line = stream.readline()
            except UnicodeDecodeError as exc:
                line_no += 1
                yield RawRecord(name, line_no, error=f"not UTF-8: {exc.reason}")
                return  # the decoder cannot resynchronise; the rest of the file is unreadable
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RawRecord(name, line_no, raw=line.rstrip("\r\n"), error=f"bad JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(data, dict):
                yield RawRecord(name, line_no, raw=line.rstrip("\r\n"), error=f"expected a JSON object, got {type(data).__name__}")
                continue
            yield RawRecord(name, line_no, data=data)


def read_csv(path: Path) -> Iterator[RawRecord]:
    """One record per row (header = field names); ``line`` is the row's first physical line."""
    name = str(path)
    csv.field_size_limit(2**31 - 1)  # the size limit is validation's job, with a clear reason
    with open_text(path) as stream:
        reader = csv.DictReader(stream, restkey="__extra__")
        try:
            if not reader.fieldnames:
                return
        except (csv.Error, UnicodeDecodeError) as exc:
            yield RawRecord(name, 1, error=f"unreadable CSV header: {exc}")
            return
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                yield RawRecord(name, start, error=f"bad CSV row: {exc}")
                return  # the csv module cannot resume after a broken row
            line = start
            start = reader.line_num + 1
            if "__extra__" in row:
                yield RawRecord(name, line, raw=json.dumps(row, ensure_ascii=False),
                                error=f"row has {len(reader.fieldnames) + len(row['__extra__'])} fields, header has {len(reader.fieldnames)}")
                continue
            if any(value is None for value in row.values()):
                yield RawRecord(name, line, raw=json.dumps(row, ensure_ascii=False),
                                error=f"row has fewer fields than the header ({len(reader.fieldnames)})")
                continue
            yield RawRecord(name, line, data=dict(row))


def read_parquet(path: Path, batch_rows: int = 4096) -> Iterator[RawRecord]:
    """One record per row, read in row groups so large files stream."""
    import pyarrow.parquet as pq

    name = str(path)
    _, gzipped = _strip_gz(path)
    handle = gzip.open(path, "rb") if gzipped else open(path, "rb")
    with handle:
        try:
            parquet = pq.ParquetFile(handle)
        except Exception as exc:  # noqa: BLE001 -- pyarrow raises several types for a bad file
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
        row = 0
        for batch in parquet.iter_batches(batch_size=batch_rows):
            for data in batch.to_pylist():
                row += 1
                yield RawRecord(name, row, data=data)


def _html_to_text(html: str) -> tuple[str | None, str]:
    """(title, visible text) of an HTML page; scripts and styles dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return title or None, "\n".join(line for line in lines if line)


def _markdown_title(text: str) -> str | None:
    """The first ATX heading (``# Title``) of a markdown text, if any."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip() or None
        if stripped:
            return None
    return None


def read_text_file(path: Path, root: Path) -> RawRecord:
    """A whole .txt/.md/.html file as one record; id = its path relative to the folder."""
    suffix, _ = _strip_gz(path)
    kind = TEXT_FILE_SUFFIXES[suffix]
    rel = path.relative_to(root).as_posix()
    try:
        with open_text(path) as stream:
            content = stream.read()
    except UnicodeDecodeError as exc:
        return RawRecord(str(path), None, error=f"not UTF-8: {exc.reason}")
    if kind == "html":
        title, text = _html_to_text(content)
    elif kind == "md":
        title, text = _markdown_title(content), content
    else:
        title, text = None, content
    data = {"id": rel, "title": title or path.name.split(".")[0], "text": text,
            "metadata": {"path": rel, "format": kind}}
    return RawRecord(str(path), None, data=data)


def read_folder(root: Path) -> Iterator[RawRecord]:
    """Every .txt/.md/.html file under ``root`` (recursively, sorted, hidden files skipped)."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        suffix, _ = _strip_gz(path)
        if suffix in TEXT_FILE_SUFFIXES:
            yield read_text_file(path, root)


READERS = {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet, "folder": read_folder}


def check_sources(paths: list[Path]) -> list[tuple[Path, str]]:
    """Each path with its format; raises SourceError for the first unreadable one."""
    if not paths:
        raise SourceError("no source given")
    return [(path, source_format(path)) for path in paths]


def read_sources(paths: list[Path]) -> Iterator[RawRecord]:
    """Records of every source in order (formats checked up front, so a typo fails fast)."""
    for path, kind in check_sources(paths):
        yield from READERS[kind](path)
