import threading
import time

import pytest

from rrsearch.core.tokenization import length_sorted_batches
from rrsearch.service.batching import MicroBatcher, QueueFull
from rrsearch.service.http.auth import key_is_valid, presented_key
from rrsearch.service.rerank import adaptive_depth, max_pair_length
from rrsearch.service.window_cache import WindowCache, window_key


class _Config:
    def __init__(self, model_type="bert", positions=512, pad=0):
        self.model_type, self.max_position_embeddings, self.pad_token_id = model_type, positions, pad


def test_max_pair_length_takes_the_smallest_limit():
    assert max_pair_length(512, 10**30, _Config()) == 512
    assert max_pair_length(1024, 10**30, _Config()) == 512
    assert max_pair_length(256, 512, _Config()) == 256
    assert max_pair_length(4096, None, _Config("xlm-roberta", 514, 1)) == 512


def test_length_sorted_batches():
    batches = length_sorted_batches([3, 10, 1, 7, 5], 2)
    assert batches == [[1, 3], [4, 0], [2]]


EVEN = [100] * 100  # 100 candidates of 100 tokens each


def test_adaptive_depth_unknown_throughput_takes_all():
    assert adaptive_depth(EVEN, floor=10, queued_tokens=50_000, tokens_per_s=None, budget_s=1, concurrent=8) == 100


def test_adaptive_depth_fits_one_search_in_its_budget():
    assert adaptive_depth(EVEN, floor=10, queued_tokens=0, tokens_per_s=40_000, budget_s=1) == 100
    # A slow device (2 cores, long pairs): the top 48 are reranked instead of none.
    assert adaptive_depth(EVEN, floor=10, queued_tokens=0, tokens_per_s=2_000, budget_s=3) == 48


def test_adaptive_depth_counts_tokens_not_pairs():
    long_then_short = [400] * 10 + [50] * 90
    assert (
        adaptive_depth(long_then_short, floor=10, queued_tokens=0, tokens_per_s=2_000, budget_s=3) == 26
    )  # 4000 + 16 x 50
    assert (
        adaptive_depth(list(reversed(long_then_short)), floor=10, queued_tokens=0, tokens_per_s=2_000, budget_s=3) == 90
    )


def test_adaptive_depth_shares_the_budget_among_searches_in_flight():
    depths = [
        adaptive_depth(EVEN, floor=10, queued_tokens=1, tokens_per_s=10_000, budget_s=3, concurrent=c)
        for c in (1, 2, 4, 8, 16, 24, 32)
    ]
    assert depths == [100, 100, 60, 30, 15, 10, 0]  # gradual, and the stage is skipped only below the floor


def test_adaptive_depth_fits_behind_the_queue():
    # 0.8 of 3 s at 10,000 tokens/s is 24,000 tokens, the queue ahead included
    assert adaptive_depth(EVEN, floor=10, queued_tokens=19_000, tokens_per_s=10_000, budget_s=3) == 50
    assert adaptive_depth(EVEN, floor=10, queued_tokens=23_500, tokens_per_s=10_000, budget_s=3) == 0
    assert adaptive_depth([100] * 5, floor=10, queued_tokens=0, tokens_per_s=10_000, budget_s=3, concurrent=4) == 5


def test_an_idle_model_tries_the_floor_so_a_slow_estimate_is_measured_again():
    assert adaptive_depth(EVEN, floor=10, queued_tokens=0, tokens_per_s=100, budget_s=3) == 10
    assert adaptive_depth(EVEN, floor=10, queued_tokens=0, tokens_per_s=100, budget_s=3, concurrent=2) == 0


def test_microbatcher_merges_concurrent_jobs_and_keeps_order():
    rounds = []
    gate = threading.Event()

    def score(pairs, keep_going):
        gate.wait(5)
        return [float(len(doc)) for _, doc in pairs]

    batcher = MicroBatcher(score, max_wait_s=0.05, on_round=lambda n, s: rounds.append(n))
    first = batcher.submit([("q", "a")], deadline=time.monotonic() + 5)
    time.sleep(0.1)  # the worker holds the first job (blocked in score)
    later = [batcher.submit([("q", "x" * i), ("q", "y")], deadline=time.monotonic() + 5) for i in range(1, 4)]
    gate.set()
    assert first.result(5) == [1.0]
    assert [f.result(5) for f in later] == [[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]
    assert rounds == [1, 6]  # the three later jobs shared one round
    assert batcher.pending_pairs == 0
    batcher.close()


def test_microbatcher_bounded_queue_and_expired_jobs():
    batcher = MicroBatcher(lambda pairs, keep_going: [0.0] * len(pairs), max_queue_pairs=3)
    with pytest.raises(QueueFull, match="limit 3"):
        batcher.submit([("q", "d")] * 4, deadline=time.monotonic() + 1)
    expired = batcher.submit([("q", "d")], deadline=time.monotonic() - 1)
    ok = batcher.submit([("q", "d")], deadline=time.monotonic() + 5)
    assert ok.result(5) == [0.0]
    assert not expired.done()  # dropped unscored: its caller has already given up
    batcher.close()


def test_window_cache_lru_and_ttl():
    cache = WindowCache(max_entries=2, ttl_s=60)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    expiring = WindowCache(max_entries=2, ttl_s=0)
    expiring.put("a", 1)
    time.sleep(0.01)
    assert expiring.get("a") is None
    assert window_key(a=1, b={"x": 1, "y": 2}) == window_key(b={"y": 2, "x": 1}, a=1) != window_key(a=2)


def test_api_keys():
    keys = [b"k1", b"k2"]
    assert key_is_valid("k2", keys) and not key_is_valid("k3", keys) and not key_is_valid(None, keys)
    assert presented_key({"Authorization": "Bearer abc"}) == "abc"
    assert presented_key({"X-API-Key": "xyz"}) == "xyz"


def test_window_cache_is_bounded_in_bytes():
    cache = WindowCache(max_entries=100, ttl_s=60, max_bytes=1000)
    for n in range(5):
        cache.put(f"k{n}", n, size=300)
    assert cache.bytes <= 1000 and len(cache) == 3
    assert cache.get("k0") is None and cache.get("k4") == 4  # the least recently used went first
    cache.put("huge", "x", size=5000)  # larger than the whole budget: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 3
    cache.put("k4", 4, size=100)  # replacing an entry frees its old size
    assert cache.bytes == 700


def test_the_pair_cap_defaults_by_device_and_a_setting_overrides_it(tiny_cross_encoder_dir):
    from rrsearch.core.settings import Settings
    from rrsearch.service.rerank import default_max_length, load_reranker

    assert (default_max_length("cpu"), default_max_length("cuda:0")) == (256, 512)
    assert load_reranker(str(tiny_cross_encoder_dir), Settings(device="cpu")).max_length == 256
    assert load_reranker(str(tiny_cross_encoder_dir), Settings(device="cpu", rerank_max_length=64)).max_length == 64
