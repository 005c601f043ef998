"""A bounded, expiring cache of reranked windows, so paging with ``from`` is stable.

The first page of a search computes the whole window (``candidates`` fused, reranked and
collapsed); later pages read slices of the same list instead of re-running retrieval
and rerank. Keys hold everything that shapes the window -- query, mode, fusion, filters,
depth, collapse, the concrete index version and the model names -- so a reindex (the
alias moves) or a model change never serves a stale window. The cache is per process:
another worker recomputes the same window deterministically.

Example::

    cache = WindowCache(max_entries=512, ttl_s=600)
    cache.put(key, window)
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
    """LRU with a time-to-live; safe to share between request threads."""

    def __init__(self, max_entries: int = 512, ttl_s: float = 600.0):
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            stored_at, value = item
            if time.monotonic() - stored_at > self.ttl_s:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
