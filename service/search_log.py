"""Write one record per search to the search-logs index, off the request path.

``log()`` only puts the record on a bounded queue (``put_nowait``): a full queue drops
the record and counts it, so logging never slows or fails a search. A daemon thread
drains the queue in bulk requests; the index is created from ``es_mappings/search_logs.json``
on first use. Records hold the query, mode, timings, hit ids, degraded flag and status --
never headers, keys or other secrets.

Example::

    writer = SearchLogWriter(es, "rrs-search-logs")
    writer.log({"query": "vitamin d", "status": 200, ...})
    writer.flush(5)   # tests: wait until written
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from elasticsearch import Elasticsearch, helpers

from core.mappings import render_search_log_index

log = logging.getLogger(__name__)
BATCH = 200


class SearchLogWriter:
    def __init__(
        self,
        es: Elasticsearch,
        index: str,
        *,
        queue_size: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
    ):
        self.es = es
        self.index = index
        self._queue: queue.Queue[dict] = queue.Queue(maxsize=queue_size)
        self._on_drop = on_drop or (lambda n: None)
        self._index_ready = False
        self._unfinished = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def log(self, record: dict) -> None:
        """Queue ``record`` (``@timestamp`` added); drop it when the queue is full."""
        record.setdefault("@timestamp", datetime.now(timezone.utc).isoformat())
        self._ensure_thread()
        with self._cond:
            try:
                self._queue.put_nowait(record)
                self._unfinished += 1
            except queue.Full:
                self._on_drop(1)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued record was written (or dropped); True if done in time."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="search-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 -- a log write must never take the service down
                log.warning("search log: %d record(s) dropped: %s", len(batch), exc)
                self._on_drop(len(batch))
            finally:
                with self._cond:
                    self._unfinished -= len(batch)
                    self._cond.notify_all()

    def _write(self, batch: list[dict]) -> None:
        if not self._index_ready:
            self._create_index()
        actions = ({"_index": self.index, "_source": record} for record in batch)
        _, errors = helpers.bulk(self.es, actions, raise_on_error=False, stats_only=True)
        if errors:
            self._on_drop(errors)

    def _create_index(self) -> None:
        if not self.es.indices.exists(index=self.index):
            body = render_search_log_index()
            try:
                self.es.indices.create(index=self.index, settings=body["settings"], mappings=body["mappings"])
            except Exception as exc:  # noqa: BLE001
                if "resource_already_exists" not in str(exc):
                    raise
        self._index_ready = True
