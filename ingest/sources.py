"""Read source files into raw records, each tagged with its file and line (or row).

Formats: JSONL, CSV, Parquet, and a folder of ``.txt`` / ``.md`` / ``.html`` files (HTML
reduced to text). Any file may be gzipped (``.gz``). Readers never raise on one bad record:
lines are decoded one at a time, and a line that cannot be decoded or parsed becomes a
``RawRecord`` with its true line number and ``error`` set, so the caller can write it to
the rejects file and go on with the next line. An unreadable *file* (missing, unknown format)
raises ``SourceError`` before anything is read, naming the file.

Example::

    for record in read_sources([Path("corpus.jsonl.gz")]):
        print(record.source, record.line, record.data or record.error)
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrsearch.core.errors import SourceError

TEXT_FILE_SUFFIXES = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024  # RRS_INGEST_MAX_LINE_BYTES
MAX_EXCERPT_BYTES = 2000  # of an unreadable line, in the rejects file
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


def open_binary(path: Path):
    """A byte stream over ``path``, gunzipping ``.gz`` files."""
    _, gzipped = _strip_gz(path)
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _excerpt(raw: bytes) -> str:
    """What the rejects file shows of a line that could not be read: its start, bytes escaped."""
    text = raw[:MAX_EXCERPT_BYTES].decode("utf-8", errors="backslashreplace").rstrip("\r\n")
    return text + ("..." if len(raw) > MAX_EXCERPT_BYTES else "")


@dataclass(frozen=True)
class Line:
    """One physical line: its 1-based number and text, or why it could not be read."""

    number: int
    text: str | None
    error: str | None = None
    excerpt: str | None = None


def _wide_unicode(head: bytes) -> str | None:
    """The codec a UTF-16/32 byte-order mark announces (UTF-8 needs no special reader)."""
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return codec
    return None


Span = tuple[int, int | None, int]  # (start byte, end byte or None, number of the line at start)


def read_lines(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, span: Span | None = None) -> Iterator[Line]:
    """Every physical line of ``path`` (or of the ``span`` a shard holds), decoded one at a time.

    A line that is not UTF-8, or longer than ``max_line_bytes``, is yielded with ``error``
    set and the next line is read as usual, so one bad byte costs one record. A gzip
    stream that ends early (or a file that cannot be read further) ends with one error line
    naming the line where reading stopped. A UTF-8 byte-order mark is dropped; a UTF-16/32
    one switches to that codec for the whole file. A ``span`` (an uncompressed file's byte
    range starting at a line start, see ``ingest/shards.py``) is read alone, numbered from its line.
    """
    start, end, first_line = span or (0, None, 1)
    with open_binary(path) as stream:
        number = first_line - 1
        try:
            if start:
                stream.seek(start)
            head = stream.peek(4)[:4] if hasattr(stream, "peek") and not start else b""
            codec = _wide_unicode(head)
            if codec:
                yield from _wide_lines(stream, codec)
                return
            while end is None or stream.tell() < end:
                raw = stream.readline(max_line_bytes + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                    size = len(raw) + _skip_rest_of_line(stream)
                    yield Line(number, None, f"line is {size} bytes, over the limit of {max_line_bytes}", _excerpt(raw))
                    continue
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                try:
                    yield Line(number, raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    yield Line(
                        number, None, f"not UTF-8: {exc.reason} at byte {exc.start + 1} of the line", _excerpt(raw)
                    )
        except (EOFError, OSError, zlib.error) as exc:
            yield Line(
                number + 1,
                None,
                f"file cannot be read past line {number} ({exc.__class__.__name__}: {exc}); "
                "the rest of the file is not ingested",
            )


def _skip_rest_of_line(stream) -> int:
    """Read past the end of an over-long line; the number of bytes skipped."""
    skipped = 0
    while True:
        more = stream.readline(1 << 20)
        skipped += len(more)
        if not more or more.endswith(b"\n"):
            return skipped


def _wide_lines(stream, codec: str) -> Iterator[Line]:
    text_stream = io.TextIOWrapper(stream, encoding=codec, errors="strict", newline="")
    number = 0
    while True:
        try:
            text = text_stream.readline()
        except UnicodeDecodeError as exc:
            yield Line(number + 1, None, f"not {codec.upper()}: {exc.reason}; the rest of the file is not ingested")
            return
        if not text:
            return
        number += 1
        yield Line(number, text.lstrip("\ufeff") if number == 1 else text)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json_object(text: str) -> tuple[dict | None, str | None]:
    """(the object, None) or (None, why not): strict JSON, no NaN/Infinity, an object."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return None, f"bad JSON: {exc.msg} at column {exc.colno}"
    except ValueError as exc:
        return None, f"bad JSON: {exc}"
    except RecursionError:
        return None, "bad JSON: nested too deeply"
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    return data, None


def read_jsonl(
    path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, span: Span | None = None
) -> Iterator[RawRecord]:
    """One record per non-blank line; a line that cannot be read or parsed is a rejected record."""
    name = str(path)
    for line in read_lines(path, max_line_bytes, span):
        if line.error:
            yield RawRecord(name, line.number, raw=line.excerpt, error=line.error)
            continue
        text = line.text
        assert text is not None  # a line without an error has its text
        if not text.strip():
            continue
        data, error = parse_json_object(text)
        yield RawRecord(
            name, line.number, data=data, raw=None if data is not None else text.rstrip("\r\n"), error=error
        )


