"""``rrs eval``: search quality per configuration on a BEIR-format dataset.

Only parsing and printing live here; the runs are ``evaluation/offline.py``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from rrsearch.evaluation.runner import CONFIGS, FusionParams


def _configs(value: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [c for c in chosen if c not in CONFIGS]
    if unknown or not chosen:
        raise click.BadParameter(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
    return chosen


@click.command("eval")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to evaluate on.")
@click.option(
    "--index", "index_alias", help="Evaluate this alias (already holding the corpus) instead of building one."
)
@click.option(
    "--candidates",
    default=100,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Fused candidates (and reranked depth).",
)
@click.option("--reranker", help="Cross-encoder path or hub name for the +rerank rows (default: none).")
@click.option(
    "--configs", "configs", default=",".join(CONFIGS), show_default=True, callback=lambda _c, _p, v: _configs(v)
)
@click.option("--rrf-k", default=None, type=click.IntRange(1, 10_000), help="RRF constant (default RRS_RRF_K).")
@click.option(
    "--linear-weight", default=0.5, show_default=True, type=click.FloatRange(0, 1), help="kNN's share in linear fusion."
)
@click.option("--normalization", default="minmax", show_default=True, type=click.Choice(["minmax", "zscore"]))
@click.option(
    "--limit", type=click.IntRange(1), help="Only the first N judged queries (quick looks; not for reporting)."
)
@click.option("--output", type=click.Path(path_type=Path), help="Write the JSON here, and the chart next to it (.png).")
@click.option(
    "--compare",
    "compare_path",
    type=click.Path(exists=True, path_type=Path),
    help="A previous run's JSON to diff against.",
)
@click.option("--progress/--no-progress", default=True)
@click.option(
    "--tune-rerank",
    is_flag=True,
    help="Choose --reranker's blend (weight, depth, normalisation) on --split and write it into its folder; "
    "the service applies it on the searched alias only (pass --index with the alias you serve).",
)
@click.option(
    "--tune-fusion",
    is_flag=True,
    help="Choose RRF or linear (and its weight, normalisation) on --split and write it into --index's _meta; "
    "the service then serves it by default.",
)
def eval_command(
    dataset_dir,
    split,
    index_alias,
    candidates,
    reranker,
    configs,
    rrf_k,
    linear_weight,
    normalization,
    limit,
    output,
    compare_path,
    progress,
    tune_rerank,
    tune_fusion,
):
    """Index DATASET_DIR's corpus (once), run its judged queries through the search pipeline
    in every configuration, and report nDCG@10, Recall@100, MRR@10, MAP@100 and latency.

    With --tune-rerank, choose instead how --reranker (a model folder) is blended with the
    hybrid order, on --split (use train; report on test), and store it beside the model.
    With --tune-fusion, choose the fusion on --split and store it in --index's _meta."""
    from rrsearch.core.console import fail, load_settings
    from rrsearch.core.errors import DatasetError, IndexMissing, RerankerUnavailable, RRSError

    settings = load_settings()
    if tune_rerank and (not reranker or not Path(reranker).is_dir()):
        fail("--tune-rerank needs --reranker MODEL_FOLDER (the choice is written into it)", 2)
    if tune_fusion and not index_alias:
        fail("--tune-fusion needs --index ALIAS (the choice is written into its _meta)", 2)
    try:
        if tune_fusion:
            _tune_fusion(settings, dataset_dir, split, index_alias, candidates, limit, output, progress)
            return
        _eval(
            settings,
            dataset_dir,
            split,
            index_alias,
            candidates,
            reranker,
            configs,
            rrf_k,
            linear_weight,
            normalization,
            limit,
            output,
            compare_path,
            progress,
            tune_rerank,
        )
    except (DatasetError, IndexMissing, RerankerUnavailable) as exc:
        fail(str(exc), 2)
    except RRSError as exc:
        fail(str(exc), 1)


def _tune_fusion(settings, dataset_dir, split, alias, candidates, limit, output, progress) -> None:
    from tqdm import tqdm

    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.fusion_tuning import tune_fusion, write_fusion
    from rrsearch.evaluation.offline import open_pipeline

    dataset = load_dataset(dataset_dir, split, check_corpus=False)
    if limit:
        dataset.queries = dict(list(dataset.queries.items())[:limit])
        dataset.qrels = {qid: dataset.qrels[qid] for qid in dataset.queries}
    with (
        open_pipeline(settings, alias=alias, depth=candidates) as job,
        tqdm(total=len(dataset.queries), desc="queries", unit="q", disable=not progress) as bar,
    ):
        chosen, facts = tune_fusion(job.pipeline, dataset, index=alias, candidates=candidates, progress=bar)
        facts["written"] = write_fusion(job.es, alias, facts)
    if output:
        output.write_text(json.dumps(facts, indent=2) + "\n")
    best = facts["grid"][0]
    click.echo(
        f"{alias}: {chosen.method}"
        + (f" (kNN weight {chosen.weight}, {chosen.normalization})" if chosen.method == "linear" else "")
        + f" nDCG@10 {best['ndcg@10']} on {len(dataset.queries)} {split} queries (RRF {facts['rrf']}); "
        f"written to the _meta of {', '.join(facts['written'])}"
    )


