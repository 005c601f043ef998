"""The search log keeps its records while Elasticsearch is away, writes them when it returns,
stays within its byte budget, and says so in a few log lines, not one per record."""

from __future__ import annotations

import logging
import re
import time
import uuid
from urllib.parse import urlparse

import pytest
from tcp_relay import TcpRelay

from rrsearch.core.es_client import make_client
from rrsearch.rrs.local_node import first_free_port
from rrsearch.service.search_log import SearchLogWriter, record_bytes


@pytest.fixture
def cut_link(es_settings, es_url):
    """An Elasticsearch client through a relay that starts cut; the test restores it."""
    node = urlparse(es_url)
    relay = TcpRelay(first_free_port(39_700), (node.hostname, node.port))
    client = make_client(
        es_settings.model_copy(update={"es_url": f"http://127.0.0.1:{relay.port}"}),
        request_timeout=2,
        max_retries=0,
        retry_on_timeout=False,
    )
    yield relay, client
    relay.stop()
    client.close()


def test_records_wait_for_elasticsearch_and_are_all_written(cut_link, es, caplog):
    relay, client = cut_link
    index = f"test-log-{uuid.uuid4().hex[:8]}"
    dropped = []
    writer = SearchLogWriter(client, index, on_drop=dropped.append, warn_every_s=60)
    caplog.set_level(logging.WARNING, logger="rrsearch.service.search_log")
    try:
        for n in range(50):
            writer.log({"query": f"q{n}", "status": 200})
        assert not writer.flush(3)  # nothing can be written yet
        warnings = [r.getMessage() for r in caplog.records if "search log" in r.getMessage()]
        assert len(warnings) == 1, warnings  # one line, not one per retry
        # the count is what waited when the first write failed: the writer may have taken a batch before all 50 came
        waiting = re.search(r"; (\d+) record\(s\) \(\d+ bytes\) waiting", warnings[0])
        assert waiting and 1 <= int(waiting.group(1)) <= 50, warnings[0]
        relay.start()
        assert writer.flush(60)
        es.indices.refresh(index=index)
        assert es.count(index=index)["count"] == 50 and not dropped
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def test_the_queue_is_bounded_in_bytes(cut_link):
    _, client = cut_link
    dropped = []
    record = {"query": "x" * 500, "status": 200}
    limit = 10 * (record_bytes(record) + 60)  # room for about ten (the timestamp adds some)
    writer = SearchLogWriter(client, "never-written", max_queue_bytes=limit, on_drop=dropped.append)
    for _ in range(40):
        writer.log(dict(record))
        time.sleep(0.001)
    assert writer.queued_bytes <= limit
    assert 25 <= len(dropped) <= 31  # the newest ones past the budget, each counted
