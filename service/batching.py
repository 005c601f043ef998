"""A micro-batching worker: one thread owns the model and merges concurrent requests.

Requests (gunicorn threads) submit their (query, passage) pairs and wait on a future.
The worker takes the oldest job, gathers more jobs for up to ``max_wait_s`` (or until
``max_batch_pairs``), scores all pairs in one call -- so 16 concurrent requests of 100
pairs share full GPU batches instead of taking turns with small ones -- and hands each
job its slice of the scores. The queue is bounded in pairs: a job that would overflow it
is refused at once (the caller skips the stage rather than waiting behind it).

Jobs carry a deadline; a job whose caller gave up is dropped before scoring, and the
scoring function can stop between batches once no job in the round still wants results.

Example::

    batcher = MicroBatcher(lambda pairs, keep_going: [len(p[1]) for p in pairs])
    future = batcher.submit([("q", "doc")], deadline=time.monotonic() + 1)
    future.result(timeout=1)   # [3.0]
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from rrsearch.core.errors import QueueFull

Pair = tuple[str, str]
ScoreFn = Callable[[Sequence[Pair], Callable[[], bool]], Sequence[float]]


@dataclass
class _Job:
    pairs: Sequence[Pair]
    deadline: float
    future: Future = field(default_factory=Future)

    def wanted(self) -> bool:
        return not self.future.done() and time.monotonic() < self.deadline


class MicroBatcher:
    """Merge concurrent scoring jobs into shared batches on one worker thread."""

    def __init__(
        self,
        score_fn: ScoreFn,
        *,
        max_wait_s: float = 0.0,
        max_batch_pairs: int = 512,
        max_queue_pairs: int = 4096,
        on_round: Callable[[int, float], None] | None = None,
    ):
        self._score_fn = score_fn
        self.max_wait_s = max_wait_s
        self.max_batch_pairs = max_batch_pairs
        self.max_queue_pairs = max_queue_pairs
        self.on_round = on_round  # e.g. a metrics hook: (pairs, seconds)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending_pairs = 0  # submitted and not yet finished
        self._pairs_per_s: float | None = None  # moving average of measured throughput
        self._thread: threading.Thread | None = None

    # --- what callers see -------------------------------------------------------------
    @property
    def pending_pairs(self) -> int:
        """Pairs queued or being scored: the work ahead of a new job."""
        return self._pending_pairs

    @property
    def pairs_per_s(self) -> float | None:
        """Measured throughput (None until the first round)."""
        return self._pairs_per_s

    def submit(self, pairs: Sequence[Pair], deadline: float) -> Future:
        """Queue ``pairs``; the future resolves to their scores, in order."""
        with self._lock:
            if self._pending_pairs + len(pairs) > self.max_queue_pairs:
                raise QueueFull(f"{self._pending_pairs} pairs queued; limit {self.max_queue_pairs}")
            self._pending_pairs += len(pairs)
            self._ensure_worker()
        job = _Job(pairs=pairs, deadline=deadline)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        """Stop the worker after the jobs already queued."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    # --- the worker ---------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        # Started on first use, so a worker forked by gunicorn gets its own thread.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="rerank-batcher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = self._gather(first)
            self._score_round(jobs)

    def _gather(self, first: _Job) -> list[_Job]:
        jobs, size = [first], len(first.pairs)
        until = time.monotonic() + self.max_wait_s
        while size < self.max_batch_pairs:
            try:
                remaining = until - time.monotonic()
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # close(): finish this round, then stop
                self._queue.put(None)
                break
            jobs.append(job)
            size += len(job.pairs)
        return jobs

    def _score_round(self, jobs: list[_Job]) -> None:
        live = [job for job in jobs if job.wanted()]
        try:
            if not live:
                return
            pairs = [pair for job in live for pair in job.pairs]
            started = time.perf_counter()
            scores = list(self._score_fn(pairs, lambda: any(job.wanted() for job in live)))
            elapsed = time.perf_counter() - started
            self._record(len(pairs), elapsed)
            offset = 0
            for job in live:
                part = scores[offset : offset + len(job.pairs)]
                offset += len(job.pairs)
                if not job.future.done():
                    job.future.set_result(part)
        except Exception as exc:  # noqa: BLE001 -- handed to every waiting caller
            for job in live:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            with self._lock:
                self._pending_pairs -= sum(len(job.pairs) for job in jobs)

    def _record(self, pairs: int, elapsed: float) -> None:
        if elapsed > 0:
            rate = pairs / elapsed
            self._pairs_per_s = rate if self._pairs_per_s is None else 0.7 * self._pairs_per_s + 0.3 * rate
        if self.on_round is not None:
            self.on_round(pairs, elapsed)
