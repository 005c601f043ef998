"""Ports for the servers and nodes a test starts. Under pytest-xdist (``./run test`` runs two
workers) each worker scans from its own range, ``base + 2000 × worker``, so two workers never
race for one free port between the check and the bind. The bases in the tests sit in
9250–9999, 18000–19999 and at 39700, so the ranges of up to four workers do not meet."""

from __future__ import annotations

import os

from rrsearch.rrs.local_node import first_free_port

WORKER_STRIDE = 2000


def worker_index() -> int:
    """0 without xdist, else the number in ``gw<N>``."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def free_port(base: int) -> int:
    """The first free port from this worker's ``base``."""
    return first_free_port(base + WORKER_STRIDE * worker_index())
