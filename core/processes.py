"""Processes, ours and others': whether one still runs, by its pid (what the lock files and
records left by other processes -- the ingest lock, a reranker pool's announcement, a background
calibration -- are judged by), and ending this one without the interpreter's teardown."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


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
    for after its work was done. What a normal exit runs first still runs here, in its order:
    threading's own exit hooks (they wake the idle workers of executors nobody shut down) and a
    wait for every other non-daemon thread, then the ``atexit`` handlers (logging, Ray,
    multiprocessing), then stdout and stderr are flushed. Only the main thread ends the process
    this way; another takes the normal path."""
    if threading.current_thread() is not threading.main_thread():
        sys.exit(code)
    status = exit_status(code)
    _end_other_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(status & 0xFF)


def _end_other_threads() -> None:
    """What the interpreter does first when the main thread exits (``threading._shutdown``): run
    the hooks registered with ``threading._register_atexit`` and join every non-daemon thread.
    A join without the hooks would wait forever on an idle executor's worker."""
    threading._shutdown()  # type: ignore[attr-defined]  # private, but what every exit runs