def read_csv(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, span: Span | None = None) -> Iterator[RawRecord]:
    """One record per row (header = field names); ``line`` is the row's first physical line.
    A ``span`` past the header (a shard starting at a row) takes the header from the file's start.

    Lines are decoded one by one before the csv module sees them: a line that cannot be
    read becomes a stand-in the parser can step over, and the row holding it is rejected
    with that line's reason, so the rows around it still go in.
    """
    name = str(path)
    csv.field_size_limit(2**31 - 1)  # the size limit is validation's job, with a clear reason
    bad: dict[int, str] = {}
    consumed = 0  # physical lines handed to the parser so far (its own line_num lags after an error)

    def texts(lines_span: Span | None = None) -> Iterator[str]:
        nonlocal consumed
        for line in read_lines(path, max_line_bytes, lines_span):
            consumed = line.number
            if line.error:
                bad[line.number] = line.error
                yield (line.excerpt or "?") + "\n"  # not blank: the row must surface to be rejected
            else:
                assert line.text is not None  # a line without an error has its text
                yield line.text

    # strict: a quote left open runs to the end of the file; that must be an error, not one huge field
    later = span is not None and span[0] > 0  # a later shard: its rows, parsed with the file's header
    reader = csv.DictReader(texts(None if later else span), restkey="__extra__", strict=True)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        if not later:  # the first shard reports a bad header, once
            yield RawRecord(name, 1, error=f"unreadable CSV header: {exc}")
        return
    if not header:
        return
    if 1 in bad:
        if not later:
            yield RawRecord(name, 1, error=f"unreadable CSV header: {bad[1]}")
        return
    start = consumed + 1
    if later:
        assert span is not None  # ``later`` implies a span
        bad.clear()
        consumed = span[2] - 1
        start = span[2]
        reader = csv.DictReader(texts(span), fieldnames=header, restkey="__extra__", strict=True)
    while True:
        row: dict[str | Any, str | Any] | None
        try:
            row, error = next(reader), ""
        except StopIteration:
            return
        except csv.Error as exc:
            row, error = None, f"bad CSV row: {exc}"
        line, end = start, max(consumed, start)
        start = consumed + 1
        spans = f" (the row spans lines {line}-{end})" if end > line else ""
        unreadable = next((n for n in range(line, end + 1) if n in bad), None)
        raw = json.dumps(row, ensure_ascii=False) if row is not None else None
        if unreadable is not None:
            yield RawRecord(name, line, raw=raw, error=f"line {unreadable}: {bad[unreadable]}{spans}")
        elif row is None:  # the parser's error
            yield RawRecord(name, line, error=error + spans)
        elif "__extra__" in row:
            yield RawRecord(
                name,
                line,
                raw=raw,
                error=f"row has {len(header) + len(row['__extra__'])} fields, header has {len(header)}{spans}",
            )
        elif any(value is None for value in row.values()):
            yield RawRecord(name, line, raw=raw, error=f"row has fewer fields than the header ({len(header)}){spans}")
        else:
            yield RawRecord(name, line, data=dict(row))


def read_parquet(
    path: Path, batch_rows: int = 4096, *, row_groups: list[int] | None = None, first_row: int = 1
) -> Iterator[RawRecord]:
    """One record per row, read in row groups so large files stream (``row_groups``: only
    those, numbered from ``first_row``, as a shard holds them)."""
    import pyarrow.parquet as pq

    name = str(path)
    _, gzipped = _strip_gz(path)
    handle = gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115 (closed by the with below)
    with handle:
        try:
            parquet = pq.ParquetFile(handle)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
        row = first_row - 1
        batches = parquet.iter_batches(batch_size=batch_rows, row_groups=row_groups)
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # noqa: BLE001 -- a corrupt row group: say where reading stopped
                yield RawRecord(
                    name,
                    row + 1,
                    error=f"file cannot be read past row {row} ({exc}); the rest of the file is not ingested",
                )
                return
            if batch is None:
                return
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
        with open_binary(path) as stream:
            content = stream.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return RawRecord(str(path), None, error=f"not UTF-8: {exc.reason} at byte {exc.start + 1}")
    except (EOFError, OSError, zlib.error) as exc:
        return RawRecord(str(path), None, error=f"file cannot be read ({exc.__class__.__name__}: {exc})")
    if kind == "html":
        title, text = _html_to_text(content)
    elif kind == "md":
        title, text = _markdown_title(content), content
    else:
        title, text = None, content
    data = {
        "id": rel,
        "title": title or path.name.split(".")[0],
        "text": text,
        "metadata": {"path": rel, "format": kind},
    }
    return RawRecord(str(path), None, data=data)


def read_folder(root: Path) -> Iterator[RawRecord]:
    """Every .txt/.md/.html file under ``root`` (recursively, sorted, hidden files skipped)."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        suffix, _ = _strip_gz(path)
        if suffix in TEXT_FILE_SUFFIXES:
            yield read_text_file(path, root)


READERS: dict[str, Callable[..., Iterator[RawRecord]]] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "parquet": read_parquet,
    "folder": read_folder,
}


def check_sources(paths: list[Path]) -> list[tuple[Path, str]]:
    """Each path with its format; raises SourceError for the first unreadable one."""
    if not paths:
        raise SourceError("no source given")
    return [(path, source_format(path)) for path in paths]


def read_sources(paths: list[Path], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[RawRecord]:
    """Records of every source in order (formats checked up front, so a typo fails fast)."""
    for path, kind in check_sources(paths):
        if kind in ("jsonl", "csv"):
            yield from READERS[kind](path, max_line_bytes)
        else:
            yield from READERS[kind](path)


def source_digest(path: Path) -> str:
    """A hash of what ``path`` holds (a folder: every file's relative path and bytes), so an
    interrupted build is resumed only when the sources are unchanged, whatever their names."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() if file != path else b"")
        digest.update(b"\0")
        with open(file, "rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()
