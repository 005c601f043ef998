"""--reindex builds a new version beside the live one and swaps the alias atomically:
a search loop running all the while never fails and only ever sees a complete index."""

import json
import threading

from rrsearch.core.indexes import current_index, list_versions
from rrsearch.ingest.pipeline import run_ingest


def _write(path, n, tag):
    path.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "title": f"Doc {i}", "text": f"{tag} document number {i} about lighthouses."})
            + "\n"
            for i in range(n)
        )
    )


def test_reindex_moves_the_alias_while_searches_keep_working(es, es_settings, alias, tmp_path):
    settings = es_settings.model_copy(update={"ingest_batch_size": 16})
    path = tmp_path / "docs.jsonl"
    _write(path, 40, "old")
    first = run_ingest([path], settings, alias=alias, progress=False)
    assert first.alias_moved and es.count(index=alias)["count"] == 40

    _write(path, 60, "new")
    stop, errors, seen = threading.Event(), [], []

    def search_loop():
        while not stop.is_set():
            try:
                response = es.search(
                    index=alias,
                    query={"match": {"text": "lighthouses"}},
                    size=0,
                    track_total_hits=True,
                    aggs={"tags": {"terms": {"field": "parent_id", "size": 1}}},
                )
                seen.append(response["hits"]["total"]["value"])
            except Exception as exc:  # noqa: BLE001 -- any failure is what the test looks for
                errors.append(repr(exc))

    loop = threading.Thread(target=search_loop, daemon=True)
    loop.start()
    try:
        second = run_ingest([path], settings, alias=alias, reindex=True, progress=False, keep_old=1)
        searches_before_end = len(seen)
        stop.wait(0.3)
    finally:
        stop.set()
        loop.join()
    assert errors == []
    assert searches_before_end > 5
    assert set(seen) <= {40, 60}, "never a half-built index"
    assert seen[0] == 40 and seen[-1] == 60
    assert second.mode == "build" and second.alias_moved and second.index_name != first.index_name
    assert current_index(es, alias) == second.index_name
    assert list_versions(es, alias) == [first.index_name, second.index_name]  # keep_old=1
    hit = es.search(index=alias, query={"match": {"text": "new"}})["hits"]["hits"][0]
    assert hit["_source"]["text"].startswith("new")

    third = run_ingest([path], settings, alias=alias, reindex=True, progress=False, keep_old=0)
    assert list_versions(es, alias) == [third.index_name]
    assert set(third.dropped_indexes) == {first.index_name, second.index_name}
    assert es.count(index=alias)["count"] == 60
