"""What the fault tests share: a small synthetic corpus, `rrs ingest` as a process, the stored
content of an alias, and eight clients searching while something breaks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter

import requests

CLIENTS = 8
TOPICS = ["bread", "jazz", "orbits", "gardens", "vaccines", "trains", "chess", "rome", "tides", "owls"]


def write_corpus(path, n=120):
    with path.open("w") as f:
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            text = " ".join(f"{topic} note {i} line {j} about {TOPICS[(i + j) % len(TOPICS)]}" for j in range(12))
            f.write(
                json.dumps({"id": f"f{i}", "title": f"{topic} {i}", "text": text, "metadata": {"topic": topic}}) + "\n"
            )
    return path


def start_ingest(path, alias, env):
    return subprocess.Popen(
        [sys.executable, "-m", "rrsearch", "ingest", str(path), "--index", alias, "--batch-size", "8", "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_indexing(es, alias, run, at_least=24, timeout_s=300) -> None:
    """Block until the run's build index has taken ``at_least`` documents (indexing stats count
    before any refresh), so a fault lands in the middle of the run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and run.poll() is None:
        stats = es.indices.stats(index=f"{alias}-v*", metric="indexing", expand_wildcards="open")
        if stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0) >= at_least:
            return
        time.sleep(0.05)


def clean_reference(folder, settings, alias="clean") -> tuple:
    """The fault corpus written to ``folder`` and what an undisturbed ingest of it stores, as
    (corpus path, stored): the reference a faulty run must equal. Made in this process (imports and
    model already loaded) by the pipeline `rrs ingest` runs: the same ids and content hashes,
    without a process start."""
    from rrsearch.core.es_client import make_client
    from rrsearch.ingest.pipeline import run_ingest

    path = write_corpus(folder / "corpus.jsonl")
    es = make_client(settings)
    try:
        run_ingest([path], settings, alias=alias, progress=False, es=es)
        expected = stored(es, alias)
    finally:
        es.close()
    assert len(expected) == 120
    return path, expected


def stored(es, alias) -> dict[str, str]:
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=1000, source=["content_hash"], query={"match_all": {}})["hits"]["hits"]
    return {hit["_id"]: hit["_source"]["content_hash"] for hit in hits}


# A refused client waits this long before it asks again, as clients that read Retry-After do (in
# part): eight clients asking again at once kept both cores busy with 503s (15,000 in a test) and
# slowed the node's own restart.
REFUSED_PAUSE_S = 0.1


class SearchLoad:
    """``CLIENTS`` threads posting /search until stopped, counting what comes back."""

    def __init__(self, base: str):
        self.base = base
        self.statuses: Counter = Counter()
        self.missing_retry_after: list[str] = []
        self.answered: list[float] = []  # monotonic times of 200s
        self.refused: list[float] = []  # monotonic times of anything else
        self.partial = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def __enter__(self) -> SearchLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self, number: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            query = {"query": f"{TOPICS[(number + n) % len(TOPICS)]} note {n}", "top_k": 3, "rerank": False}
            try:
                response = requests.post(f"{self.base}/search", json=query, timeout=30)
            except requests.RequestException as exc:
                self.statuses[f"no answer: {exc.__class__.__name__}"] += 1
                self.refused.append(time.monotonic())
                self._stop.wait(REFUSED_PAUSE_S)
                continue
            self.statuses[response.status_code] += 1
            if response.status_code == 200:
                self.answered.append(time.monotonic())
                self.partial += bool(response.json().get("partial"))
            else:
                self.refused.append(time.monotonic())
            if response.status_code == 503 and not response.headers.get("Retry-After"):
                self.missing_retry_after.append(response.text)
            if response.status_code != 200:
                self._stop.wait(REFUSED_PAUSE_S)
