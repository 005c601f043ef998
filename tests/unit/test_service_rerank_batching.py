"""The micro-batcher bounds each batch by tokens as well as pairs (as text-embeddings-inference's
``max_batch_tokens``), a request of many long passages takes turns with short ones, and a
job's last batch is not put off behind later arrivals."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from rrsearch.core.settings import Settings
from rrsearch.core.tokenization import length_sorted_batches
from rrsearch.service.batching import BatchRecord, MicroBatcher


def _later(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


def _held_batcher() -> tuple[MicroBatcher, list[BatchRecord], threading.Event, threading.Event]:
    """A batcher of 1000-token batches whose first batch waits for ``let_go`` (so later jobs
    queue up behind it); each item's score is its second element; the batches are recorded."""
    batches: list[BatchRecord] = []
    first_batch_started, let_go = threading.Event(), threading.Event()

    def score(items, keep_going):
        first_batch_started.set()
        assert let_go.wait(10)
        return [float(value) for _, value in items]

    batcher = MicroBatcher(score, max_batch_pairs=512, max_batch_tokens=1000, on_batch=batches.append)
    return batcher, batches, first_batch_started, let_go


def test_a_long_request_cannot_starve_a_short_one():
    batcher, batches, first_batch_started, let_go = _held_batcher()
    long_items = [("long", i) for i in range(40)]
    long_job = batcher.submit(long_items, _later(), tokens=[100] * 40)  # 4000 tokens: 4 batches of 10 pairs
    assert first_batch_started.wait(10)  # the worker is scoring the long request's first batch
    short_job = batcher.submit([("short", -1), ("short", -2)], _later(), tokens=[12, 12])
    let_go.set()
    assert long_job.result(10) == [float(i) for i in range(40)]
    assert short_job.result(10) == [-1.0, -2.0]

    assert all(batch.tokens <= 1000 for batch in batches)
    assert sum(batch.pairs for batch in batches) == 42
    with_long = [n for n, batch in enumerate(batches) if any(job == 0 for job, _ in batch.jobs)]
    with_short = [n for n, batch in enumerate(batches) if any(job == 1 for job, _ in batch.jobs)]
    assert len(with_long) >= 4  # the long request was cut into token-bounded batches
    assert with_short == [1]  # the short one went into the very next batch, whole ...
    assert with_short[0] < with_long[-1]  # ... before the long request's batches were done
    assert batches[1].jobs[0] == (1, 2)  # and first in it: it had waited, the long one had just had a turn
    assert batcher.pending_pairs == 0
    batcher.close()


def test_a_job_whose_rest_fits_one_batch_keeps_its_place():
    """A search planned its depth on the work ahead of it when it came: its tail is not sent
    behind the searches that came later (the planner's promise held; before, one in eight
    searches timed out at 16 concurrent)."""
    batcher, batches, first_batch_started, let_go = _held_batcher()
    first = batcher.submit([("first", i) for i in range(15)], _later(), tokens=[100] * 15)  # 1.5 batches
    assert first_batch_started.wait(10)
    later = batcher.submit([("later", -i) for i in range(1, 9)], _later(), tokens=[100] * 8)
    let_go.set()
    assert first.result(10) == [float(i) for i in range(15)] and later.result(10) == [-float(i) for i in range(1, 9)]
    assert [batch.jobs for batch in batches] == [((0, 10),), ((0, 5), (1, 5)), ((1, 3),)]
    batcher.close()


def test_batches_are_bounded_by_tokens_and_by_pairs():
    batches: list[BatchRecord] = []
    gate = threading.Event()

    def score(items, keep_going):
        gate.wait(10)
        return [float(len(text)) for _, text in items]

    batcher = MicroBatcher(score, max_wait_s=0.05, max_batch_pairs=8, max_batch_tokens=300, on_batch=batches.append)
    blocker = batcher.submit([("q", "x")], _later(), tokens=[1])
    time.sleep(0.1)  # the worker holds the blocker; the rest queue up behind it
    rng = np.random.default_rng(0)
    jobs = []
    for _ in range(12):
        texts = ["y" * int(n) for n in rng.integers(1, 60, size=int(rng.integers(1, 15)))]
        jobs.append((texts, batcher.submit([("q", t) for t in texts], _later(), tokens=[len(t) for t in texts])))
    gate.set()
    assert blocker.result(10) == [1.0]
    for texts, future in jobs:
        assert future.result(10) == [float(len(t)) for t in texts]
    assert all(batch.pairs <= 8 and batch.tokens <= 300 for batch in batches)
    assert any(len(batch.jobs) > 1 for batch in batches)  # small jobs still share batches
    assert sum(batch.pairs for batch in batches) == 1 + sum(len(texts) for texts, _ in jobs)
    batcher.close()


