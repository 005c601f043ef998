"""A tiny BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) that the
evaluation and training tests write: twelve short documents on distinct topics, two per
topic, so BM25 and the bi-encoder both have something to tell apart."""

import json

DOCS = [
    ("d1", "Volcanic eruptions", "Basaltic lava flows from shield volcanoes such as those on Hawaii."),
    ("d2", "Honey bees", "Worker bees perform a waggle dance to tell the hive where nectar is."),
    ("d3", "Glaciers", "Glacial ice carves U-shaped valleys and leaves moraines behind."),
    ("d4", "Sourdough bread", "A starter of wild yeast and lactobacilli leavens sourdough loaves."),
    ("d5", "Chess openings", "The Sicilian Defence answers 1.e4 with the c-pawn."),
    ("d6", "Coral reefs", "Reef-building corals host symbiotic algae called zooxanthellae."),
    ("d7", "Bumblebees", "Bumblebees buzz-pollinate tomato flowers by vibrating their flight muscles."),
    ("d8", "Lava tubes", "Lava tubes form when the surface of a lava flow cools and hardens into a roof."),
    ("d9", "Rye bread", "Rye loaves are dense because rye flour holds little gluten."),
    ("d10", "Chess endgames", "In a king and pawn endgame the opposition decides who wins."),
    ("d11", "Ice sheets", "Antarctic ice sheets flow to the sea through fast ice streams."),
    ("d12", "Reef fish", "Parrotfish graze algae off coral and grind it into white sand."),
]


def write_beir(root, *, queries, qrels, split, docs=DOCS):
    """Write the dataset under ``root`` (created) and return ``root``."""
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x, "metadata": {}}) + "\n" for i, t, x in docs)
    )
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries))
    (root / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    )
    return root
