"""A bounded, expiring cache of reranked windows, so paging with ``from`` is stable.

The first page of a search computes the whole window (``candidates`` fused, reranked and
collapsed); later pages read slices of the same list instead of re-running retrieval
and rerank. Keys hold everything that shapes the window -- query, mode, fusion, filters,
depth, collapse, the concrete index version and the model names -- so a reindex (the
alias moves) or a model change never serves a stale window. The cache is per process:
another worker recomputes the same window deterministically.

Example::

    cache = WindowCache(max_entries=512, ttl_s=600, max_bytes=64 << 20)
    cache.put(key, window, size=window_bytes)
    cache.get(key)   # window, or None when absent/expired
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any


def window_key(**parts: Any) -> str:
    """A stable digest of the parts (order-independent; filters canonicalised)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class WindowCache:
    """LRU with a time-to-live, bounded by entries and by bytes; safe to share between threads."""

    def __init__(self, max_entries: int = 512, ttl_s: float = 600.0, max_bytes: int = 64 * 1024 * 1024):
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[float, Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            stored_at, value, _ = item
            if time.monotonic() - stored_at > self.ttl_s:
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: str, value: Any, size: int = 0) -> None:
        """Keep ``value`` (about ``size`` bytes); the least recently used go first past a bound.
        A value larger than the whole budget is not kept (that search simply recomputes)."""
        if self.max_entries <= 0 or size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (time.monotonic(), value, size)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))

    def _drop(self, key: str) -> None:
        _, _, size = self._items.pop(key)
        self._bytes -= size

    def __len__(self) -> int:
        return len(self._items)
