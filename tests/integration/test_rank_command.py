"""`rrs rank QUERY FILE`: one document's paragraphs ranked by the cross-encoder, no index."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sentence_transformers import CrossEncoder

from rrsearch.rrs.cli import main
from rrsearch.service.paragraphs import split_html, split_text

PARAGRAPHS = [
    "Sourdough needs a lively starter fed with flour and water.",
    "Saturn's rings are made of ice and rock.",
    "Bake the loaf in a hot oven with steam for a crisp crust.",
]


def test_rank_text_markdown_and_html_files(tmp_path, tiny_cross_encoder_dir, monkeypatch):
    monkeypatch.setenv("RRS_CROSS_ENCODER", str(tiny_cross_encoder_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("RRS_DEVICE", "cpu")
    expected = (
        CrossEncoder(str(tiny_cross_encoder_dir), device="cpu")
        .predict([("how do I bake bread", p) for p in PARAGRAPHS])
        .tolist()
    )
    files = {
        "doc.txt": "\n\n".join(PARAGRAPHS) + "\n",
        "doc.md": "\n\n".join(PARAGRAPHS),
        "doc.html": "<html><body>" + "".join(f"<p>{p}</p>" for p in PARAGRAPHS) + "<script>x()</script></body></html>",
    }
    for name, content in files.items():
        path = tmp_path / name
        path.write_text(content)
        result = CliRunner().invoke(main, ["rank", "how do I bake bread", str(path), "--json"])
        assert result.exit_code == 0, result.output
        ranked = json.loads(result.stdout)
        assert [r["text"] for r in ranked] == [PARAGRAPHS[r["index"]] for r in ranked]
        assert [r["score"] for r in ranked] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    top = CliRunner().invoke(main, ["rank", "how do I bake bread", str(tmp_path / "doc.txt"), "--top", "1"])
    assert top.exit_code == 0 and top.stdout.count("¶") == 1


def test_rank_refuses_what_it_cannot_read(tmp_path, tiny_cross_encoder_dir, monkeypatch):
    monkeypatch.setenv("RRS_CROSS_ENCODER", str(tiny_cross_encoder_dir))
    empty, latin, pdf = tmp_path / "empty.txt", tmp_path / "latin.txt", tmp_path / "doc.pdf"
    empty.write_text("\n\n  \n")
    latin.write_bytes("café".encode("latin-1"))
    pdf.write_bytes(b"%PDF-1.4")
    for path, message in [(empty, "no text to rank"), (latin, "not UTF-8"), (pdf, "PDF is not read here")]:
        result = CliRunner().invoke(main, ["rank", "q", str(path)])
        assert result.exit_code == 2 and message in result.output, result.output


def test_paragraph_splitting():
    assert split_text("a\r\n\r\nb\n \nc") == ["a", "b", "c"]
    assert split_text("One. Two. Three.", max_chars=9) == ["One. Two.", "Three."]
    assert split_html("<h1>T</h1><p>x <b>y</b>.</p><ul><li>i</li></ul><style>p{}</style>") == ["T", "x y.", "i"]
    assert split_html("plain\n\ntext") == ["plain", "text"]
