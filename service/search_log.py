"""Write one record per search to the search-logs index, off the request path.

``log()`` only appends the record to a queue bounded in bytes, so logging never slows or
fails a search and a burst of long queries cannot eat the worker's memory. A daemon thread
drains the queue in bulk requests; the index is created from ``es_mappings/search_logs.json``
on first use. While Elasticsearch is unreachable the thread keeps the records and retries
with back-off; only a full queue drops records (the newest, counted). A refusal for good
(401 or 403: the service's key may not write the log index) is not retried: the writer
says so once, naming the privilege, and drops (and counts) every later record. Warnings
are rate-limited: one line per ``warn_every_s`` that sums up what happened since the last.
Records hold the query, mode, timings, hit ids, degraded flag and status -- never headers,
keys or other secrets.

Example::

    writer = SearchLogWriter(es, "rrs-search-logs")
    writer.log({"query": "vitamin d", "status": 200, ...})
    writer.flush(5)   # tests: wait until written
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from elasticsearch import Elasticsearch, helpers

from rrsearch.core.errors import BackendMisconfigured
from rrsearch.core.es_errors import describe, raise_if_refused
from rrsearch.core.mappings import render_search_log_index

log = logging.getLogger(__name__)
BATCH = 200
RETRY_MIN_S, RETRY_MAX_S = 0.5, 30.0


def record_bytes(record: dict) -> int:
    """What a record costs in the queue: its JSON size (what the bulk request will carry)."""
    return len(json.dumps(record, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace"))


class SearchLogWriter:
    def __init__(
        self,
        es: Elasticsearch,
        index: str,
        *,
        max_queue_bytes: int = 16 * 1024 * 1024,
        on_drop: Callable[[int], None] | None = None,
        warn_every_s: float = 60.0,
        shards: int = 1,
        replicas: int = 0,
    ):
        self.es = es
        self.index = index
        self.shape = {"shards": shards, "replicas": replicas}
        self.max_queue_bytes = max_queue_bytes
        self.warn_every_s = warn_every_s
        self._on_drop = on_drop or (lambda n: None)
        self._queue: deque[tuple[dict, int]] = deque()
        self._queued_bytes = 0
        self._in_flight = 0  # records taken by the writer thread, not yet written or given up
        self._index_ready = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._dropped_since_warning = 0
        self._failures_since_warning = 0
        self._last_warning = float("-inf")
        self.refused: str | None = None  # why Elasticsearch refuses our writes for good, once it has

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def log(self, record: dict) -> None:
        """Queue ``record`` (``@timestamp`` added); drop it when the queue is full."""
        if self.refused is not None:  # said once; nothing will be written until someone fixes the key
            self._on_drop(1)
            return
        record.setdefault("@timestamp", datetime.now(UTC).isoformat())
        size = record_bytes(record)
        self._ensure_thread()
        with self._cond:
            if self._queued_bytes + size > self.max_queue_bytes:
                self._dropped_since_warning += 1
                self._on_drop(1)
                self._warn_maybe("queue full")
                return
            self._queue.append((record, size))
            self._queued_bytes += size
            self._cond.notify_all()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued record was written (or given up); True if done in time."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="search-log", daemon=True)
                self._thread.start()

    def _take_batch(self) -> list[tuple[dict, int]]:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            self._in_flight = len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            pending, wait_s = [record for record, _ in batch], RETRY_MIN_S
            while pending and self.refused is None:
                try:
                    pending = self._write(pending)
                    why = "Elasticsearch busy"
                except Exception as exc:  # noqa: BLE001 -- unreachable or failing: keep the records, retry
                    problem = describe(exc)
                    if problem is not None and problem.kind in ("unauthenticated", "forbidden"):
                        self._refuse(problem.message)
                        break
                    why = f"Elasticsearch unavailable ({exc.__class__.__name__})"
                if pending and self.refused is None:
                    with self._cond:
                        self._failures_since_warning += 1
                        self._warn_maybe(why)
                    time.sleep(wait_s)
                    wait_s = min(wait_s * 2, RETRY_MAX_S)
            if self.refused is not None and pending:
                self._on_drop(len(pending))
            with self._cond:
                self._queued_bytes -= sum(size for _, size in batch)
                self._in_flight = 0
                self._cond.notify_all()

    def _refuse(self, why: str) -> None:
        """Stop writing for good, and say so once: retrying a 401/403 only repeats it."""
        if self.refused is None:
            self.refused = why
            log.error(
                "search log: Elasticsearch refuses writes to %s, so searches are no longer logged "
                "(records are dropped and counted) until the service restarts with a key that may write it: %s",
                self.index,
                why,
            )

    def _warn_maybe(self, why: str) -> None:
        """One warning per ``warn_every_s`` at most, summing up (called with the lock held)."""
        now = time.monotonic()
        if now - self._last_warning < self.warn_every_s:
            return
        log.warning(
            "search log: %s; %d record(s) (%d bytes) waiting, %d dropped and %d failed write(s) since the last warning",
            why,
            len(self._queue) + self._in_flight,
            self._queued_bytes,
            self._dropped_since_warning,
            self._failures_since_warning,
        )
        self._last_warning = now
        self._dropped_since_warning = self._failures_since_warning = 0

    def _write(self, batch: list[dict]) -> list[dict]:
        """Bulk-write ``batch``; the records to try again (refused as busy: 429, 5xx)."""
        if not self._index_ready:
            self._create_index()
        actions = [{"_index": self.index, "_source": record} for record in batch]
        retry, refused = [], 0
        for (ok, item), record in zip(
            helpers.streaming_bulk(self.es, actions, raise_on_error=False, raise_on_exception=True, max_retries=0),
            batch,
        ):
            if ok:
                continue
            result = next(iter(item.values()))
            status = result.get("status", 0)
            try:
                raise_if_refused(status, result.get("error"))
            except BackendMisconfigured as exc:
                self._refuse(str(exc))
                refused += 1
                continue
            if status == 429 or status >= 500:
                retry.append(record)
            else:
                refused += 1  # refused on its own (a mapping conflict): it would be refused again
        if refused:
            self._on_drop(refused)
        return retry

    def _create_index(self) -> None:
        if not self.es.indices.exists(index=self.index):
            body = render_search_log_index(**self.shape)
            try:
                self.es.indices.create(index=self.index, settings=body["settings"], mappings=body["mappings"])
            except Exception as exc:
                if "resource_already_exists" not in str(exc):
                    raise
        self._index_ready = True
