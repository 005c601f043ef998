"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

Exposed at ``GET /metrics``: requests by endpoint and status, latency per search stage,
rerank micro-batch sizes (pairs and tokens), rerank queue depth and dropped search-log records. With several
gunicorn workers each worker answers for itself (scrape each, or run one worker per GPU).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 8, 16, 32, 64, 100, 128, 256, 512, 1024, 2048)
TOKEN_BUCKETS = (64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rrs_requests", "HTTP requests by endpoint and status.", ["endpoint", "status"], registry=self.registry
        )
        self.stage_seconds = Histogram(
            "rrs_stage_seconds", "Search latency per stage.", ["stage"], buckets=STAGE_BUCKETS, registry=self.registry
        )
        self.rerank_batch_pairs = Histogram(
            "rrs_rerank_batch_pairs",
            "Pairs per rerank micro-batch round.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.rerank_batch_tokens = Histogram(
            "rrs_rerank_batch_tokens",
            "Tokens per rerank micro-batch (bounded by RRS_RERANK_MAX_BATCH_TOKENS).",
            buckets=TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.rerank_queue_pairs = Gauge(
            "rrs_rerank_queue_pairs", "Pairs waiting for or in the reranker.", registry=self.registry
        )
        self.degraded = Counter(
            "rrs_degraded", "Searches answered with a stage skipped or shortened.", ["reason"], registry=self.registry
        )
        self.search_log_dropped = Counter(
            "rrs_search_log_dropped", "Search-log records dropped (queue full or write failed).", registry=self.registry
        )

    def observe_rerank_batch(self, batch) -> None:
        """One micro-batch the reranker scored (a ``service.batching.BatchRecord``)."""
        self.rerank_batch_pairs.observe(batch.pairs)
        self.rerank_batch_tokens.observe(batch.tokens)

    def observe_timings(self, timings_ms: dict[str, float]) -> None:
        for stage, value in timings_ms.items():
            self.stage_seconds.labels(stage=stage).observe(value / 1000.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
