"""``rrs train-encoder`` end to end, without click: the shared run (``training/run.py``:
judgments -> index check -> mining of hard negatives and title queries -> training) -> the model
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
from pathlib import Path

from rrsearch.core.settings import Settings
from rrsearch.training.encoder import EncoderConfig, train_encoder
from rrsearch.training.encoder_card import write_encoder_card
from rrsearch.training.fit import split_heldout
from rrsearch.training.mining import MiningConfig
from rrsearch.training.run import TrainingRun, mining_config_from

DOMAIN_CHECK_TEXTS = 48  # held-out passages added to the export's check texts


def encoder_mining_config(settings: Settings, **overrides) -> MiningConfig:
    """Mining for the bi-encoder: its own rank range, negative and title-query counts."""
    return mining_config_from(settings, EncoderConfig.SETTINGS_PREFIX, **overrides)


def run_encoder_training(
    source: Path,
    settings: Settings,
    *,
    alias: str,
    output_dir: Path,
    mining: MiningConfig | None = None,
    training: EncoderConfig | None = None,
    export: bool = True,
    split: str = "train",
    skip_missing: bool = False,
    progress: bool = True,
    es=None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train a bi-encoder on ``source``'s judgments over ``alias``; return the model card's facts.

    Raises ``DatasetError`` (bad judgments), ``MiningError`` (alias missing or empty, judged
    ids not in it), ``TrainingError`` (base model) before any long work, ``ExportMismatch``
    when the ONNX export disagrees with the trained model."""
    training = training or EncoderConfig.from_settings(settings)
    run = TrainingRun(Path(source), settings, alias, Path(output_dir), split, skip_missing, progress, es, log)
    gathered = run.gather(mining or encoder_mining_config(settings), eval_depth=training.eval_depth)
    result = train_encoder(
        gathered.mined, training, output_dir, extra_train=gathered.titles, progress=progress, log=log
    )
    if result.after and result.before and result.after.get("ndcg@10", 0) <= result.before.get("ndcg@10", 0):
        log(
            f"warning: held-out nDCG@10 did not improve ({result.before['ndcg@10']} -> {result.after['ndcg@10']}); "
            f"the base encoder may serve better"
        )
    _, heldout = split_heldout(list(gathered.mined), training.eval_fraction, training.seed)
    onnx = export_checked(output_dir, heldout, log=log) if export else {}
    facts = {"kind": "bi-encoder", **run.facts(gathered, result), "onnx": onnx}
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
