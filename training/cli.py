"""Click commands of the training package (training, model export), added to ``rrs`` by ``rrs/cli.py``.

    rrs train-reranker DATASET --index ALIAS --output DIR [--negatives N] [--max-rank R] ...
    rrs train-encoder DATASET --index ALIAS --output DIR [--negatives N] ...
    rrs adapt DATASET --index ALIAS [--output DIR]       the whole learning loop, resumable
    rrs rerank export-onnx MODEL_DIR [--no-quantize]     ONNX fp32 + int8 for CPU serving
    rrs encoder export-onnx MODEL [--output DIR]         the bi-encoder, the same way

DATASET is a BEIR folder (``queries.jsonl``, ``qrels/<split>.tsv``) or a JSONL file of
``{"query", "positive", "negatives"}``. Every option defaults to its ``RRS_TRAIN_*``
setting. Exit codes: 0 trained; 2 bad input (judgments, alias, options; nothing trained);
1 training failed; 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from rrsearch.core.console import fail, load_settings
from rrsearch.core.settings import BLEND_HELDOUT_FRACTION, TrainingSettings

D = TrainingSettings()  # the defaults the help shows are the settings' own


def _stacked(*decorators):
    """The decorators as one, in the order they would be written above a function."""

    def decorate(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return decorate


def _judgments_and_output(output: str, overwrite: str = "Write into a non-empty --output folder."):
    """The options both training commands open with: the judgments, their alias, the model folder."""
    return _stacked(
        click.argument("dataset", type=click.Path(path_type=Path)),
        click.option(
            "--index", "alias", help="Alias holding the corpus the judgments refer to (default RRS_INDEX_ALIAS)."
        ),
        click.option(
            "--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help=output
        ),
        click.option("--overwrite", is_flag=True, help=overwrite),
        click.option("--split", default="train", show_default=True, help="qrels/<split>.tsv of a BEIR folder."),
    )


_run_flags = _stacked(  # ... and the flags both take
    click.option(
        "--skip-missing", is_flag=True, help="Drop judgments whose document is not in the index (else: error)."
    ),
    click.option("--no-progress", is_flag=True, help="No progress bars."),
    click.option("--json", "as_json", is_flag=True, help="Print the run's facts (model card data) as JSON."),
)


@click.command("train-reranker")
@_judgments_and_output(
    "Folder for the trained model (loadable by path by the service and eval).",
    overwrite="Write into a non-empty --output folder (files of the same name are replaced).",
)
@click.option(
    "--base", "train_base_model", help="Base model, name or path [packaged all-MiniLM-L6-v2 as a new cross-encoder]."
)
@click.option(
    "--recipe",
    "train_recipe",
    type=click.Choice(["auto", "quick", "strong"]),
    help=f"Values for the options below left unset: strong (confirmed on SciFact) or quick; auto: strong "
    f"on a GPU [{D.train_recipe}].",
)
@click.option("--negatives", "train_negatives", type=int, help=f"Mined hard negatives per query [{D.train_negatives}].")
@click.option(
    "--min-rank", "train_min_rank", type=int, help=f"Best hybrid rank a negative may have [{D.train_min_rank}]."
)
@click.option(
    "--max-rank", "train_max_rank", type=int, help=f"Worst hybrid rank a negative may have [{D.train_max_rank}]."
)
@click.option(
    "--title-queries",
    "train_title_queries",
    type=int,
    help=f"Extra training queries from corpus titles (title -> its text); 0 = none [{D.train_title_queries}].",
)
@click.option(
    "--sampling",
    "train_negative_sampling",
    type=click.Choice(["top", "random"]),
    help=f"Which negatives of the rank range [{D.train_negative_sampling}].",
)
@click.option(
    "--loss",
    "train_loss",
    type=click.Choice(["bce", "mnrl"]),
    help=f"bce or multiple-negatives ranking [{D.train_loss}].",
)
@click.option("--epochs", "train_epochs", type=float, help=f"Training epochs [{D.train_epochs:g}].")
@click.option(
    "--batch-size", "train_batch_size", type=int, help=f"Pairs (bce) or queries (mnrl) per step [{D.train_batch_size}]."
)
@click.option("--lr", "train_learning_rate", type=float, help=f"Peak learning rate [{D.train_learning_rate:g}].")
@click.option(
    "--max-length", "train_max_length", type=int, help=f"Token cap per (query, passage) pair [{D.train_max_length}]."
)
@click.option(
    "--eval-fraction",
    "train_eval_fraction",
    type=float,
    help=f"Share of queries held out for evaluation [{BLEND_HELDOUT_FRACTION:g} when the blend is chosen on them "
    f"(--tune without --cross-fit), else {D.train_eval_fraction:g}].",
)
@click.option(
    "--eval-depth", "train_eval_depth", type=int, help=f"Hybrid candidates per held-out query [{D.train_eval_depth}]."
)
@click.option("--eval-steps", "train_eval_steps", type=int, help="Steps between held-out evaluations [4 per epoch].")
@click.option(
    "--patience",
    "train_early_stopping_patience",
    type=int,
    help=f"Evaluations without improvement before stopping; 0 = off [{D.train_early_stopping_patience}].",
)
@click.option(
    "--seed", "train_seed", type=int, help=f"Seed of the split, sampling, head init and trainer [{D.train_seed}]."
)
@_run_flags
@click.option(
    "--tune/--no-tune",
    default=True,
    show_default=True,
    help="Choose the new model's blend with the hybrid order on the held-out queries (rrs_rerank.json).",
)
@click.option(
    "--cross-fit/--no-cross-fit",
    "train_cross_fit",
    default=None,
    help=f"Choose the blend on out-of-fold scores of every judged query: one more training per fold "
    f"[{'on' if D.train_cross_fit else 'off'}; RRS_TRAIN_CROSS_FIT].",
)
@click.option("--folds", "train_cross_fit_folds", type=int, help=f"Folds of --cross-fit [{D.train_cross_fit_folds}].")
def train_reranker_command(dataset, as_json, tune, **options) -> None:
    """Fine-tune a cross-encoder on your judgments, with hard negatives from your index.

    Mines negatives with the service's own hybrid retrieval over ALIAS (top results that
    are not judged positive), trains with sentence-transformers' CrossEncoderTrainer
    (held-out reranking evaluation, best checkpoint, early stopping, seed; bf16/fp16 on
    a GPU), and writes a model folder with a model card to --output.
    """
    from rrsearch.training.reranker import TrainConfig, with_blend_heldout, with_recipe
    from rrsearch.training.reranker_run import run_training

    settings, run = _run_options(options, recipe=with_recipe)
    cross_fit = settings.train_cross_fit_folds if settings.train_cross_fit and tune else 0
    settings = with_blend_heldout(settings, tuned_on_heldout=tune and not cross_fit)
    with _failures("interrupted; nothing was saved to --output"):
        facts = run_training(
            dataset,
            settings,
            training=TrainConfig.from_settings(settings),
            tune_blend=tune,
            cross_fit=cross_fit,
            **run,
        )
    result = _saved(facts, as_json, run["output_dir"])
    if result is None:
        return
    click.echo(
        f"trained {result['steps']} steps on {result['train_queries']} queries in {result['seconds']} s "
        f"on {result['device']} ({result['precision']}){', stopped early' if result['stopped_early'] else ''}"
    )
    if result["after"]:
        first, before, after = (result[k].get("ndcg@10", 0.0) for k in ("first_stage", "before", "after"))
        click.echo(
            f"held-out nDCG@10 ({result['heldout_queries']} queries): hybrid order {first:.4f}, "
            f"base model {before:.4f} -> trained {after:.4f}"
        )


@click.command("train-encoder")
@_judgments_and_output("Folder for the trained bi-encoder (RRS_BI_ENCODER=DIR serves it).")
@click.option("--base", "train_encoder_base_model", help="Bi-encoder to fine-tune [RRS_BI_ENCODER].")
@click.option(
    "--negatives",
    "train_encoder_negatives",
    type=int,
    help=f"Mined hard negatives per row [{D.train_encoder_negatives}].",
)
@click.option(
    "--min-rank",
    "train_encoder_min_rank",
    type=int,
    help=f"Best hybrid rank a negative may have [{D.train_encoder_min_rank}].",
)
@click.option(
    "--max-rank",
    "train_encoder_max_rank",
    type=int,
    help=f"Worst hybrid rank a negative may have [{D.train_encoder_max_rank}].",
)
@click.option(
    "--title-queries",
    "train_encoder_title_queries",
    type=int,
    help=f"Extra queries from corpus titles [{D.train_encoder_title_queries}].",
)
@click.option("--epochs", "train_encoder_epochs", type=float, help=f"Training epochs [{D.train_encoder_epochs:g}].")
@click.option(
    "--batch-size",
    "train_encoder_batch_size",
    type=int,
    help=f"Rows per step (in-batch negatives) [{D.train_encoder_batch_size}].",
)
@click.option(
    "--lr", "train_encoder_learning_rate", type=float, help=f"Peak learning rate [{D.train_encoder_learning_rate:g}]."
)
@click.option(
    "--max-seq-length",
    "train_encoder_max_seq_length",
    type=int,
    help="Token cap per text while training [the model's own].",
)
@click.option(
    "--eval-fraction", "train_eval_fraction", type=float, help=f"Share of queries held out [{D.train_eval_fraction:g}]."
)
@click.option("--eval-steps", "train_eval_steps", type=int, help="Steps between held-out evaluations [4 per epoch].")
@click.option("--seed", "train_seed", type=int, help=f"Seed of the split, sampling and trainer [{D.train_seed}].")
@click.option("--no-export", is_flag=True, help="Skip the ONNX export (fp32 + int8).")
@_run_flags
def train_encoder_command(dataset, as_json, no_export, **options) -> None:
    """Fine-tune the bi-encoder on your judgments and title queries, with hard negatives from your index.

    MultipleNegativesRankingLoss (in-batch negatives plus mined hard negatives) with
    sentence-transformers' trainer; held-out judged queries pick the best checkpoint. Writes
    the model, its ONNX export (fp32 + int8, checked) and a model card to --output. Serve it
    with RRS_BI_ENCODER=DIR rrs ingest CORPUS --index ALIAS --reindex.
    """
    from rrsearch.training.encoder import EncoderConfig
    from rrsearch.training.encoder_run import encoder_mining_config, run_encoder_training

    settings, run = _run_options(options, encoder_mining_config)
    with _failures("interrupted; the --output folder may be incomplete", quiet_stdout=as_json):
        facts = run_encoder_training(
            dataset, settings, training=EncoderConfig.from_settings(settings), export=not no_export, **run
        )
    result = _saved(facts, as_json, run["output_dir"])
    if result is None:
        return
    click.echo(
        f"trained {result['steps']} steps on {result['train_queries']} judged + {result['title_queries']} "
        f"title queries in {result['seconds']} s on {result['device']} ({result['precision']})"
    )
    if result["after"]:
        click.echo(
            f"held-out nDCG@10 ({result['heldout_queries']} queries, {result['heldout_corpus']} passages): "
            f"base {result['before'].get('ndcg@10', 0):.4f} -> trained {result['after'].get('ndcg@10', 0):.4f}"
        )
    click.echo(f"serve it: RRS_BI_ENCODER={run['output_dir']} rrs ingest CORPUS --index {run['alias']} --reindex")


def _check_output(output_dir: Path, overwrite: bool) -> None:
    """Refuse an --output that is a file, or a non-empty folder without --overwrite."""
    if output_dir.exists() and not output_dir.is_dir():
        fail(f"--output {output_dir}: exists and is not a folder", 2)
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        fail(f"--output {output_dir}: folder is not empty (pass --overwrite to write into it anyway)", 2)


RUN_OPTIONS = ("alias", "output_dir", "overwrite", "split", "skip_missing", "no_progress")


def _run_options(options: dict, mining_from=None, recipe=None) -> tuple:
    """A training command's options split in two: each of the rest names its ``train_*`` setting
    (the settings are made of them); :data:`RUN_OPTIONS` say where and how to run, as both runs
    take them, with the mining options (``mining_from``: the bi-encoder's; default the
    reranker's), after ``recipe`` (the reranker's ``with_recipe``) fills in what nobody set.
    A bad option or --output exits 2."""
    from rrsearch.training.run import mining_config_from

    alias, output_dir, overwrite, split, skip_missing, no_progress = (options.pop(name) for name in RUN_OPTIONS)
    settings = load_settings(**options)
    if recipe is not None:
        settings = recipe(settings)
    _check_output(output_dir, overwrite)
    try:
        mining = (mining_from or mining_config_from)(settings)
    except ValueError as exc:
        fail(f"invalid option: {exc}", 2)
    run = {
        "alias": alias or settings.index_alias,
        "output_dir": output_dir,
        "split": split,
        "mining": mining,
        "skip_missing": skip_missing,
        "progress": not no_progress,
        "log": _log,
    }
    return settings, run


def _saved(facts: dict, as_json: bool, output_dir: Path) -> dict | None:
    """--json: the run's facts as JSON, and nothing more to say (None); else the saved line, and
    the result for the command to say more of."""
    if as_json:
        click.echo(json.dumps(facts, indent=2, default=str))
        return None
    click.echo(f"saved {output_dir} (model card: {output_dir / 'README.md'})")
    return facts["result"]


def _log(message: str) -> None:
    click.echo(message, err=True)


@contextlib.contextmanager
def _failures(interrupted: str, *, quiet_stdout: bool = False, bad_input: tuple[type[Exception], ...] = ()):
    """Our errors as the commands' exit codes: 2 bad input (judgments, alias, options: nothing
    trained; ``bad_input`` adds error types), 1 a step failed, 130 interrupted (``interrupted``
    says what is left). ``quiet_stdout`` (--json): the trainers print their log lines on stdout,
    so they go to stderr and stdout keeps the JSON alone."""
    from rrsearch.core.errors import DatasetError, MiningError, RRSError

    bad: tuple[type[Exception], ...] = (DatasetError, MiningError, *bad_input)
    try:
        with contextlib.redirect_stdout(sys.stderr) if quiet_stdout else contextlib.nullcontext():
            yield
    except bad as exc:
        fail(str(exc), 2)
    except RRSError as exc:  # TrainingError, ExportMismatch, ClusterUnavailable, RerankerUnavailable (tuning), ...
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail(interrupted, 130)


@click.command("adapt")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--index", "alias", help="Alias holding the corpus (default RRS_INDEX_ALIAS); reindexed in place.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the models and adapt.json (the resume record) [RRS_HOME/adapt/ALIAS].",
)
@click.option("--encoder-epochs", type=float, help="Bi-encoder epochs [RRS_TRAIN_ENCODER_EPOCHS].")
@click.option("--encoder-title-queries", type=int, help="Bi-encoder title queries [RRS_TRAIN_ENCODER_TITLE_QUERIES].")
@click.option("--reranker-base", help="Cross-encoder base to fine-tune [RRS_TRAIN_BASE_MODEL].")
@click.option("--reranker-epochs", type=float, help="Reranker epochs [RRS_TRAIN_EPOCHS].")
@click.option("--reranker-title-queries", type=int, help="Reranker title queries [RRS_TRAIN_TITLE_QUERIES].")
@click.option("--eval-steps", type=int, help="Steps between held-out evaluations, both trainers [4 per epoch].")
@click.option(
    "--folds", type=click.IntRange(2, 10), help="Folds of the cross-fitted blend [RRS_TRAIN_CROSS_FIT_FOLDS]."
)
@click.option(
    "--no-cross-fit", is_flag=True, help="Choose the blend on the held-out slice instead (no fold trainings)."
)
@click.option("--no-export", is_flag=True, help="Skip the bi-encoder's ONNX export.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON instead of the table.")
def adapt_command(
    dataset,
    alias,
    output,
    encoder_epochs,
    encoder_title_queries,
    reranker_base,
    reranker_epochs,
    reranker_title_queries,
    eval_steps,
    folds,
    no_cross_fit,
    no_export,
    no_progress,
    as_json,
) -> None:
    """Adapt search to DATASET (a BEIR folder with train and test judgments): train the
    bi-encoder, reindex ALIAS with it, train the reranker on the new index with a
    cross-fitted blend, and show each stage before and after on the test split.

    Resumable: run it again and finished steps are not redone. Exit codes: 0 done; 2 bad
    input (dataset, alias, options); 1 a step failed; 130 interrupted.
    """
    from rrsearch.core.errors import IndexMissing
    from rrsearch.training.adapt import STATE_FILE, render_table, run_adapt

    settings = load_settings(train_eval_steps=eval_steps)
    alias = alias or settings.index_alias
    output = output or settings.home / "adapt" / alias
    encoder_overrides = {"train_encoder_epochs": encoder_epochs, "train_encoder_title_queries": encoder_title_queries}
    reranker_overrides = {
        "train_base_model": reranker_base,
        "train_epochs": reranker_epochs,
        "train_title_queries": reranker_title_queries,
    }
    interrupted = f"interrupted; run it again to resume ({output / STATE_FILE} records the finished steps)"
    with _failures(interrupted, quiet_stdout=as_json, bad_input=(IndexMissing,)):
        outcome = run_adapt(
            dataset,
            settings,
            alias=alias,
            output=output,
            encoder_overrides=encoder_overrides,
            reranker_overrides=reranker_overrides,
            folds=0 if no_cross_fit else folds or settings.train_cross_fit_folds,
            export=not no_export,
            progress=not no_progress,
            log=_log,
        )
    click.echo(json.dumps(outcome, indent=2, default=str) if as_json else render_table(outcome))


@click.group("rerank")
def rerank() -> None:
    """Cross-encoder tools."""


@rerank.command("export-onnx")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--quantize/--no-quantize", default=True, show_default=True, help="Also write the int8 model.")
def export_onnx_command(model_dir: str, quantize: bool) -> None:
    """Export MODEL_DIR's cross-encoder to MODEL_DIR/onnx/model.onnx (+ model_qint8.onnx).

    Serve it with RRS_RERANK_BACKEND=onnx (RRS_RERANK_ONNX_FILE picks fp32 or int8).
    """
    from rrsearch.core.errors import ExportMismatch
    from rrsearch.core.onnx_export import export_onnx

    try:
        result = export_onnx(model_dir, quantize=quantize)
    except (FileNotFoundError, ExportMismatch) as exc:
        fail(str(exc), 2)
    fused = ", ".join(f"{op} x{n}" for op, n in result.fused_ops.items()) or "none (model family not fusable)"
    click.echo(f"exporter: {result.exporter}; fused: {fused}")
    click.echo(f"fp32 vs torch: max logit difference {result.max_logit_difference:.1e}")
    if result.int8_max_logit_difference is not None:
        click.echo(f"int8 vs torch: max logit difference {result.int8_max_logit_difference:.3f}")
    for path in result.paths:
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@click.group("encoder")
def encoder() -> None:
    """Bi-encoder tools."""


@encoder.command("export-onnx")
@click.argument("model")
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    help="Folder to write (default: MODEL, when it is a "
    "local folder). Required for the packaged all-MiniLM-L6-v2 and hub names.",
)
@click.option("--quantize/--no-quantize", default=True, show_default=True, help="Also write the int8 model.")
@click.option(
    "--sample",
    "sample_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Text file, one passage per line, to check the export on (default: built-in texts).",
)
def encoder_export_command(model: str, output: str | None, quantize: bool, sample_file: str | None) -> None:
    """Export the bi-encoder MODEL (name or folder) to OUTPUT/onnx/model.onnx (+ model_qint8.onnx),
    pooling and normalisation included, checked against sentence-transformers' own vectors.

    Serve it with RRS_BI_ENCODER=OUTPUT RRS_BI_ENCODER_BACKEND=onnx (RRS_BI_ENCODER_ONNX_FILE picks
    fp32 or int8); torch is then not loaded.
    """
    from rrsearch.core.encoder_export import export_bi_encoder
    from rrsearch.core.errors import ExportMismatch

    sample = None
    if sample_file:
        sample = [line.strip() for line in Path(sample_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        if not sample:
            fail(f"{sample_file} holds no text", 2)
    try:
        result = export_bi_encoder(model, output, quantize=quantize, sample=sample)
    except (OSError, ExportMismatch) as exc:
        fail(str(exc), 2)
    fused = ", ".join(f"{op} x{n}" for op, n in result.fused_ops.items()) or "none (model family not fusable)"
    click.echo(f"exporter: {result.exporter}; fused: {fused}")
    for name, figures in result.checks.items():
        click.echo(
            f"{name}: cosine to sentence-transformers min {figures['min_cosine']:.4f}, "
            f"mean {figures['mean_cosine']:.4f} (at least {figures['required']})"
        )
    for path in result.paths:
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    click.echo(f"serve it with RRS_BI_ENCODER={result.folder} RRS_BI_ENCODER_BACKEND=onnx")


commands: list = [train_reranker_command, train_encoder_command, adapt_command, rerank, encoder]
