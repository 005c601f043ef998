"""Ending a process without the interpreter's teardown (core/processes.py) must still end it as
``sys.exit`` would: the same status, other threads' work finished, atexit handlers run, output
flushed."""

import subprocess
import sys
import textwrap

import pytest

from rrsearch.core.processes import exit_status


def test_exit_status_reads_a_system_exit_code_as_python_does(capsys):
    assert exit_status(None) == 0 and exit_status(0) == 0 and exit_status(3) == 3
    assert exit_status("the index is missing") == 1
    assert capsys.readouterr().err == "the index is missing\n"


def _child(body: str, tmp_path) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        f"""
        import atexit, sys, threading, time
        from pathlib import Path
        from rrsearch.core.processes import exit_without_teardown
        out = Path({str(tmp_path)!r})
        atexit.register(lambda: (out / "atexit").write_text("ran"))
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


# The exit waits for a thread however long it takes, as a normal one does.
@pytest.mark.parametrize("thread_s", [0.2, 1.5])
def test_threads_atexit_and_output_all_finish_and_the_status_is_kept(tmp_path, thread_s):
    done = _child(
        f"""
        def late():
            time.sleep({thread_s})
            (out / "thread").write_text("done")
        threading.Thread(target=late).start()
        sys.stdout.write("no newline, not flushed")
        exit_without_teardown(5)
        """,
        tmp_path,
    )
    assert done.returncode == 5, done.stderr
    assert done.stdout == "no newline, not flushed"
    assert (tmp_path / "thread").read_text() == "done" and (tmp_path / "atexit").read_text() == "ran"


def test_a_message_code_is_printed_and_ends_with_status_1(tmp_path):
    done = _child('exit_without_teardown("cannot reach the node")', tmp_path)
    assert done.returncode == 1 and done.stderr.strip() == "cannot reach the node"


def test_an_idle_executor_is_ended_as_at_exit_and_the_teardown_is_still_skipped(tmp_path):
    """An executor nobody shut down (OpenVINO's telemetry sender was one, gunicorn's request pool
    another) keeps an idle worker thread: the interpreter wakes it through threading's exit hooks,
    and so must we, or the exit waits on it and falls back to the full teardown."""
    done = _child(
        """
        from concurrent.futures import ThreadPoolExecutor
        class Finalized:
            def __del__(self):
                (out / "teardown").write_text("ran")
        kept = Finalized()  # a module global: only the interpreter's teardown finalizes it
        idle = ThreadPoolExecutor(max_workers=1)
        idle.submit(lambda: (out / "task").write_text("done")).result()
        exit_without_teardown(0)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "task").read_text() == "done" and (tmp_path / "atexit").read_text() == "ran"
    assert not (tmp_path / "teardown").exists()
