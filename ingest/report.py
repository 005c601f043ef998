"""What an ingest run did: counts, and where the time went stage by stage.

Stages overlap in time (a pipeline), so their seconds add up to more than the wall time;
the slowest stage's throughput is the run's limit. Counts:

- ``read``: records read from the sources (good and bad);
- ``documents``: records indexed (valid, not superseded, not refused by Elasticsearch);
- ``rejected``: records rejected (by validation, or by Elasticsearch for one of their passages);
- ``duplicate_ids``: records superseded by a later record with the same id (last one wins);
  ``read == documents + rejected + duplicate_ids`` once a run completes;
- ``chunks``: passages made from the documents;
- ``skipped_unchanged``: passages already indexed with the same content hash and model;
- ``encoded`` / ``indexed``: passages embedded / written to Elasticsearch in this run;
- ``deleted_stale``: passages removed because their document now has fewer of them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

STAGES = ("read", "chunk", "lookup", "encode", "index")
STAGE_UNITS = {"read": "records", "chunk": "documents", "lookup": "passages", "encode": "passages", "index": "passages"}


@dataclass
class StageClock:
    """Busy seconds and items done per stage (thread-safe enough: one writer per stage)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    items: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))

    @contextmanager
    def stage(self, name: str, items: int = 0):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.items[name] += items

    def add_items(self, name: str, items: int) -> None:
        self.items[name] += items


@dataclass
class IngestReport:
    alias: str
    index_name: str
    mode: str  # "upsert" into the live index, or "build" of a new version
    read: int = 0
    documents: int = 0
    rejected: int = 0
    chunks: int = 0
    skipped_unchanged: int = 0
    encoded: int = 0
    indexed: int = 0
    deleted_stale: int = 0
    duplicate_ids: int = 0
    completed: bool = False
    alias_moved: bool = False
    resumed: bool = False
    dropped_indexes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_items: dict[str, int] = field(default_factory=dict)
    reject_examples: list[dict] = field(default_factory=list)
    rejects_path: str | None = None

    @property
    def stage_throughput(self) -> dict[str, float]:
        """Items per busy second of each stage (records, documents or passages)."""
        return {
            name: (self.stage_items.get(name, 0) / secs if secs > 0 else 0.0)
            for name, secs in self.stage_seconds.items()
        }

    @property
    def passages_per_second(self) -> float:
        """End to end: passages made ready (encoded+indexed or found current) per wall second."""
        return (self.indexed + self.skipped_unchanged) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["stage_throughput"] = self.stage_throughput
        data["passages_per_second"] = self.passages_per_second
        return data

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"{'completed' if self.completed else 'INTERRUPTED'}: alias {self.alias} -> {self.index_name} ({self.mode}"
            f"{', resumed' if self.resumed else ''}{', alias moved' if self.alias_moved else ''})",
            f"read {self.read}  documents {self.documents}  rejected {self.rejected}  chunks {self.chunks}  "
            f"unchanged {self.skipped_unchanged}  encoded {self.encoded}  indexed {self.indexed}"
            f"{f'  stale deleted {self.deleted_stale}' if self.deleted_stale else ''}"
            f"{f'  superseded (duplicate ids) {self.duplicate_ids}' if self.duplicate_ids else ''}",
            f"wall {self.wall_seconds:.1f}s, {self.passages_per_second:.1f} passages/s end to end",
        ]
        throughput = self.stage_throughput
        for name in STAGES:
            secs = self.stage_seconds.get(name, 0.0)
            # Under 10 ms busy a rate is noise (it printed 120 million passages/s for lookups).
            rate = f"{throughput[name]:10.1f}" if secs >= 0.01 else f"{'-':>10}"
            lines.append(f"  {name:<7} {secs:8.2f}s busy  {rate} {STAGE_UNITS[name]}/s")
        if self.dropped_indexes:
            lines.append(f"dropped old indexes: {', '.join(self.dropped_indexes)}")
        if self.rejected:
            where = f" (see {self.rejects_path})" if self.rejects_path else " (use --rejects FILE to keep them)"
            lines.append(f"{self.rejected} record(s) rejected{where}; first:")
            lines.extend(
                f"  {e['source']}:{e['line'] if e['line'] is not None else '-'}: {e['reason']}"
                for e in self.reject_examples
            )
        return "\n".join(lines)
