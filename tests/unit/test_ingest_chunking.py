"""Chunk boundaries, sizes, overlap and parent ids (pure logic + the packaged tokenizer)."""

import itertools
from types import SimpleNamespace

import pytest

from rrsearch.ingest.chunking import Chunker, passage_budget, plan_windows
from rrsearch.ingest.ids import content_hash, derive_doc_id, passage_id


def _words(n_words: int, pieces: int = 1) -> list[int]:
    """word_ids for n_words words of ``pieces`` word pieces each."""
    return [w for w in range(n_words) for _ in range(pieces)]


def test_short_input_is_one_window_and_empty_is_none():
    assert plan_windows(_words(10), size=16, overlap=4) == [(0, 10)]
    assert plan_windows(_words(16), size=16, overlap=4) == [(0, 16)]
    assert plan_windows([], size=16, overlap=4) == []


@pytest.mark.parametrize("n,size,overlap", [(100, 16, 4), (1000, 254, 32), (257, 254, 32), (50, 10, 0)])
def test_windows_cover_everything_within_size_with_overlap(n, size, overlap):
    windows = plan_windows(_words(n), size=size, overlap=overlap)
    assert windows[0][0] == 0 and windows[-1][1] == n
    assert all(0 < end - start <= size for start, end in windows)
    for (s1, e1), (s2, _e2) in itertools.pairwise(windows):
        assert s1 < s2 <= e1, "no gap, always progress"
        assert e1 - s2 == overlap  # one-piece words: exactly the overlap


def test_boundaries_do_not_split_multi_piece_words():
    word_ids = _words(60, pieces=3)  # every word is 3 pieces
    windows = plan_windows(word_ids, size=20, overlap=5)
    for start, end in windows:
        assert start == 0 or word_ids[start] != word_ids[start - 1]
        assert end == len(word_ids) or word_ids[end] != word_ids[end - 1]
        assert end - start <= 20


def test_a_giant_word_is_cut_rather_than_looping():
    windows = plan_windows([0] * 50, size=16, overlap=4)
    assert windows[-1][1] == 50 and all(end - start <= 16 for start, end in windows)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="size must be positive, got 0"):
        plan_windows(_words(5), size=0, overlap=0)
    with pytest.raises(ValueError, match=r"overlap must be in \[0, size\), got 8 for size 8"):
        plan_windows(_words(5), size=8, overlap=8)


def test_budget_leaves_room_for_special_tokens_and_prefix():
    assert passage_budget(max_seq_length=256, special_tokens=2, prefix_tokens=0, chunk_tokens=None) == 254
    assert passage_budget(max_seq_length=256, special_tokens=2, prefix_tokens=20, chunk_tokens=None) == 234
    assert passage_budget(max_seq_length=256, special_tokens=2, prefix_tokens=0, chunk_tokens=100) == 100


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from rrsearch.core.encoders import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path("all-MiniLM-L6-v2"))


def _doc(text, title=""):
    return SimpleNamespace(text=text, title=title)


def test_real_tokenizer_passages_fit_the_model_and_are_exact_slices(tokenizer):
    chunker = Chunker(tokenizer, max_seq_length=256, overlap=32)
    text = " ".join(
        f"Sentence {i} mentions photosynthesis, chlorophyll and unbelievably long words." for i in range(200)
    )
    title = "A study of leaves"
    [passages] = chunker.split([_doc(text, title)])
    assert len(passages) > 5
    assert [p.chunk for p in passages] == list(range(len(passages)))
    assert {p.chunk_count for p in passages} == {len(passages)}
    for p in passages:
        assert text[p.start_char : p.end_char] == p.text
        assert p.embed_text == f"{title}\n{p.text}"
        assert len(tokenizer(p.embed_text)["input_ids"]) <= 256  # with [CLS]/[SEP]: nothing truncated
    assert passages[0].start_char == 0 and passages[-1].end_char == len(text.rstrip())
    for a, b in itertools.pairwise(passages):
        assert b.start_char < a.end_char  # neighbours overlap
        assert text[b.start_char - 1] == " "  # and start on a word


def test_default_size_fits_max_seq_length_and_short_docs_stay_whole(tokenizer):
    chunker = Chunker(tokenizer, max_seq_length=256, special_tokens=2)
    assert chunker.default_size == 254
    [[only]] = chunker.split([_doc("Short text.", "T")])
    assert (only.chunk, only.chunk_count, only.text) == (0, 1, "Short text.")


def test_chunk_tokens_and_prompt_shrink_passages(tokenizer):
    text = " ".join(["word"] * 500)
    small = Chunker(tokenizer, max_seq_length=256, chunk_tokens=50, overlap=10).split([_doc(text)])[0]
    assert all(len(tokenizer(p.text, add_special_tokens=False)["input_ids"]) <= 50 for p in small)
    prompted = Chunker(tokenizer, max_seq_length=256, prompt="passage: ").split([_doc(text)])[0]
    assert all(len(tokenizer("passage: " + p.text)["input_ids"]) <= 256 for p in prompted)


def test_passage_ids_keep_the_parent_and_hashes_track_content():
    assert passage_id("doc-1", 0) == "doc-1#0" and passage_id("a#b", 3) == "a#b#3"
    base = {"title": "t", "text": "x", "metadata": {"a": 1}, "chunk": 0, "chunk_count": 1}
    assert content_hash(**base) == content_hash(**{**base, "metadata": {"a": 1}})
    assert content_hash(**base) != content_hash(**{**base, "text": "y"})
    assert content_hash(**base) != content_hash(**{**base, "chunk_count": 2})
    assert content_hash(**base) != content_hash(**base, prompt="passage: ")
    assert derive_doc_id("t", "x") == derive_doc_id("t", "x") != derive_doc_id("t", "y")
