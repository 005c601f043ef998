"""An index built by the ONNX int8 bi-encoder: its _meta says so, a torch service can search it,
and a service or an ingest whose vectors drift past the tolerance is refused with both named."""

import gzip
import json
from itertools import islice
from pathlib import Path

import pytest

from rrsearch.core.errors import IndexModelMismatch, StartupError
from rrsearch.ingest.pipeline import run_ingest
from rrsearch.service.http.app import create_app

SCIFACT = Path("/work/shared/data/scifact/corpus.jsonl.gz")


@pytest.fixture
def corpus(tmp_path, repo_root):
    """A small real corpus: 20 SciFact documents where present, else the sample passages."""
    path = tmp_path / "corpus.jsonl"
    if SCIFACT.exists():
        with gzip.open(SCIFACT, "rt") as src:
            path.write_text("".join(islice(src, 20)))
    else:
        path.write_text((repo_root / "sample" / "corpus.jsonl").read_text())
    return path


def test_int8_index_is_recorded_searchable_by_torch_and_guarded(
    es, es_settings, bi_encoder, alias, corpus, onnx_bi_encoder_dir
):
    onnx = es_settings.model_copy(
        update={
            "bi_encoder": str(onnx_bi_encoder_dir),
            "bi_encoder_backend": "onnx",
            "ingest_batch_size": 16,
        }
    )
    report = run_ingest([corpus], onnx, alias=alias, progress=False)
    assert report.completed and report.rejected == 0
    index = report.index_name
    meta = es.indices.get_mapping(index=index)[index]["mappings"]["_meta"]
    assert meta["bi_encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert (meta["bi_encoder_backend"], meta["bi_encoder_precision"], len(meta["bi_encoder_probe"])) == (
        "onnx",
        "int8",
        384,
    )

    # The same model on torch fp32 agrees with the int8 vectors within the default tolerance.
    torch_settings = es_settings.model_copy(update={"index_alias": alias})
    client = create_app(torch_settings, es=es, bi_encoder=bi_encoder, reranker=None).test_client()
    first = json.loads(corpus.read_text().splitlines()[3])
    response = client.post("/search", json={"query": first["title"], "mode": "knn", "top_k": 3})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["hits"][0]["parent_id"] == first["_id"]

    # A tolerance no other precision can meet: start-up refuses, naming both encoders.
    strict = torch_settings.model_copy(update={"bi_encoder_tolerance": 0.99999})
    with pytest.raises(StartupError, match=r"\(onnx int8\).*\(torch fp32\).*RRS_BI_ENCODER_TOLERANCE"):
        create_app(strict, es=es, bi_encoder=bi_encoder, reranker=None)

    # Adding documents with an encoder that drifts too far is refused before anything is written.
    with pytest.raises(IndexModelMismatch, match="cannot add to .*--reindex"):
        run_ingest(
            [corpus], es_settings.model_copy(update={"bi_encoder_tolerance": 0.99999}), alias=alias, progress=False
        )
    assert es.count(index=alias)["count"] == report.indexed


def test_a_missing_onnx_folder_stops_start_up_with_its_name(es, es_settings, tmp_path):
    settings = es_settings.model_copy(update={"bi_encoder": str(tmp_path / "no-export"), "bi_encoder_backend": "onnx"})
    with pytest.raises(StartupError, match=r"cannot load bi-encoder .*no-export.* \(onnx\).*rrs encoder export-onnx"):
        create_app(settings, es=es, reranker=None)
