"""``rrs eval``: search quality per configuration on a BEIR-format dataset."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from rrsearch.core.passage import VECTOR_FIELD
from rrsearch.evaluation.runner import CONFIGS, FusionParams


def default_alias(dataset_dir: Path) -> str:
    """``eval-<folder name>``, made a valid index name."""
    name = re.sub(r"[^a-z0-9_.-]+", "-", dataset_dir.resolve().name.lower()).strip("-._") or "dataset"
    return f"eval-{name}"


def _configs(value: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [c for c in chosen if c not in CONFIGS]
    if unknown or not chosen:
        raise click.BadParameter(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
    return chosen


@click.command("eval")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to evaluate on.")
@click.option("--index", "index_alias", help="Evaluate this alias (already holding the corpus) instead of building one.")
@click.option("--candidates", default=100, show_default=True, type=click.IntRange(1, 1000), help="Fused candidates (and reranked depth).")
@click.option("--reranker", help="Cross-encoder path or hub name for the +rerank rows (default: none).")
@click.option("--configs", "configs", default=",".join(CONFIGS), show_default=True, callback=lambda _c, _p, v: _configs(v))
@click.option("--rrf-k", default=None, type=click.IntRange(1, 10_000), help="RRF constant (default RRS_RRF_K).")
@click.option("--linear-weight", default=0.5, show_default=True, type=click.FloatRange(0, 1), help="kNN's share in linear fusion.")
@click.option("--normalization", default="minmax", show_default=True, type=click.Choice(["minmax", "zscore"]))
@click.option("--limit", type=click.IntRange(1), help="Only the first N judged queries (quick looks; not for reporting).")
@click.option("--output", type=click.Path(path_type=Path), help="Write the JSON here, and the chart next to it (.png).")
@click.option("--compare", "compare_path", type=click.Path(exists=True, path_type=Path), help="A previous run's JSON to diff against.")
@click.option("--progress/--no-progress", default=True)
@click.option("--tune-rerank", is_flag=True,
              help="Choose --reranker's blend (weight, depth, normalisation) on --split and write it into its folder.")
def eval_command(dataset_dir, split, index_alias, candidates, reranker, configs, rrf_k, linear_weight,
                 normalization, limit, output, compare_path, progress, tune_rerank):
    """Index DATASET_DIR's corpus (once), run its judged queries through the search pipeline
    in every configuration, and report nDCG@10, Recall@100, MRR@10, MAP@100 and latency.

    With --tune-rerank, choose instead how --reranker (a model folder) is blended with the
    hybrid order, on --split (use train; report on test), and store it beside the model."""
    from rrsearch.core.console import fail, load_settings
    from rrsearch.core.errors import DatasetError
    from rrsearch.evaluation.dataset import load_dataset
    from rrsearch.evaluation.report import compare, format_table, write_chart, write_json

    settings = load_settings()
    try:
        dataset = load_dataset(dataset_dir, split)
    except DatasetError as exc:
        fail(str(exc), 2)
    if limit:
        dataset.queries = dict(list(dataset.queries.items())[:limit])
        dataset.qrels = {qid: dataset.qrels[qid] for qid in dataset.queries}
    if tune_rerank:
        if not reranker or not Path(reranker).is_dir():
            fail("--tune-rerank needs --reranker MODEL_FOLDER (the choice is written into it)", 2)
        facts = tune_reranker(settings, dataset, index_alias=index_alias, candidates=candidates, reranker_name=reranker,
                              rrf_k=rrf_k, progress=progress)
        click.echo(json.dumps(facts, indent=2) if output is None else f"wrote {facts['path']}")
        if output:
            output.write_text(json.dumps(facts, indent=2) + "\n")
        return
    previous = json.loads(compare_path.read_text()) if compare_path else None

    results, run_settings = evaluate_dataset(
        settings, dataset, index_alias=index_alias, candidates=candidates, reranker_name=reranker,
        configs=configs, fusion=FusionParams(rrf_k or settings.rrf_k, linear_weight, normalization),
        progress=progress,
    )
    click.echo(format_table(results))
    if output:
        document = write_json(output, run_settings, results)
        chart = output.with_suffix(".png")
        write_chart(chart, results, title=f"{dataset_dir.name} ({split}, {len(dataset.queries)} queries)")
        click.echo(f"wrote {output} and {chart}", err=True)
    else:
        document = {"settings": run_settings, "results": results}
    if previous:
        click.echo("\nCompared with " + str(compare_path) + ":\n" + compare(document, previous))


def evaluate_dataset(settings, dataset, *, index_alias, candidates, reranker_name, configs, fusion, progress=True):
    """Build or check the index, load the models, run every configuration; returns
    (results, the exact settings of the run)."""
    from rrsearch.core.encoders import model_label
    from rrsearch.evaluation.runner import run_all, warm_query_embeddings

    settings, es, version, alias, live, ingest_report, pipeline = prepare(
        settings, dataset, index_alias=index_alias, candidates=candidates, reranker_name=reranker_name,
        progress=progress)
    reranker = pipeline.reranker
    embedding_latency = None
    if any(config != "bm25" for config in configs):
        embedding_latency = warm_query_embeddings(pipeline, dataset, index=alias)
    results = run_all(
        pipeline, dataset, configs=configs, with_rerank=reranker is not None, candidates=candidates,
        index=alias, fusion=fusion, show_progress=progress,
    )
    mapping = es.indices.get_mapping(index=live)[live]["mappings"]
    run_settings = {
        "dataset": str(dataset.root),
        "split": dataset.split,
        "queries": len(dataset.queries),
        "index": alias,
        "index_version": live,
        "documents_in_index": es.count(index=alias)["count"],
        "elasticsearch_version": version,
        "analyzer": mapping["properties"]["text"].get("analyzer", "standard"),
        "vector_index_type": mapping["properties"][VECTOR_FIELD].get("index_options", {}).get("type"),
        "bi_encoder": model_label(settings.bi_encoder),
        "cross_encoder": reranker_name,
        "candidates": candidates,
        "bm25_fields": settings.bm25_fields,
        "knn_num_candidates": settings.knn_num_candidates,
        "fusion": {"rrf_k": fusion.rrf_k, "linear_weight": fusion.linear_weight, "normalization": fusion.normalization},
        "query_embedding_ms": embedding_latency,
        "latency_note": "per query, search pipeline only; query embeddings are computed once beforehand",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
    }
    if ingest_report is not None:
        run_settings["ingest"] = {"indexed": ingest_report.indexed, "chunks": ingest_report.chunks}
    return results, run_settings


commands = [eval_command]


def prepare(settings, dataset, *, index_alias, candidates, reranker_name, progress=True):
    """Build (or check) the index and load the models: the pipeline every evaluation drives."""
    from rrsearch.core.console import fail
    from rrsearch.core.encoders import bi_encoder_from
    from rrsearch.core.errors import ClusterUnavailable, RerankerUnavailable
    from rrsearch.core.es_client import make_client, server_version
    from rrsearch.core.indexes import current_index
    from rrsearch.service.pipeline import SearchPipeline
    from rrsearch.service.rerank import load_reranker

    # Evaluation wants every query fully reranked: no time budget, no small page limits.
    settings = settings.model_copy(update={
        "max_top_k": max(settings.max_top_k, candidates),
        "max_candidates": max(settings.max_candidates, candidates),
        "knn_num_candidates": max(settings.knn_num_candidates, candidates),
        "rerank_timeout_ms": 3_600_000.0,
        "window_cache_size": 0,
    })
    try:
        es = make_client(settings)
        version = server_version(es)
    except ClusterUnavailable as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 -- connection errors of any kind
        fail(f"Elasticsearch is not reachable: {exc}")
    alias = index_alias or default_alias(dataset.root)
    ingest_report = None
    if index_alias is None:
        from rrsearch.ingest.pipeline import run_ingest

        ingest_report = run_ingest([dataset.corpus_path], settings, alias=alias, progress=progress, es=es)
    live = current_index(es, alias)
    if live is None or es.count(index=alias)["count"] == 0:
        fail(f"alias {alias!r} holds no documents: ingest the corpus or drop --index", 2)
    reranker = None
    if reranker_name:
        try:
            reranker = load_reranker(reranker_name, settings)
        except RerankerUnavailable as exc:
            fail(str(exc), 2)
    bi_encoder = bi_encoder_from(settings)
    pipeline = SearchPipeline(settings, es, bi_encoder, reranker)
    return settings, es, version, alias, live, ingest_report, pipeline


def tune_reranker(settings, dataset, *, index_alias, candidates, reranker_name, rrf_k=None, progress=True) -> dict:
    """Collect both scores of every candidate once, replay the grid, write the choice into the folder.

    Queries the model was trained on (``training.json`` lists them) are left out: a model
    looks better on what it learnt from than it will on new queries."""
    from tqdm import tqdm

    from rrsearch.evaluation.tuning import choose, collect
    from rrsearch.service.blend import trained_query_ids, write_calibration

    trained = trained_query_ids(reranker_name) & set(dataset.queries)
    if trained:
        dataset.queries = {qid: text for qid, text in dataset.queries.items() if qid not in trained}
        dataset.qrels = {qid: docs for qid, docs in dataset.qrels.items() if qid not in trained}
        if not dataset.queries:
            raise click.UsageError(f"every query of the {dataset.split} split trained {reranker_name}: tune on another")

    settings, _es, _version, alias, _live, _report, pipeline = prepare(
        settings, dataset, index_alias=index_alias, candidates=candidates, reranker_name=reranker_name,
        progress=progress)
    with tqdm(total=len(dataset.queries), desc="queries", unit="q", disable=not progress) as bar:
        collected = collect(pipeline, dataset, candidates=candidates, index=alias, rrf_k=rrf_k, progress=bar)
    best, facts = choose(dataset.qrels, collected, {"dataset": str(dataset.root), "split": dataset.split,
                                                     "queries": len(dataset.queries), "candidates": candidates,
                                                     "left_out_trained_on": len(trained)})
    facts["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    facts["path"] = str(write_calibration(reranker_name, best, facts))
    return facts
