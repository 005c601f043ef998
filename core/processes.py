"""Whether a process still runs, by its pid: what the lock files and records left by other
processes (the ingest lock, a reranker pool's announcement, a background calibration) are judged by."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs, under this user or another (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True