def test_a_pair_longer_than_the_budget_goes_in_a_batch_of_its_own():
    batches: list[BatchRecord] = []
    batcher = MicroBatcher(lambda items, keep_going: [1.0] * len(items), max_batch_tokens=1000, on_batch=batches.append)
    future = batcher.submit([("q", "a"), ("q", "huge"), ("q", "b")], _later(), tokens=[50, 5000, 50])
    assert future.result(10) == [1.0, 1.0, 1.0]  # scored, never refused for its length
    assert [(batch.pairs, batch.tokens) for batch in batches] == [(1, 50), (1, 5000), (1, 50)]
    batcher.close()


def test_without_counts_tokens_are_estimated_from_the_text():
    batches: list[BatchRecord] = []
    batcher = MicroBatcher(lambda items, keep_going: [0.0] * len(items), max_batch_tokens=100, on_batch=batches.append)
    assert batcher.submit([("q", "w" * 400)] * 3, _later()).result(10) == [0.0] * 3  # ~100 tokens each
    assert [batch.pairs for batch in batches] == [1, 1, 1]
    with pytest.raises(ValueError, match="token counts"):
        batcher.submit([("q", "d")], _later(), tokens=[1, 2])
    batcher.close()


def test_a_failed_batch_fails_its_jobs_and_the_next_ones_are_served():
    calls = []

    def score(items, keep_going):
        calls.append(len(items))
        if len(calls) == 1:
            raise RuntimeError("device fell over")
        return [2.0] * len(items)

    batcher = MicroBatcher(score, max_batch_tokens=100)
    failing = batcher.submit([("q", "d")] * 5, _later(), tokens=[40] * 5)  # 3 batches; the first fails
    with pytest.raises(RuntimeError, match="device fell over"):
        failing.result(10)
    assert batcher.submit([("q", "d")], _later(), tokens=[10]).result(10) == [2.0]
    assert calls == [2, 1]  # the failed job's other pairs were dropped, not scored
    assert batcher.pending_pairs == 0
    batcher.close()


def test_a_job_whose_caller_gave_up_is_dropped_between_batches():
    gate = threading.Event()
    seen = []

    def score(items, keep_going):
        seen.extend(tag for tag, _ in items)
        gate.wait(10)
        return [0.0] * len(items)

    batcher = MicroBatcher(score, max_batch_tokens=100)
    doomed = batcher.submit([("doomed", "d")] * 10, time.monotonic() + 0.2, tokens=[50] * 10)
    time.sleep(0.3)  # past its deadline while its first batch is being scored
    gate.set()
    assert batcher.submit([("ok", "d")], _later(), tokens=[5]).result(10) == [0.0]
    assert seen.count("doomed") == 2 and not doomed.done()
    assert batcher.pending_pairs == 0
    batcher.close()


def test_length_sorted_batches():
    assert length_sorted_batches([3, 10, 1, 7, 5], 2, 10_000) == [
        [1, 3],
        [4, 0],
        [2],
    ]  # rows only, as without max_tokens
    assert length_sorted_batches([3, 10, 1, 7, 5], 8, 15) == [[1], [3, 4], [0, 2]]  # rows x longest <= 15
    assert length_sorted_batches([100, 2, 2], 8, 15) == [[0], [1, 2]]  # one row over the budget goes alone
    assert length_sorted_batches([], 8, 15) == []


# --- with the real reranker (the tiny cross-encoder) -------------------------------------------


def test_the_reranker_bounds_batches_and_forward_passes_by_tokens(tiny_cross_encoder_dir):
    from sentence_transformers import CrossEncoder

    from rrsearch.service.rerank import load_reranker

    settings = Settings(rerank_max_length=128, rerank_batch_size=16, rerank_max_batch_tokens=256, device="cpu")
    reranker = load_reranker(str(tiny_cross_encoder_dir), settings)
    batches: list[BatchRecord] = []
    reranker.batcher.on_batch = batches.append
    shapes = []
    forward = reranker._forward
    reranker._forward = lambda features: (shapes.append(features["input_ids"].shape), forward(features))[1]
    query = "what do tomato plants need"
    passages = [f"passage {i} " + "tomatoes need sun and water " * (i % 7) for i in range(30)]
    try:
        scores = reranker.rerank(query, passages, budget_s=30)
        expected = CrossEncoder(str(tiny_cross_encoder_dir), device="cpu", max_length=128).predict(
            [(query, p) for p in passages]
        )
        assert scores == pytest.approx([float(s) for s in expected], abs=1e-5)
        lengths = reranker.pair_lengths(query, passages)
        assert sum(batch.tokens for batch in batches) == sum(min(n, 128) for n in lengths)  # real counts, not guesses
        assert len(batches) > 1 and all(batch.tokens <= 256 for batch in batches)
        assert all(rows * width <= 256 for rows, width in shapes)  # each forward pass, padding included
    finally:
        reranker.close()