def _eval(
    settings,
    dataset_dir,
    split,
    index_alias,
    candidates,
    reranker,
    configs,
    rrf_k,
    linear_weight,
    normalization,
    limit,
    output,
    compare_path,
    progress,
    tune_rerank,
) -> None:
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.offline import evaluate_dataset, tune_reranker
    from rrsearch.evaluation.report import blend_lines, compare, format_table, write_chart, write_json

    dataset = load_dataset(dataset_dir, split)
    if limit:
        dataset.queries = dict(list(dataset.queries.items())[:limit])
        dataset.qrels = {qid: dataset.qrels[qid] for qid in dataset.queries}
    if tune_rerank:
        facts = tune_reranker(
            settings,
            dataset,
            index_alias=index_alias,
            candidates=candidates,
            reranker_name=reranker,
            rrf_k=rrf_k,
            progress=progress,
        )
        chosen_on = facts["chosen_on"]
        if chosen_on.get("warning"):
            click.echo(f"warning: {chosen_on['warning']}", err=True)
        click.echo(
            f"tuned on {chosen_on['queries']} {split} queries; left out {chosen_on['left_out_trained_on']} as "
            f"trained on: {chosen_on['left_out_reason']}",
            err=True,
        )
        click.echo(json.dumps(facts, indent=2) if output is None else f"wrote {facts['path']}")
        if output:
            output.write_text(json.dumps(facts, indent=2) + "\n")
        return
    previous = json.loads(compare_path.read_text()) if compare_path else None

    results, run_settings = evaluate_dataset(
        settings,
        dataset,
        index_alias=index_alias,
        candidates=candidates,
        reranker_name=reranker,
        configs=configs,
        fusion=FusionParams(rrf_k or settings.rrf_k, linear_weight, normalization),
        progress=progress,
    )
    click.echo(format_table(results))
    for line in blend_lines(results):
        click.echo(line)
    if output:
        document = write_json(output, run_settings, results)
        chart = output.with_suffix(".png")
        write_chart(chart, results, title=f"{dataset_dir.name} ({split}, {len(dataset.queries)} queries)")
        click.echo(f"wrote {output} and {chart}", err=True)
    else:
        document = {"settings": run_settings, "results": results}
    if previous:
        click.echo("\nCompared with " + str(compare_path) + ":\n" + compare(document, previous))


@click.group("judgments")
def judgments_group() -> None:
    """Marks made on the search page (POST /judgments)."""


