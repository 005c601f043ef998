"""Importing OpenVINO through rrsearch sends nothing to anyone: its converter's usage telemetry (on by
default, to Google Analytics) is off, and so is the sender thread it would leave behind."""

import json
import os
import subprocess
import sys
import textwrap


def test_openvino_is_imported_with_its_telemetry_off(tmp_path):
    code = textwrap.dedent(
        """
        import json, sys, threading
        from rrsearch.core.openvino_models import import_openvino
        ov = import_openvino()
        ov.Core()
        print(json.dumps({
            "telemetry": repr(sys.modules.get("openvino_telemetry", "never imported")),
            "threads": [t.name for t in threading.enumerate()],
        }))
        """
    )
    env = {**os.environ, "HOME": str(tmp_path)}  # the consent file and client id would land in HOME/intel
    env.pop("CI", None)  # OpenVINO skips telemetry in CI (CI=true); a user's machine has no CI
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["telemetry"] == "None"  # marked absent: openvino fell back to its no-op stub
    assert seen["threads"] == ["MainThread"]
    assert not (tmp_path / "intel").exists()  # no client id written, nothing counted
