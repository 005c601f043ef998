"""``rrs train-encoder`` end to end, without click: judgments -> index check -> mining
(hard negatives and title queries, the same as the reranker's) -> training -> the model
folder with its ONNX export (fp32 and int8, checked as ``rrs encoder export-onnx`` checks)
and its model card.

Serve the result by reindexing with it: ``RRS_BI_ENCODER=DIR rrs ingest CORPUS --index ALIAS
--reindex``; the new index version's ``_meta`` records the model and the service refuses a
query encoder that does not match it.

Example::

    facts = run_encoder_training(Path("data/scifact"), Settings(), alias="scifact",
                                 output_dir=Path("models/scifact-encoder"))
    facts["result"]["after"]["ndcg@10"], facts["onnx"]["onnx/model_qint8.onnx"]["min_cosine"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from rrsearch.core.settings import Settings
from rrsearch.training.encoder_card import write_encoder_card
from rrsearch.training.encoder_trainer import EncoderConfig, train_encoder
from rrsearch.training.judgments import load_judgments
from rrsearch.training.mining import MiningConfig
from rrsearch.training.run import collection_fingerprint, gather_training_data, trained_queries_facts
from rrsearch.training.trainer import split_heldout

DOMAIN_CHECK_TEXTS = 48  # held-out passages added to the export's check texts


def encoder_mining_config(settings: Settings, **overrides) -> MiningConfig:
    """Mining for the bi-encoder: its own rank range, negative and title-query counts."""
    values = {
        "negatives": settings.train_encoder_negatives,
        "min_rank": settings.train_encoder_min_rank,
        "max_rank": settings.train_encoder_max_rank,
        "sampling": settings.train_negative_sampling,
        "seed": settings.train_seed,
        "title_queries": settings.train_encoder_title_queries,
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return MiningConfig(**values)


def run_encoder_training(
    source: Path,
    settings: Settings,
    *,
    alias: str,
    output_dir: Path,
    split: str = "train",
    mining: MiningConfig | None = None,
    training: EncoderConfig | None = None,
    skip_missing: bool = False,
    progress: bool = True,
    export: bool = True,
    es=None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train a bi-encoder on ``source``'s judgments over ``alias``; return the model card's facts.

    Raises ``DatasetError`` (bad judgments), ``MiningError`` (alias missing or empty, judged
    ids not in it), ``TrainingError`` (base model) before any long work, ``ExportMismatch``
    when the ONNX export disagrees with the trained model."""
    from rrsearch.core.es_client import make_client

    mining = mining or encoder_mining_config(settings)
    training = training or EncoderConfig.from_settings(settings)
    source = Path(source)
    queries = load_judgments(source, split)
    collection = collection_fingerprint(source, queries)
    own_client = es is None
    es = es or make_client(settings, request_timeout=max(settings.es_request_timeout_s, 60.0))
    try:
        depth = max(mining.max_rank, training.eval_depth)
        gathered = gather_training_data(
            queries,
            settings,
            alias=alias,
            mining=mining,
            depth=depth,
            es=es,
            skip_missing=skip_missing,
            progress=progress,
            log=log,
        )
    finally:
        if own_client:
            es.close()
    mined = gathered.mined
    result = train_encoder(mined, training, output_dir, extra_train=gathered.titles, progress=progress, log=log)
    if result.after and result.before and result.after.get("ndcg@10", 0) <= result.before.get("ndcg@10", 0):
        log(
            f"warning: held-out nDCG@10 did not improve ({result.before['ndcg@10']} -> {result.after['ndcg@10']}); "
            f"the base encoder may serve better"
        )
    train, heldout = split_heldout(list(mined), training.eval_fraction, training.seed)
    onnx = export_checked(output_dir, heldout, log=log) if export else {}
    facts = {
        "kind": "bi-encoder",
        "name": Path(output_dir).name,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "base_model": training.base_model,
        "data": {
            "source": source.resolve().name,
            "format": f"BEIR ({split} split)" if source.is_dir() else "JSONL",
            "queries": len(mined),
            "alias": alias,
            "index": gathered.index,
            "dropped_missing": len(gathered.missing),
            **trained_queries_facts(collection, train),
        },
        "mining": {
            **asdict(mining),
            "mined_total": gathered.mined_total,
            "seconds": gathered.mining_seconds,
            "depth": depth,
            "title_queries_made": len(gathered.titles),
        },
        "result": result.to_dict(),
        "onnx": onnx,
    }
    write_encoder_card(Path(output_dir), facts)
    return facts


def export_checked(output_dir: Path, heldout, *, log: Callable[[str], None] = print) -> dict:
    """The ONNX export (fp32 + int8) written into the model folder, checked on the export's
    own texts plus a few of the domain's passages; returns each file's check figures."""
    from rrsearch.core.encoder_export import CHECK_TEXTS, export_bi_encoder

    domain = [text for query in heldout for text in query.positives][:DOMAIN_CHECK_TEXTS]
    exported = export_bi_encoder(str(output_dir), output_dir, quantize=True, sample=[*CHECK_TEXTS, *domain])
    for name, figures in exported.checks.items():
        log(f"{name}: cosine to the trained model min {figures['min_cosine']:.4f}, mean {figures['mean_cosine']:.4f}")
    return exported.checks
