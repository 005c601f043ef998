"""Processes, ours and others': whether one still runs, by its pid (what the lock files and
records left by other processes -- the ingest lock, a reranker pool's announcement, a background
calibration -- are judged by), and ending this one without the interpreter's teardown."""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import NoReturn

THREADS_GRACE_S = 1.0  # how long an exit waits for other threads to end before taking the normal path


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs, under this user or another (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


def exit_status(code: str | int | None) -> int:
    """The status a ``SystemExit(code)`` ends a process with, as Python reckons it (pure but for
    the message it prints for a non-integer code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def exit_without_teardown(code: str | int | None) -> NoReturn:
    """End this process as ``sys.exit(code)`` would, minus the interpreter's teardown of every module.

    With torch and sentence-transformers imported that teardown alone takes about 2 s on 2 cores
    (0.7 s for torch alone), which every ``rrs`` command and every stopped service worker waited
    for after its work was done. What a normal exit runs first still runs here: other threads end
    (waited for up to ``THREADS_GRACE_S``; one still running takes the normal path, which waits
    for it), then the ``atexit`` handlers (logging, Ray, multiprocessing), then stdout and stderr
    are flushed."""
    deadline = time.monotonic() + THREADS_GRACE_S
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                sys.exit(code)
    status = exit_status(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(status & 0xFF)
