"""The API keeps its published contract: schemathesis (`st run`, every check) drives the real
`rrs serve` from its own /openapi.json and finds nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serve_process import rrs_serve


@pytest.fixture(scope="module")
def served(es_settings, service_index, tiny_cross_encoder_dir, tmp_path_factory):
    from rrsearch.core.es_client import resolve_url
    from rrsearch.rrs.local_node import first_free_port

    env = {
        "ES_URL": resolve_url(es_settings),
        "RRS_INDEX_ALIAS": service_index,
        "RRS_CROSS_ENCODER": str(tiny_cross_encoder_dir),
        "RRS_SERVE_THREADS": "4",
        "HF_HUB_OFFLINE": "1",
        "RRS_SEARCH_LOG_ENABLED": "false",
        "RRS_DEVICE": "cpu",
        "RRS_MAX_CANDIDATES": "50",
        "RRS_DEFAULT_CANDIDATES": "20",
    }
    work = tmp_path_factory.mktemp("contract")
    with rrs_serve(first_free_port(19_000), env, work / "server.log") as base:
        yield base, work


def test_schemathesis_finds_nothing(served):
    base, work = served
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    result = subprocess.run(
        [
            st,
            "run",
            f"{base}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            os.environ.get("RRS_CONTRACT_EXAMPLES", "40"),
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--seed",
            "1",
            "--no-color",
            "--suppress-health-check",
            "too_slow",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=work,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
