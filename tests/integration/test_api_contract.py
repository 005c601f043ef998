"""The API keeps its published contract: schemathesis (`st run`, every check) drives the real
`rrs serve` from its own /openapi.json and finds nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def test_schemathesis_finds_nothing(search_front, tmp_path):
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    result = subprocess.run(
        [
            st,
            "run",
            f"{search_front}/openapi.json",
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
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