@judgments_group.command("export")
@click.option(
    "--index",
    "alias",
    help="The alias the marks were made on (default RRS_INDEX_ALIAS); the judged documents' text is read from it.",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the BEIR files into (corpus.jsonl, queries.jsonl, qrels/train.tsv, qrels/test.tsv).",
)
@click.option(
    "--test-share",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Share of queries in the test split, by query hash (default RRS_JUDGMENTS_TEST_SHARE).",
)
@click.option(
    "--paragraphs/--no-paragraphs",
    default=False,
    show_default=True,
    help="Include paragraphs judged on the rerank tab (pasted text, not in the index).",
)
def judgments_export_command(alias, output, test_share, paragraphs):
    """Write the marks on ALIAS as a BEIR folder that rrs eval, train-reranker and train-encoder read.

    Each client's latest mark of a (query, document) counts once; several clients' grades
    are combined as their mean rounded to the nearest grade, halves down. A query's split
    comes from a hash of its id, so it never moves as marks are added."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from rrsearch.core.console import fail, failure_line, load_settings
    from rrsearch.core.errors import DatasetError, IndexMissing, RRSError
    from rrsearch.core.es_client import make_client
    from rrsearch.evaluation.judgments_export import export_judgments

    settings = load_settings()
    alias = alias or settings.index_alias
    try:
        es = make_client(settings)
        facts = export_judgments(
            es,
            judgments_index=settings.judgments_index,
            alias=alias,
            output=output,
            test_share=test_share or settings.judgments_test_share,
            paragraphs=paragraphs,
        )
    except (DatasetError, IndexMissing) as exc:
        fail(str(exc), 2)
    except RRSError as exc:
        fail(str(exc), 1)
    except (TransportError, ApiError) as exc:  # the node went away or refused: one line, not a traceback
        fail(failure_line(exc, settings) or f"Elasticsearch failed during the export ({exc}); run it again", 1)
    queries, judged = facts["queries"], facts["judgments"]
    click.echo(
        f"wrote {output}: {facts['documents']} documents, {facts['paragraphs']} paragraphs, "
        f"{queries['train']} train / {queries['test']} test queries ({judged['train']} / {judged['test']} "
        f"judgments) from {facts['marks_used']} marks by {facts['clients']} client(s)"
    )
    left_out = facts["marks_left_out"]
    if left_out["document_gone"]:
        click.echo(
            f"warning: {left_out['document_gone']} mark(s) judge documents {alias!r} no longer holds; left out",
            err=True,
        )
    if left_out["paragraph"]:
        click.echo(f"note: {left_out['paragraph']} paragraph mark(s) left out (--paragraphs includes them)", err=True)
    for name in ("train", "test"):
        if not queries[name]:
            click.echo(
                f"warning: no judged query falls in the {name} split yet: qrels/{name}.tsv has no rows "
                f"(rrs eval --split {name} needs some)",
                err=True,
            )


@click.command("calibrate")
@click.option("--index", "alias", help="Alias to calibrate on (default RRS_INDEX_ALIAS).")
@click.option("--reranker", help="Cross-encoder path or hub name (default RRS_CROSS_ENCODER).")
@click.option(
    "--queries", default=200, show_default=True, type=click.IntRange(20, 5000), help="Pseudo-queries to draw."
)
@click.option(
    "--candidates", default=50, show_default=True, type=click.IntRange(10, 1000), help="Fused candidates scored."
)
@click.option(
    "--judgments",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A BEIR folder of judged queries on this index: those of --split the model was not trained on join the pseudo-queries.",
)
@click.option(
    "--split", default="train", show_default=True, help="Which of --judgments' splits (keep test for reporting)."
)
@click.option("--progress/--no-progress", default=True)
def calibrate_command(alias, reranker, queries, candidates, judgments, split, progress):
    """Choose and confirm the blend for a reranker on an index without judgments (pseudo-queries
    from the index, and any judged queries it was not trained on); the service serves it when the
    model has no rrs_rerank.json."""
    from rrsearch.core.console import fail, load_settings
    from rrsearch.core.errors import DatasetError, IndexMissing, RerankerUnavailable, RRSError
    from rrsearch.evaluation.corpus_calibration import calibrate, save
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.offline import open_pipeline
    from rrsearch.evaluation.tuning import verdict_line
    from rrsearch.service.blend_policy import calibration_path, default_blend, model_identity

    settings = load_settings()
    alias = alias or settings.index_alias
    try:
        judged = load_dataset(judgments, split, check_corpus=False) if judgments else None
    except DatasetError as exc:
        fail(str(exc), 2)
    try:
        with open_pipeline(settings, alias=alias, depth=candidates, reranker=reranker or settings.cross_encoder) as job:
            version = job.pipeline.index_info(alias).version
            model = model_identity(job.pipeline.reranker)
            if model is None:
                fail("no reranker is loaded: set RRS_CROSS_ENCODER or pass --reranker", 2)
            best, facts = calibrate(
                job.pipeline,
                job.es,
                alias,
                count=queries,
                candidates=candidates,
                progress=progress,
                default=default_blend(settings),
                judged=judged,
            )
            path = save(
                calibration_path(settings.home, model, version), best, facts, model=model, index_version=version
            )
    except (IndexMissing, RerankerUnavailable) as exc:
        fail(str(exc), 2)
    except RRSError as exc:
        fail(str(exc), 1)
    gain = facts["chosen_gain"]
    if judged_facts := facts["chosen_on"].get("judged"):
        click.echo(
            f"judged queries ({split} of {judgments}): {judged_facts['queries']} joined the pseudo-queries, "
            f"{judged_facts['left_out_trained']} left out ({judged_facts['left_out_why']})"
        )
    click.echo(
        f"{model} on {version}: weight {best.weight}, depth {best.depth}, {best.normalization} "
        f"(pseudo{'- and judged' if judged_facts else ''} queries: hybrid {facts['hybrid_alone']}, plain rerank {facts['plain_rerank']}, "
        f"chosen gain {gain['gain_confirming']:+.4f}, lower bound {gain['gain_confirming_lower']:+.4f}); wrote {path}"
    )
    click.echo(verdict_line(facts, "the default blend keeps serving"))


commands = [eval_command, judgments_group, calibrate_command]
