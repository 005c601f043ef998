"""A micro-batching worker: one thread owns the model and merges concurrent requests.

Requests (gunicorn threads) submit their (query, passage) pairs -- or anything the scoring
function takes, e.g. the pairs already tokenised -- with each item's token count, and wait
on a future. The worker cuts the waiting work into micro-batches bounded two ways, as
text-embeddings-inference bounds its batches:

* ``max_batch_pairs`` items, and
* ``max_batch_tokens`` tokens in all (a single item longer than that still goes, alone:
  nothing is refused for its length here).

A job larger than one batch is served a batch at a time, and takes turns: a job that got
part of a batch and still needs more than one batch goes back in line *behind* the jobs that
arrived meanwhile. So a request of 500 long passages is scored in several batches with the
short requests that come in while it runs slotted in between, instead of one round that holds
up everyone behind it and takes all the memory at once. A job whose rest fits in one batch
keeps its place at the head of the line: a search planned its depth on the work queued ahead
of it when it came (``service/rerank.py``'s ``adaptive_depth``), and sending its tail behind
every later arrival broke that plan (at 16 concurrent searches, one in eight timed out).
Concurrent small jobs still share a batch: the worker gathers for up to ``max_wait_s`` while a
batch has room. Each job gets its scores, in order, once its last
item is scored. The queue is bounded in pairs: a job that would overflow it is refused at
once (the caller skips the stage rather than waiting behind it).

Jobs carry a deadline; a job whose caller gave up is dropped before its next batch, and the
scoring function can stop between its forward passes once no job in the batch still wants
results.

Example::

    batcher = MicroBatcher(lambda pairs, keep_going: [len(p[1]) for p in pairs], max_batch_tokens=4096)
    future = batcher.submit([("q", "doc")], deadline=time.monotonic() + 1)
    future.result(timeout=1)   # [3]
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from rrsearch.core.errors import QueueFull

log = logging.getLogger("rrs.service")
Pair = tuple[str, str]
ScoreFn = Callable[[Sequence[Any], Callable[[], bool]], Sequence[float]]


def estimate_pair_tokens(pair: Pair) -> int:
    """A rough token count of a (query, passage) pair: about 4 characters a token, plus the
    special tokens. Used only when a caller submits without real counts."""
    return sum(len(text) for text in pair) // 4 + 3


@dataclass(eq=False)  # compared and hashed by identity
class _Job:
    items: Sequence[Any]
    tokens: Sequence[int]
    deadline: float
    number: int  # order of submission, for the batch records
    future: Future = field(default_factory=Future)
    next: int = 0  # items handed to batches so far
    scores: list[float] = field(init=False)
    scored: int = 0

    def __post_init__(self) -> None:
        self.scores = [0.0] * len(self.items)

    def wanted(self) -> bool:
        return not self.future.done() and time.monotonic() < self.deadline

    def finish(self, result=None, error: BaseException | None = None) -> None:
        try:
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)
        except InvalidStateError:  # the caller cancelled it meanwhile
            pass


@dataclass(frozen=True)
class BatchRecord:
    """One micro-batch as it was scored: ``jobs`` is ``(job number, items taken)`` per job, in
    batch order (job numbers count submissions from 0)."""

    jobs: tuple[tuple[int, int], ...]
    pairs: int
    tokens: int
    seconds: float


@dataclass
class _Batch:
    slices: list[tuple[_Job, int, int]] = field(default_factory=list)  # (job, start, stop)
    pairs: int = 0
    tokens: int = 0


class MicroBatcher:
    """Merge concurrent scoring jobs into shared batches, bounded in pairs and tokens, on one worker thread."""

    def __init__(
        self,
        score_fn: ScoreFn,
        *,
        max_wait_s: float = 0.0,
        max_batch_pairs: int = 512,
        max_batch_tokens: int = 16384,
        max_queue_pairs: int = 4096,
        measure: Callable[[Any], int] = estimate_pair_tokens,
        on_round: Callable[[int, float], None] | None = None,
        on_batch: Callable[[BatchRecord], None] | None = None,
    ):
        self._score_fn = score_fn
        self.max_wait_s = max_wait_s
        self.max_batch_pairs = max_batch_pairs
        self.max_batch_tokens = max_batch_tokens
        self.max_queue_pairs = max_queue_pairs
        self.measure = measure  # token count of an item submitted without counts
        self.on_round = on_round  # e.g. a metrics hook: (pairs, seconds)
        self.on_batch = on_batch  # the whole BatchRecord of each batch scored
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending_pairs = 0  # submitted and not yet finished
        self._active: set[_Job] = set()  # jobs submitted and not yet finished or dropped
        self._submitted = 0
        self._tokens_per_s: float | None = None  # moving average of measured throughput
        self._thread: threading.Thread | None = None
        # The worker's own state: jobs in line, and the one that had the last batch's tail.
        self._line: deque[_Job] = deque()
        self._carried: _Job | None = None
        self._closing = False

    # --- what callers see -------------------------------------------------------------
    @property
    def pending_pairs(self) -> int:
        """Pairs queued or being scored: the work ahead of a new job."""
        return self._pending_pairs

    @property
    def live_tokens(self) -> int:
        """Tokens still to score for callers that still wait: the work a new job really queues
        behind (a job whose caller gave up is dropped before its next batch)."""
        with self._lock:
            return sum(sum(job.tokens[job.scored :]) for job in self._active if job.wanted())

    @property
    def tokens_per_s(self) -> float | None:
        """Measured throughput in (unpadded) tokens per second; None until the first measurement."""
        return self._tokens_per_s

    def submit(self, items: Sequence[Any], deadline: float, tokens: Sequence[int] | None = None) -> Future:
        """Queue ``items`` (``tokens``: each one's token count; estimated when not given); the
        future resolves to their scores, in order."""
        if tokens is None:
            tokens = [self.measure(item) for item in items]
        elif len(tokens) != len(items):
            raise ValueError(f"{len(items)} items but {len(tokens)} token counts")
        with self._lock:
            if self._pending_pairs + len(items) > self.max_queue_pairs:
                raise QueueFull(f"{self._pending_pairs} pairs queued; limit {self.max_queue_pairs}")
            self._pending_pairs += len(items)
            job = _Job(items=items, tokens=list(tokens), deadline=deadline, number=self._submitted)
            if items:
                self._active.add(job)
            self._submitted += 1
            self._ensure_worker()
        if not items:
            job.finish([])
            return job.future
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
            self._closing = False
            self._thread = threading.Thread(target=self._run, name="rerank-batcher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._line and self._carried is None:  # idle: sleep until work (or close) comes
                if self._closing:
                    return
                job = self._queue.get()
                if job is None:
                    return
                self._line.append(job)
            self._drain()
            batch = self._take()
            if batch.slices:
                self._score(batch)

    def _arrived(self, job: _Job | None) -> None:
        if job is None:  # close(): finish what is in line, then stop
            self._closing = True
        else:
            self._line.append(job)

    def _drain(self) -> None:
        """Jobs that arrived join the line; the job served last goes behind them (its turn is
        over) unless its rest fits in one batch (its last turn: it goes first)."""
        while True:
            try:
                self._arrived(self._queue.get_nowait())
            except queue.Empty:
                break
        if self._carried is not None:
            job, self._carried = self._carried, None
            self._back_in_line(job)

    def _back_in_line(self, job: _Job) -> None:
        """Where a part-served job goes: first when its rest fits in one batch, else last."""
        if sum(job.tokens[job.next :]) <= self.max_batch_tokens:
            self._line.appendleft(job)
        else:
            self._line.append(job)

    def _take(self) -> _Batch:
        """The next batch: items from the jobs in line, in turn, until the next one does not fit;
        while it has room, wait up to ``max_wait_s`` for more jobs."""
        batch = _Batch()
        until = time.monotonic() + self.max_wait_s
        while True:
            full = self._fill(batch)
            if full or self._closing:
                return batch
            remaining = until - time.monotonic()
            if remaining <= 0:
                return batch
            try:
                self._arrived(self._queue.get(timeout=remaining))
            except queue.Empty:
                return batch

    def _fill(self, batch: _Batch) -> bool:
        """Add items from the line to ``batch``; True once the next item does not fit."""
        while self._line:
            job = self._line[0]
            if not job.wanted():
                self._line.popleft()
                self._release(len(job.items) - job.next)  # never to be scored
                self._retire(job)
                continue
            start = stop = job.next
            while stop < len(job.items):
                cost = job.tokens[stop]
                fits = batch.pairs < self.max_batch_pairs and batch.tokens + cost <= self.max_batch_tokens
                if not fits and batch.pairs:  # an empty batch takes one item whatever its length
                    break
                batch.pairs += 1
                batch.tokens += cost
                stop += 1
            if stop > start:
                batch.slices.append((job, start, stop))
                job.next = stop
            if job.next == len(job.items):
                self._line.popleft()  # all of it is in batches now
                continue
            if stop > start:  # part of it went: its turn is over (see _drain for where it goes back)
                self._line.popleft()
                self._carried = job
            return True
        return False

    def _score(self, batch: _Batch) -> None:
        jobs = list(dict.fromkeys(job for job, _, _ in batch.slices))
        items = [item for job, start, stop in batch.slices for item in job.items[start:stop]]
        started = time.perf_counter()
        try:
            scores = list(self._score_fn(items, lambda: any(job.wanted() for job in jobs)))
            if len(scores) != len(items):
                raise RuntimeError(f"scoring gave {len(scores)} scores for {len(items)} pairs")
        except Exception as exc:  # noqa: BLE001 -- handed to every waiting caller in this batch
            for job in jobs:
                job.finish(error=exc)
                self._retire(job)
            self._release(batch.pairs)
            return
        elapsed = time.perf_counter() - started
        offset = 0
        for job, start, stop in batch.slices:
            job.scores[start:stop] = scores[offset : offset + stop - start]
            offset += stop - start
            job.scored += stop - start
            if job.scored == len(job.items):
                job.finish(job.scores)
                self._retire(job)
        self._release(batch.pairs)
        self._record(batch, elapsed)

    def _retire(self, job: _Job) -> None:
        with self._lock:
            self._active.discard(job)

    def _release(self, pairs: int) -> None:
        with self._lock:
            self._pending_pairs -= pairs

    def observe(self, tokens: int, seconds: float) -> None:
        """Fold a measured throughput into :attr:`tokens_per_s`. The worker calls it for each
        batch it scores; a scoring function may also call it for each forward pass, so that the
        rate is known even when no whole batch finishes within its callers' budget."""
        if seconds > 0 and tokens > 0:
            rate = tokens / seconds
            self._tokens_per_s = rate if self._tokens_per_s is None else 0.7 * self._tokens_per_s + 0.3 * rate

    def _record(self, batch: _Batch, elapsed: float) -> None:
        self.observe(batch.tokens, elapsed)
        try:  # a failing hook (metrics) must not stop the worker
            if self.on_round is not None:
                self.on_round(batch.pairs, elapsed)
            if self.on_batch is not None:
                self.on_batch(
                    BatchRecord(
                        jobs=tuple((job.number, stop - start) for job, start, stop in batch.slices),
                        pairs=batch.pairs,
                        tokens=batch.tokens,
                        seconds=elapsed,
                    )
                )
        except Exception:
            log.exception("rerank batch hook failed")
