"""The run summary: counts, end-to-end rate and per-stage throughput."""

from rrsearch.ingest.report import IngestReport, StageClock


def test_stage_clock_and_summary():
    clock = StageClock()
    with clock.stage("encode", 100):
        pass
    clock.seconds["encode"] = 2.0  # as if encoding took two busy seconds
    report = IngestReport(
        alias="docs",
        index_name="docs-v1",
        mode="build",
        read=12,
        documents=10,
        rejected=2,
        chunks=100,
        encoded=100,
        indexed=100,
        completed=True,
        alias_moved=True,
        wall_seconds=4.0,
        stage_seconds=dict(clock.seconds),
        stage_items=dict(clock.items),
        reject_examples=[{"source": "a.jsonl", "line": 3, "reason": "field 'text': missing"}],
    )
    assert report.stage_throughput["encode"] == 50.0 and report.stage_throughput["read"] == 0.0
    assert report.passages_per_second == 25.0
    text = report.summary()
    assert "alias docs -> docs-v1 (build, alias moved)" in text
    assert "rejected 2" in text and "a.jsonl:3: field 'text': missing" in text
    assert "encode" in text and "50.0 passages/s" in text
    assert report.to_dict()["stage_throughput"]["encode"] == 50.0
