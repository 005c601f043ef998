"""Work units for a distributed ingest: shards of the sources, in input order.

A shard is a piece of one source that a worker reads on its own with our readers
(``ingest/sources.py``), getting the same records, with the same true lines, as a reader of
the whole file:

- JSONL: a byte range starting at a line start, with the number of the line it starts at;
- CSV: the same, cut only where no quoted field is open (a row may span lines), so every
  shard starts at a row; later shards take the header from the file's first row;
- Parquet: one row group, with the number of the row it starts at;
- a folder: one file;
- a gzipped file, or one in UTF-16/32: the whole file (it cannot be entered mid-stream).

Planning reads each JSONL/CSV file once, line by line, to find the cuts and line numbers
(disk speed; a CSV line holding a quote is followed character by character); it also
hashes each shard's bytes, so a re-run can tell a shard it finished from one that changed.

Example::

    for shard in plan_shards([Path("corpus.jsonl")], target_bytes=64 << 20):
        records = list(read_shard(shard))
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rrsearch.ingest.sources import (
    DEFAULT_MAX_LINE_BYTES,
    RawRecord,
    _excerpt,
    _strip_gz,
    _wide_unicode,
    check_sources,
    read_csv,
    read_jsonl,
    read_parquet,
    read_text_file,
    source_digest,
)


@dataclass(frozen=True)
class Shard:
    """One work unit; ``index`` is its place in input order across all sources."""

    index: int
    path: str
    kind: str  # "jsonl", "csv", "parquet" (one row group, or the whole file), "file" (of a folder)
    start: int = 0  # byte offset (JSONL/CSV)
    end: int | None = None  # byte offset, exclusive; None: to the end of the file
    first_line: int = 1  # line (JSONL/CSV) or row (Parquet) the shard starts at
    row_group: int | None = None  # Parquet
    root: str | None = None  # the folder a "file" shard belongs to (its id is the path under it)
    digest: str = ""  # hash of what the shard holds

    @property
    def key(self) -> str:
        """Identifies the shard and its content (a re-run skips a finished shard by this key)."""
        where = f"{Path(self.path).name}:{self.kind}:{self.start}:{self.end}:{self.first_line}:{self.row_group}"
        return hashlib.sha256(f"{where}:{self.digest}".encode()).hexdigest()[:20]

    def to_dict(self) -> dict:
        return asdict(self)


def plan_shards(paths: list[Path], *, target_bytes: int, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[Shard]:
    """The shards of ``paths`` in input order, JSONL/CSV pieces about ``target_bytes`` long."""
    planned: list[dict] = []
    for path, kind in check_sources(paths):
        if kind == "folder":
            planned.extend(_folder_shards(path))
        elif kind == "parquet":
            planned.extend(_parquet_shards(path))
        elif _whole_file_only(path):
            planned.append({"path": str(path), "kind": kind, "digest": source_digest(path)})
        else:
            planned.extend(_line_shards(path, kind, target_bytes, max_line_bytes))
    return [Shard(index=number, **fields) for number, fields in enumerate(planned)]


def read_shard(shard: Shard, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[RawRecord]:
    """The records of one shard, as the whole-file reader gives them for that part."""
    path = Path(shard.path)
    if shard.kind == "file":
        assert shard.root is not None  # a "file" shard always names its folder
        yield read_text_file(path, Path(shard.root))
    elif shard.kind == "parquet":
        yield from read_parquet(
            path, row_groups=None if shard.row_group is None else [shard.row_group], first_row=shard.first_line
        )
    else:
        span = (shard.start, shard.end, shard.first_line)
        reader = read_jsonl if shard.kind == "jsonl" else read_csv
        yield from reader(path, max_line_bytes, span=span)


def _whole_file_only(path: Path) -> bool:
    """Gzip cannot be entered mid-stream; a UTF-16/32 file is decoded as one stream."""
    _, gzipped = _strip_gz(path)
    if gzipped:
        return True
    with open(path, "rb") as stream:
        return _wide_unicode(stream.read(4)) is not None


def _folder_shards(root: Path) -> Iterator[dict]:
    from rrsearch.ingest.sources import TEXT_FILE_SUFFIXES

    for path in sorted(root.rglob("*")):  # the order and filter of read_folder
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if _strip_gz(path)[0] in TEXT_FILE_SUFFIXES:
            yield {"path": str(path), "kind": "file", "root": str(root), "digest": source_digest(path)}


def _parquet_shards(path: Path) -> Iterator[dict]:
    import pyarrow.parquet as pq

    digest = source_digest(path)
    if _strip_gz(path)[1]:
        yield {"path": str(path), "kind": "parquet", "digest": digest}
        return
    try:
        metadata = pq.ParquetFile(path).metadata
    except Exception:  # noqa: BLE001 -- the reader names the problem with the file's name
        yield {"path": str(path), "kind": "parquet", "digest": digest}
        return
    row = 1
    for group in range(metadata.num_row_groups):
        yield {"path": str(path), "kind": "parquet", "row_group": group, "first_line": row, "digest": digest}
        row += metadata.row_group(group).num_rows
    if metadata.num_row_groups == 0:
        yield {"path": str(path), "kind": "parquet", "digest": digest}


def _line_shards(path: Path, kind: str, target_bytes: int, max_line_bytes: int) -> Iterator[dict]:
    """Byte ranges of a JSONL/CSV file cut at line starts (CSV: at row starts)."""
    quotes = CsvQuoteState() if kind == "csv" else None
    start, start_line, offset, number = 0, 1, 0, 0
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while True:
            if offset - start >= target_bytes and (quotes is None or quotes.at_row_start) and number >= 1:
                yield {
                    "path": str(path),
                    "kind": kind,
                    "start": start,
                    "end": offset,
                    "first_line": start_line,
                    "digest": digest.hexdigest(),
                }
                start, start_line, digest = offset, number + 1, hashlib.sha256()
            raw, size = _next_line(stream, max_line_bytes)
            if not size:
                break
            digest.update(raw)
            number += 1
            offset += size
            if quotes is not None:
                quotes.feed(_as_csv_sees_it(raw, size, max_line_bytes, first=number == 1))
    yield {
        "path": str(path),
        "kind": kind,
        "start": start,
        "end": None,
        "first_line": start_line,
        "digest": digest.hexdigest(),
    }


def _next_line(stream, max_line_bytes: int) -> tuple[bytes, int]:
    """The next line's first ``max_line_bytes + 1`` bytes and its full size in bytes."""
    raw = stream.readline(max_line_bytes + 1)
    size = len(raw)
    if size > max_line_bytes and not raw.endswith(b"\n"):
        while True:
            more = stream.readline(1 << 20)
            size += len(more)
            if not more or more.endswith(b"\n"):
                break
    return raw, size


