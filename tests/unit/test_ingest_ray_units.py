"""The Ray engine's pure parts: the global duplicate pass, the rows between stages, and the
CLI's refusal of options that belong to the other engine (no cluster, no Ray started)."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from rrsearch.ingest.chunking import Passage
from rrsearch.ingest.pipeline import PassageRow
from rrsearch.ingest.ray_engine import _last_records, _passage_row, _to_passage_row
from rrsearch.ingest.validate import Document
from rrsearch.rrs.cli import main


def test_the_last_record_of_a_repeated_id_wins_across_shards_and_files():
    winners = _last_records(
        ["a.jsonl", "a.jsonl", "b.csv"], [["x", 1], ["y", 2]], [["x", 9], ["z", 10]], [["y", 2], ["w", 3]]
    )
    assert winners == {"x": ("a.jsonl", 9), "y": ("b.csv", 2)}  # z and w are not repeated: they do not travel


def test_a_passage_row_survives_the_trip_between_stages():
    doc = Document(id="d/1", title="T", text="some text é", metadata={"k": [1, {"n": None}]})
    row = PassageRow(doc, Passage(1, 3, "text é", "T\ntext é", 5, 11), "d/1#1", "h" * 32, "/x/a.jsonl", 7)
    back = _to_passage_row(json.loads(json.dumps(_passage_row(4, row))))
    assert (back.id, back.hash, back.source, back.line) == (row.id, row.hash, row.source, row.line)
    assert (back.doc.id, back.doc.title, back.doc.metadata) == (doc.id, doc.title, doc.metadata)
    assert (back.passage.chunk, back.passage.chunk_count, back.passage.text) == (1, 3, "text é")


def test_ray_options_without_the_ray_engine_are_refused(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": 1, "text": "x"}\n')
    result = CliRunner().invoke(main, ["ingest", str(corpus), "--encoders", "2", "--ray-address", "auto"])
    assert result.exit_code == 2
    assert "--ray-address, --encoders only apply to --engine ray" in result.output


STATS = "RAY_USAGE_STATS_ENABLED"


def test_a_ray_we_start_sends_no_usage_stats_and_one_we_join_keeps_its_choice(monkeypatch):
    import ray

    from rrsearch.ingest import ray_engine

    seen: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda address=None, **_: seen.append((address, os.environ.get(STATS))))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.delenv(STATS, raising=False)
    assert ray_engine._connect("ray://head:10001", log=lambda _m: None)
    assert ray_engine._connect(None, log=lambda _m: None)
    monkeypatch.setenv(STATS, "1")  # the user's own choice stands
    assert ray_engine._connect(None, log=lambda _m: None)
    assert seen == [("ray://head:10001", None), (None, "0"), (None, "1")]
