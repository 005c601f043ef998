"""How to reach the local node ``rrs es start`` runs, from its state file (``node.json``).

A node started with ``--secure`` records its https URL, the CA that signed its certificate
and where the ``elastic`` user's password is kept (never the password itself). The client
(:func:`rrsearch.core.es_client.make_client`) and the local-node tools read that record
here, so no one copies a URL, a CA path or a password by hand.

Example::

    access = local_access(settings.node_dir)
    if access and access.secure:
        requests.get(f"{access.first_url}/_cluster/health", verify=access.ca_certs, auth=access.basic_auth())
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rrsearch.core.errors import ClusterUnavailable

STATE_FILE = "node.json"


@dataclass(frozen=True)
class ClientAccess:
    """A local node's URL(s) and, for a secured one, its CA file and basic-auth credentials."""

    url: str
    ca_certs: str | None = None
    username: str | None = None
    password_file: str | None = None

    @property
    def secure(self) -> bool:
        return self.ca_certs is not None

    @property
    def first_url(self) -> str:
        return self.url.split(",")[0].strip()

    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password), the password read from its file now; None for an open node."""
        if not (self.username and self.password_file):
            return None
        try:
            return self.username, Path(self.password_file).read_text().strip()
        except OSError as exc:
            raise ClusterUnavailable(
                f"cannot read the local node's password file {self.password_file} ({exc.strerror}); "
                "run rrs as the user who started the node, or set ES_USERNAME/ES_PASSWORD"
            ) from exc

    def auth_description(self) -> dict | None:
        """How to authenticate, as ``rrs es status --json`` shows it (no secret)."""
        if not self.secure:
            return None
        return {"method": "basic", "username": self.username, "password_file": self.password_file}


def read_state(node_dir: Path) -> dict:
    """What ``node.json`` says; ``{}`` when it is missing or unreadable (a new directory)."""
    path = node_dir / STATE_FILE
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}


def access_from_state(state: dict) -> ClientAccess | None:
    """The access a ``node.json`` record describes; None when it names no URL."""
    url = state.get("url")
    if not url:
        return None
    if not state.get("secure"):
        return ClientAccess(url)
    auth = state.get("auth") or {}
    return ClientAccess(url, state.get("ca_certs"), auth.get("username"), auth.get("password_file"))


def local_access(node_dir: Path) -> ClientAccess | None:
    """The access of the local node recorded in ``node_dir``; None when none was started there."""
    return access_from_state(read_state(node_dir))