def _as_csv_sees_it(raw: bytes, size: int, max_line_bytes: int, *, first: bool) -> str:
    """The text ``read_csv`` hands the csv parser for this line (an unreadable one: its excerpt)."""
    if size > max_line_bytes:
        return _excerpt(raw) + "\n"
    if first and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _excerpt(raw) + "\n"


class CsvQuoteState:
    """Whether the csv module (default dialect, strict) is between rows after each line fed.

    A quote opens a quoted field only at the start of a field; inside one, ``""`` is a quote
    and a lone ``"`` closes it; in strict mode anything but a comma or the line end after a
    closing quote is an error, after which the parser starts afresh on the next line."""

    def __init__(self) -> None:
        self.in_quotes = False

    @property
    def at_row_start(self) -> bool:
        return not self.in_quotes

    def feed(self, line: str) -> None:
        if not self.in_quotes and '"' not in line:
            return  # the common case: no quote, no state change
        field_start = not self.in_quotes
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if self.in_quotes:
                if c == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        i += 2
                        continue
                    self.in_quotes = False
                    after = line[i + 1] if i + 1 < n else "\n"
                    if after not in ",\r\n":
                        return  # strict error: the rest of the line is dropped, a new row follows
                    field_start = False
            elif c == '"' and field_start:
                self.in_quotes = True
                field_start = False
            else:
                field_start = c == ","
            i += 1
