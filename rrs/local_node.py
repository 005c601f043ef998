"""A real Elasticsearch node, or a cluster of N nodes, on loopback, for development, tests and CI.

One node is a cluster of one: a single start path plans the members, writes ``node.json``,
starts each member that is not running and waits until all of them have joined; a single
status path asks each member. The distribution and the JDK come from
:mod:`rrsearch.rrs.es_distribution`. Each node has its own directory (config, data, logs,
pid file), so the unpacked distribution stays pristine and several nodes can share it.
One node uses single-node discovery in the node directory itself; N nodes live in
``node-1`` ... ``node-N`` below it, each with its own HTTP and transport port, seeded with
each other's transport ports. The directory's ``node.json`` lists them all, and its
``url`` names every node, so a client keeps working when one of them dies.

``--secure`` (``RRS_ES_SECURE``) turns security on: TLS on HTTP and transport and the
``elastic`` user's password, made once under the node directory
(:mod:`rrsearch.rrs.node_security`). ``node.json`` then records the https URL, the CA and
the password file, and the choice itself: a later start without the flag keeps it. Every
client of this project reads them from there (:mod:`rrsearch.core.node_access`).

A node directory has a size: the nodes it was set up with. ``node.json`` records it
before any JVM starts, and a start that asks for another count (``--nodes``,
``RRS_ES_NODES``) is refused, naming the directory, its size and the ``--dir`` to use;
a start that does not ask runs what the directory holds.

Example::

    settings = Settings()
    info = start_node(settings)      # downloads on first use, waits for yellow
    print(info.url)                  # http://127.0.0.1:9200
    stop_node(settings)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from rrsearch.core.errors import ClusterUnavailable, NodeError
from rrsearch.core.node_access import ClientAccess, access_from_state, read_state
from rrsearch.core.settings import Settings

# The JDK and distribution helpers moved to es_distribution; these names stay importable here.
from rrsearch.rrs.es_distribution import MAVEN_ARTIFACT as MAVEN_ARTIFACT
from rrsearch.rrs.es_distribution import MIN_JAVA_FOR_MAJOR as MIN_JAVA_FOR_MAJOR
from rrsearch.rrs.es_distribution import PINNED_VERSIONS as PINNED_VERSIONS
from rrsearch.rrs.es_distribution import Distribution, Jdk, prepare_distribution
from rrsearch.rrs.es_distribution import add_english_analysis as add_english_analysis
from rrsearch.rrs.es_distribution import choose_version as choose_version
from rrsearch.rrs.es_distribution import fetch_distribution as fetch_distribution
from rrsearch.rrs.es_distribution import find_jdks as find_jdks
from rrsearch.rrs.es_distribution import java_major as java_major
from rrsearch.rrs.es_distribution import unpack_distribution as unpack_distribution
from rrsearch.rrs.es_plugin import plugin_node_settings, write_keystore
from rrsearch.rrs.node_security import (
    BOOTSTRAP_PASSWORD,
    SECURITY_DIR,
    SecurityMaterial,
    ensure_material,
    install_certificates,
    security_node_settings,
    state_record,
    write_roles_file,
)

CLUSTER_NAME = "rrs-local"
ES_USER = "rrs-es"  # Elasticsearch refuses to run as root; root starts it as this user.


# What ``rrs es status`` found (``NodeInfo.state``) and its exit status for each.
RUNNING, REFUSED, TLS_FAILED, NOT_RUNNING = "running", "refused", "tls_failed", "not_running"
EXIT_CODES = {RUNNING: 0, NOT_RUNNING: 3, REFUSED: 4, TLS_FAILED: 5}


@dataclass
class NodeInfo:
    """What ``es status --json`` prints (``pid`` for one node, ``nodes`` for a cluster).

    ``running`` is true only when the cluster answered; ``state`` tells why not: a node that
    is up but refuses the credentials (``refused``, with ``http_status`` 401 or 403) or whose
    certificate could not be verified (``tls_failed``) is not ``not_running``; ``fix`` then
    names the setting to change. ``secure``, ``ca_certs`` and ``auth`` say how to connect to a
    local node started with ``--secure`` (``auth`` names the password file, never the password)."""

    running: bool
    url: str | None
    version: str | None
    pid: int | None = None
    managed: bool = True
    java_home: str | None = None
    node_dir: str | None = None
    health: str | None = None
    nodes: list[dict] | None = None  # a cluster's members: name, url, pid, running
    state: str = NOT_RUNNING
    http_status: int | None = None
    fix: str | None = None
    secure: bool = False
    ca_certs: str | None = None
    auth: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# --- Ports and config -------------------------------------------------------------------


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def first_free_port(start: int, tries: int = 50) -> int:
    """``start`` if free, else the next free port above it."""
    for port in range(start, min(start + tries, 65536)):
        if port_is_free(port):
            return port
    raise NodeError(f"No free port in {start}..{start + tries - 1}; set RRS_ES_PORT.")


def free_ports(start: int, count: int, taken: Set[int] = frozenset()) -> list[int]:
    """``count`` free ports from ``start`` up, skipping ``taken``."""
    ports: list[int] = []
    port = start
    while len(ports) < count:
        port = first_free_port(port)
        if port not in taken:
            ports.append(port)
        port += 1
    return ports


def render_node_config(
    node_dir: Path,
    http_port: int,
    transport_port: int,
    *,
    name: str = "rrs-node-1",
    seed_ports: list[int] | None = None,
    masters: list[str] | None = None,
    plugin: dict[str, str] | None = None,
    secure: bool = False,
) -> str:
    """``elasticsearch.yml`` for a loopback node (pure: easy to test): single-node discovery,
    or, with ``seed_ports``, a cluster member that finds the others there (``masters``: the
    names that bootstrap a new cluster; only on its first start). ``plugin``: our plugin's
    node settings (the reranker pool's URL), written as JSON strings. ``secure``: TLS on HTTP
    and transport with the certificates in ``config/certs``, users and API keys on."""
    discovery: dict = {"discovery.type": "single-node"}
    if seed_ports is not None:
        discovery = {"discovery.seed_hosts": json.dumps([f"127.0.0.1:{port}" for port in seed_ports])}
        if masters:
            discovery["cluster.initial_master_nodes"] = json.dumps(masters)
    lines = {
        "cluster.name": CLUSTER_NAME,
        "node.name": name,
        **discovery,
        "network.host": "127.0.0.1",
        "http.port": http_port,
        "transport.port": transport_port,
        "path.data": str(node_dir / "data"),
        "path.logs": str(node_dir / "logs"),
        # A dev node on a shared disk: don't go read-only when the disk fills past 90 %.
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.destructive_requires_name": "true",
        **security_node_settings(secure),
        **{key: json.dumps(value) for key, value in (plugin or {}).items()},
    }
    return "".join(f"{key}: {value}\n" for key, value in lines.items())


def write_node_config(
    es_home: Path, node_dir: Path, http_port: int, heap: str, *, transport_port: int | None = None, **member
) -> Path:
    """A config dir for this node: the distribution's defaults plus our yml and heap
    (``member``: name, seed_ports, masters of a cluster node; see :func:`render_node_config`)."""
    conf = node_dir / "config"
    if conf.is_symlink():  # never rebuild (or delete) what a link points at
        conf.unlink()
    elif conf.exists():
        shutil.rmtree(conf)
    shutil.copytree(es_home / "config", conf)
    transport_port = transport_port or first_free_port(http_port + 100)
    (conf / "elasticsearch.yml").write_text(render_node_config(node_dir, http_port, transport_port, **member))
    (conf / "jvm.options.d").mkdir(exist_ok=True)
    (conf / "jvm.options.d" / "heap.options").write_text(f"-Xms{heap}\n-Xmx{heap}\n")
    for sub in ("data", "logs"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    return conf


# --- Process ----------------------------------------------------------------------------


def _pid_file(node_dir: Path) -> Path:
    return node_dir / "es.pid"


def _state_file(node_dir: Path) -> Path:
    return node_dir / "node.json"


def _is_our_process(pid: int, node_dir: Path) -> bool:
    """True when ``pid`` is alive and is the ES server started with this node's config."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        if Path("/proc/self").exists():
            return False  # gone (or not ours to read)
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the pid file
    return f"ES_PATH_CONF={node_dir / 'config'}".encode() in environ


_NODE_USER_LOCK = threading.Lock()


def _drop_root_prefix(node_dir: Path, log) -> list[str]:
    """When run as root: a ``setpriv`` prefix that runs ES as ``ES_USER``; else nothing."""
    if os.geteuid() != 0:
        return []
    import pwd

    with _NODE_USER_LOCK:  # a cluster's members launch together: one of them creates the user
        try:
            user = pwd.getpwnam(ES_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER],
                capture_output=True,
            )
            try:
                user = pwd.getpwnam(ES_USER)
            except KeyError:
                user = pwd.getpwnam("nobody")
    log(f"Running as root: the node runs as user {user.pw_name!r}.")
    give_tree(node_dir, user.pw_uid, user.pw_gid)
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]


def give_tree(root: Path, uid: int, gid: int, *, keep: Set[str] = frozenset({SECURITY_DIR})) -> None:
    """Hand ``root`` and everything under it to ``uid``:``gid`` without following a symlink.

    The node's user can write in this tree; a link it planted (``logs -> /etc``) must not
    make root give away the link's target, so links are skipped, not descended or chowned.
    What ``keep`` names directly under ``root`` stays the caller's (the CA key and the
    elastic password of a secured node: the node reads its copies in ``config/certs``).
    """
    if root.is_symlink():
        raise NodeError(f"{root} is a symbolic link; give the node a real directory (RRS_ES_NODE_DIR)")
    os.chown(root, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root, followlinks=False):
        if folder == str(root):
            dirs[:] = [name for name in dirs if name not in keep]
            files = [name for name in files if name not in keep]
        for name in dirs + files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chown(path, uid, gid, follow_symlinks=False)


def write_private(path: Path, text: str) -> None:
    """Write a state file as root without following a symlink the node's user put in its place."""
    path.unlink(missing_ok=True)  # a link is removed, never written through
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as stream:
        stream.write(text)


# What the Elasticsearch process may see of our environment: no secrets, no proxies, no PYTHON*.
NODE_ENV_NAMES = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


def node_environment(environ: dict[str, str], *, java_home: Path, conf: Path, node_dir: Path) -> dict[str, str]:
    """The minimal environment the node starts with."""
    env = {name: environ[name] for name in NODE_ENV_NAMES if name in environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(ES_JAVA_HOME=str(java_home), ES_PATH_CONF=str(conf), HOME=str(node_dir))
    return env


def _read_pid(node_dir: Path) -> int | None:
    """The live node's pid, or None; a stale pid file is removed."""
    pid_file = _pid_file(node_dir)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if _is_our_process(pid, node_dir):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def log_tail(node_dir: Path, lines: int = 40) -> str:
    """The end of the node's log: what a failed start shows, since ES's own exit says little."""
    log = node_dir / "logs" / f"{CLUSTER_NAME}.log"
    if not log.exists():
        candidates = sorted((node_dir / "logs").glob("*.log")) if (node_dir / "logs").exists() else []
        if not candidates:
            return "(no log written)"
        log = candidates[0]
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def http_session(access: ClientAccess | None = None, *, api_key: str | None = None, basic_auth=None, ca_certs=None):
    """A ``requests`` session for a node: a secured node's CA and credentials from ``access``
    (what ``node.json`` records), unless ``api_key``/``basic_auth``/``ca_certs`` say otherwise.
    The environment's ``REQUESTS_CA_BUNDLE`` and proxies are not used: requests lets them win
    over a session's own CA, and a loopback node is never behind a proxy."""
    session = requests.Session()
    session.trust_env = False
    if api_key:
        session.headers["Authorization"] = f"ApiKey {api_key}"
    elif basic_auth:
        session.auth = tuple(basic_auth)
    elif access is not None and access.secure:
        session.auth = access.basic_auth()
    if ca_certs:
        session.verify = ca_certs
    elif access is not None and access.secure and access.ca_certs:
        session.verify = access.ca_certs
    return session


def cluster_info(url: str, session: requests.Session | None = None, timeout: float = 5.0) -> dict:
    """Version and health of the cluster at ``url``; raises requests errors when unreachable
    (``HTTPError`` for a 401 or 403, ``SSLError`` when its certificate is not trusted)."""
    http = session or requests
    nodes = http.get(f"{url}/_nodes/_local", params={"filter_path": "nodes.*.version"}, timeout=timeout)
    nodes.raise_for_status()
    health = http.get(f"{url}/_cluster/health", timeout=timeout)
    health.raise_for_status()
    version = next(iter(nodes.json()["nodes"].values()))["version"]
    return {"version": version, "health": health.json()["status"]}


def _launch(es_home: Path, node_dir: Path, conf: Path, jdk: Jdk, log) -> int:
    """Start one node as a daemon; its pid."""
    env = node_environment(dict(os.environ), java_home=jdk.home, conf=conf, node_dir=node_dir)
    pid_file = _pid_file(node_dir)
    pid_file.unlink(missing_ok=True)
    prefix = _drop_root_prefix(node_dir, log)
    result = subprocess.run(
        [*prefix, str(es_home / "bin" / "elasticsearch"), "-d", "-p", str(pid_file)],
        env=env,
        capture_output=True,
        text=True,
        cwd=node_dir,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise NodeError(
            f"Elasticsearch failed to start (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-2000:]}\nLog tail:\n{log_tail(node_dir)}"
        )
    return int(pid_file.read_text().strip())


# --- The node directory -----------------------------------------------------------------


def _read_state(node_dir: Path) -> dict:
    """What ``node.json`` says; ``{}`` when it is missing or unreadable (a new directory)."""
    return read_state(node_dir)


def _write_state(
    root: Path,
    members: list[dict],
    version: str | None,
    java_home: Path,
    security: SecurityMaterial | None = None,
) -> dict:
    """Record the members in ``node.json`` (a cluster's under ``nodes``); the record.

    Written before the first JVM starts and again once they have joined, so the directory's
    size is on disk even when a start fails, and clients find every node's URL. A secured
    node's record also names its CA and password file (``security``), and says ``secure``.
    """
    record: dict[str, Any] = {
        "url": ",".join(member["url"] for member in members),
        "version": version,
        "java_home": str(java_home),
        "node_dir": str(root),
        **(state_record(security) if security is not None else {"secure": False}),
    }
    if len(members) > 1:
        record["nodes"] = [{k: v for k, v in member.items() if k != "pid"} for member in members]
    write_private(_state_file(root), json.dumps(record))
    return record


def recorded_members(root: Path, state: dict) -> list[dict]:
    """The members ``node.json`` names: a cluster's list, or the one node living in ``root``."""
    return state.get("nodes") or [{"name": "rrs-node-1", "dir": str(root), "url": state.get("url")}]


def directory_size(root: Path) -> int:
    """How many nodes ``root`` was set up with, from what is on disk (no JVM, no network):
    the members ``node.json`` lists, 1 for a single node's state or data, 0 when new."""
    state = _read_state(root)
    if state.get("nodes"):
        return len(state["nodes"])
    return 1 if state or (root / "data").exists() else 0


def nodes_to_start(settings: Settings) -> int:
    """The node count a start runs: what the directory holds, or for a new directory the
    count asked (``es_nodes``). A count asked (set explicitly: ``--nodes``, ``RRS_ES_NODES``,
    ``model_copy``) that the directory disagrees with is refused, so ``--nodes 1`` never
    starts a 3-node cluster, and ``--nodes 3`` never quietly returns a single node."""
    root = settings.node_dir.resolve()
    held = directory_size(root)
    if not held:
        return settings.es_nodes
    if "es_nodes" in settings.model_fields_set and settings.es_nodes != held:
        other = root.with_name(f"{root.name}-{settings.es_nodes}node{'s' if settings.es_nodes > 1 else ''}")
        raise NodeError(
            f"node directory {root} holds a {held}-node cluster; start it with --nodes {held}, "
            f"or use --dir {other} for a {settings.es_nodes}-node one"
        )
    return held


def plan_members(
    root: Path,
    count: int,
    http_ports: Sequence[int],
    transport_ports: Sequence[int | None],
    scheme: str = "http",
) -> list[dict]:
    """Name, directory, ports and URL of each node (pure). One node lives in ``root`` itself
    (the layout single-node directories always had); a cluster's in ``node-1`` ... below it.
    ``scheme``: https for a secured node."""
    return [
        {
            "name": f"rrs-node-{i}",
            "dir": str(root if count == 1 else root / f"node-{i}"),
            "http_port": http,
            "transport_port": transport,
            "url": f"{scheme}://127.0.0.1:{http}",
        }
        for i, (http, transport) in enumerate(zip(http_ports, transport_ports), start=1)
    ]


def _plan(settings: Settings, root: Path, state: dict, count: int, log, scheme: str = "http") -> list[dict]:
    """The members to run. A cluster keeps the ports ``node.json`` lists: its members find
    each other there. One node takes RRS_ES_PORT (or the next free port) on every start,
    unless its process is still alive: then it is waited for where it listens."""
    if state.get("nodes"):
        return [{**member, "url": f"{scheme}://127.0.0.1:{member['http_port']}"} for member in state["nodes"]]
    if count == 1 and state.get("url") and _read_pid(root) is not None:
        return plan_members(root, 1, [int(state["url"].rsplit(":", 1)[1])], [None], scheme)
    http = free_ports(settings.es_port, count)
    if http[0] != settings.es_port:
        log(f"Port {settings.es_port} is taken; using {http[0]}.")
    return plan_members(root, count, http, free_ports(settings.es_port + 100, count, set(http)), scheme)


def wants_secure(settings: Settings, state: dict) -> bool:
    """Whether this start runs with security on: what was asked (``--secure``/``--no-secure``,
    ``RRS_ES_SECURE``), else what the node directory was last started with (``node.json``)."""
    if "es_secure" in settings.model_fields_set:
        return settings.es_secure
    return bool(state.get("secure"))


# --- Start ------------------------------------------------------------------------------


def start_node(settings: Settings, log=print) -> NodeInfo:
    """Start the local node or cluster (or report the external or running one), and wait for
    yellow. A ``--nodes`` the node directory disagrees with is refused before anything runs."""
    if settings.es_url:
        log(f"ES_URL is set: using the existing cluster at {settings.es_url}; nothing started.")
        return node_status(settings)
    count = nodes_to_start(settings)
    root = settings.node_dir.resolve()
    state = _read_state(root)
    secure = wants_secure(settings, state)
    running = node_status(settings)
    if running.state != NOT_RUNNING and secure != bool(state.get("secure")):
        now, asked = ("with", "--no-secure") if state.get("secure") else ("without", "--secure")
        raise NodeError(
            f"the node in {root} is running {now} security; stop it first (rrs es stop --dir {root}), "
            f"then start it again with {asked}"
        )
    if running.running and all(member["running"] for member in running.nodes or []):
        log(f"Already running at {running.url}" + (f" (pid {running.pid})." if running.pid else "."))
        return running
    if state and secure != bool(state.get("secure")):
        log(f"Security is now {'on' if secure else 'off'} for the node in {root}.")
    return _start_members(settings, count, prepare_distribution(settings, log), log, secure=secure)


def _start_members(settings: Settings, count: int, dist: Distribution, log, *, secure: bool = False) -> NodeInfo:
    """Start every member that is not running (the first time: plan ports, bootstrap the
    cluster), wait until all of them have joined, and record them. ``secure``: with the CA,
    certificates and password of :func:`ensure_material` (made on the first secure start)."""
    root = settings.node_dir.resolve()
    state = _read_state(root)
    members = _plan(settings, root, state, count, log, "https" if secure else "http")
    first_boot = not any((Path(member["dir"]) / "data" / "_state").exists() for member in members)
    root.mkdir(parents=True, exist_ok=True)
    material = ensure_material(root, log) if secure else None
    record = _write_state(root, members, state.get("version"), dist.jdk.home, material)
    started = time.monotonic()
    yml, keystore = plugin_node_settings(dist.home, settings)
    roles: dict[str, dict] = {}
    if material is not None:
        from rrsearch.core.security_roles import role_descriptors

        keystore = {**keystore, BOOTSTRAP_PASSWORD: material.password()}
        roles = role_descriptors(settings)
    # Launched together: `elasticsearch -d` returns once its node has started, and a cluster
    # member waits up to discovery.initial_state_timeout (30 s) for a quorum its peers, still
    # unlaunched, cannot give; one by one, three members took 60 s.
    with ThreadPoolExecutor(max_workers=len(members)) as launching:
        launches = [
            launching.submit(
                _launch_member,
                member,
                members,
                dist,
                settings.es_heap,
                first_boot,
                log,
                plugin=(yml, keystore),
                security=material,
                roles=roles,
            )
            for member in members
        ]
    for launch in launches:
        launch.result()  # a member that failed to launch raises its NodeError here
    access = access_from_state(record)
    info = _wait_for_members(members, settings.es_start_timeout_s, access)
    record = _write_state(root, members, info["version"], dist.jdk.home, material)
    _say_started(log, members, record["url"], info, dist.jdk, time.monotonic() - started)
    if material is not None:
        log(f"Security is on: user elastic, password in {material.password_file}, CA {material.ca_cert}.")
    seen = [_member_status(member, member["pid"], running=True) for member in members]
    return _node_info(root, record, seen, info)


def _say_started(log, members: list[dict], url: str, info: dict, jdk: Jdk, seconds: float) -> None:
    """One line on how long the start took; a cluster also says its health (green needs every replica)."""
    if len(members) == 1:
        log(f"Elasticsearch {info['version']} up at {url} on Java {jdk.major} in {seconds:.1f}s.")
    else:
        log(
            f"Elasticsearch {info['version']} cluster of {len(members)} nodes up at {url} on Java {jdk.major} "
            f"in {seconds:.1f}s ({info['health']})."
        )


def _launch_member(
    member: dict,
    members: list[dict],
    dist: Distribution,
    heap: str,
    first_boot: bool,
    log,
    *,
    plugin: tuple[dict[str, str], dict[str, str]] = ({}, {}),
    security: SecurityMaterial | None = None,
    roles: dict[str, dict] | None = None,
) -> None:
    """Start ``member`` unless its process is alive (a restart starts only the dead ones);
    sets its ``pid``. A cluster member is seeded with every transport port, and names the
    masters only on the cluster's first boot (a restart must not bootstrap a second one).
    ``plugin``: node settings for elasticsearch.yml, and those for the keystore (our plugin's,
    and a secured node's ``bootstrap.password``). ``security``: its certificates go to
    ``config/certs``, and ``roles`` (our least-privilege roles) to ``config/roles.yml``."""
    node_dir = Path(member["dir"])
    member["pid"] = _read_pid(node_dir)
    if member["pid"] is not None:
        return
    node_dir.mkdir(parents=True, exist_ok=True)
    peers = (
        {}
        if len(members) == 1
        else {
            "seed_ports": [m["transport_port"] for m in members],
            "masters": [m["name"] for m in members] if first_boot else None,
        }
    )
    conf = write_node_config(
        dist.home,
        node_dir,
        member["http_port"],
        heap,
        transport_port=member["transport_port"],
        name=member["name"],
        plugin=plugin[0],
        secure=security is not None,
        **peers,
    )
    if security is not None:
        install_certificates(security, conf)
        write_roles_file(conf, roles or {})
    write_keystore(dist.home, conf, dist.jdk.home, plugin[1])
    member["pid"] = _launch(dist.home, node_dir, conf, dist.jdk, log)


def _wait_for_members(members: list[dict], timeout_s: float, access: ClientAccess | None = None) -> dict:
    """Version and health once every member has joined and the cluster is yellow or better;
    a member that exits ends the wait at once, with its log. ``access``: a secured node's CA
    and the elastic user's credentials."""
    single = len(members) == 1
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for member in members:
            if not _is_our_process(member["pid"], Path(member["dir"])):
                who = "Elasticsearch" if single else member["name"]
                raise NodeError(f"{who} exited during start-up. Log tail:\n{log_tail(Path(member['dir']))}")
        info = _first_joined(members, access)
        if info:
            return info
        time.sleep(0.5)
    what = "Elasticsearch did not reach yellow" if single else f"the {len(members)} nodes did not form a cluster"
    whose = "" if single else f" of {members[0]['name']}"
    raise NodeError(f"{what} within {timeout_s:.0f}s. Log tail{whose}:\n{log_tail(Path(members[0]['dir']))}")


def _first_joined(members: list[dict], access: ClientAccess | None = None) -> dict | None:
    """Version and health from the first member that sees all of them and yellow, else None."""
    with http_session(access) as session:
        for member in members:
            try:
                resp = session.get(
                    f"{member['url']}/_cluster/health",
                    timeout=5,
                    params={"wait_for_nodes": str(len(members)), "wait_for_status": "yellow", "timeout": "2s"},
                )
                if resp.ok and not resp.json().get("timed_out"):
                    return cluster_info(member["url"], session)
            except requests.exceptions.SSLError as exc:  # the node is up: this will not pass by waiting
                raise NodeError(f"{member['name']} is up but its TLS certificate was not accepted: {exc}") from exc
            except requests.RequestException:
                continue
    return None


# --- Status -----------------------------------------------------------------------------


def node_status(settings: Settings) -> NodeInfo:
    """Is the configured cluster (ES_URL or the local node or cluster) up, where, and which
    version; when it is up but will not talk to us, why (``state``) and what to change (``fix``)."""
    if settings.es_url:
        return _external_status(settings)
    root = settings.node_dir.resolve()
    state = _read_state(root)
    problem: dict = {}
    try:
        session = _status_session(settings)
    except ClusterUnavailable as exc:  # the password file cannot be read: nothing to ask with
        session, problem = None, {"state": REFUSED, "fix": str(exc)}
    seen, info, found = _probe(recorded_members(root, state), session)
    return _node_info(root, state, seen, info, problem or found, settings)


def _status_session(settings: Settings) -> requests.Session:
    """A session that authenticates as every command would: the environment's credentials and
    CA, else the local node's own (``node.json``)."""
    from rrsearch.core.es_client import connection_options

    options = connection_options(settings)
    return http_session(
        api_key=options.get("api_key"), basic_auth=options.get("basic_auth"), ca_certs=options.get("ca_certs")
    )


def _external_status(settings: Settings) -> NodeInfo:
    """The cluster ES_URL names, asked with the client that knows how to authenticate."""
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException, SSLError

    from rrsearch.core.es_client import make_client, server_version

    url = settings.es_url
    problem: dict = {}
    try:
        es = make_client(settings, max_retries=0)
        version = server_version(es)
        health = es.cluster.health()["status"]
        return NodeInfo(True, url, version, managed=False, health=health, state=RUNNING)
    except (AuthenticationException, AuthorizationException) as exc:
        problem = {"state": REFUSED, "http_status": exc.meta.status, "reason": _api_reason(exc)}
    except SSLError as exc:
        problem = {"state": TLS_FAILED, "reason": _chain_text(exc)}
    except ValueError as exc:  # the client refuses TLS options with an http:// URL
        problem = {"state": TLS_FAILED, "reason": str(exc), "scheme": "http_with_ca"} if "https" in str(exc) else {}
    except ApiError:  # up and answering, but not these calls: the cluster is running
        return NodeInfo(True, url, None, managed=False, state=RUNNING)
    except Exception:  # noqa: BLE001 -- anything else means "not reachable"
        problem = _plain_http_to_tls(url)
    info = NodeInfo(False, url, None, managed=False, **{k: v for k, v in problem.items() if k == "state"})
    return _explain(info, problem, settings, {})


def _chain_text(exc: BaseException) -> str:
    """The error and what it wraps, in one string (a client's ``TlsError`` says only "TLS error";
    the ssl module's reason is in what it carries)."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 6:
        parts.append(str(seen))
        parts.extend(str(inner) for inner in getattr(seen, "errors", ()) or ())
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(part for part in parts if part)


def _api_reason(exc) -> str:
    """The ``reason`` Elasticsearch gave for refusing (its first line), else the error's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        reason = (body.get("error") or {}).get("reason") if isinstance(body.get("error"), dict) else None
        if reason:
            return str(reason).splitlines()[0]
    return str(getattr(exc, "message", exc))


def _plain_http_to_tls(url: str | None) -> dict:
    """For an http:// URL that did not answer: whether something there speaks TLS (a secured
    node asked in plain http hangs up), so status can say "use https" instead of "not running"."""
    if not url or not url.startswith("http://"):
        return {}
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url.split(",")[0])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname=parts.hostname),
        ):
            return {"state": TLS_FAILED, "scheme": "http_to_https"}
    except OSError:
        return {}


def _probe(members: list[dict], session: requests.Session | None) -> tuple[list[dict], dict, dict]:
    """Each member's pid and whether it answers; version and health from the first that does
    (later live members are not asked again: one answer says the cluster is up). The third
    value says why a live member did not answer: refused (401/403) or TLS verification."""
    timeout = 5.0 if len(members) == 1 else 3.0  # a cluster is asked member by member
    seen: list[dict] = []
    info: dict = {}
    problem: dict = {}
    for member in members:
        pid = _read_pid(Path(member["dir"]))
        answered = False
        if pid is not None and member.get("url") and session is not None:
            try:
                info = info or cluster_info(member["url"], session, timeout=timeout)
                answered = True
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status in (401, 403):
                    problem = problem or {"state": REFUSED, "http_status": status, "reason": _http_reason(exc)}
            except requests.exceptions.SSLError as exc:
                problem = problem or {"state": TLS_FAILED, "reason": str(exc)}
            except requests.ConnectionError:
                problem = problem or _plain_http_to_tls(member["url"])
            except requests.RequestException:
                pass
        seen.append(_member_status(member, pid, answered))
    return seen, info, problem


def _http_reason(exc: requests.HTTPError) -> str:
    try:
        return str(exc.response.json()["error"]["reason"]).splitlines()[0]
    except (ValueError, KeyError, TypeError, AttributeError):
        return str(exc)


def _explain(info: NodeInfo, problem: dict, settings: Settings, state: dict) -> NodeInfo:
    """Fill in ``state``, ``http_status`` and ``fix`` for a cluster that is up but would not answer."""
    if not problem or info.running:
        return info
    info.state = problem["state"]
    info.http_status = problem.get("http_status")
    info.fix = problem.get("fix") or fix_line(problem, info.url or "", settings, state)
    return info


def fix_line(problem: dict, url: str, settings: Settings, state: dict) -> str:
    """One line on why the cluster at ``url`` is up but not answering, and the setting that fixes it."""
    own = access_from_state(state) if not settings.es_url else None
    env_creds = settings.es_api_key is not None or settings.es_username is not None
    if problem["state"] == REFUSED:
        status = problem.get("http_status")
        reason = f": {problem['reason']}" if problem.get("reason") else ""
        if status == 403:
            return (
                f"up but refused (403) at {url}{reason}; the credentials lack a privilege: "
                "give them cluster 'monitor' (rrs es status needs it) or use a key with the role the command "
                "needs (docs/operations/security.md)"
            )
        if own is not None and own.secure and env_creds:
            return (
                f"up but refused (401) at {url}{reason}; ES_API_KEY or ES_USERNAME/ES_PASSWORD are wrong for this "
                f"node: fix them, or unset them to use the node's elastic user (password in {own.password_file})"
            )
        if own is not None and own.secure:
            return (
                f"up but refused (401) at {url}{reason}; the elastic password in {own.password_file} no longer "
                "works (changed through the security API?): set ES_USERNAME/ES_PASSWORD or ES_API_KEY"
            )
        return f"up but refused (401) at {url}{reason}; set ES_API_KEY, or ES_USERNAME and ES_PASSWORD, to valid credentials"
    if problem.get("scheme") == "http_to_https":
        return f"up but it speaks TLS at {url}: use an https:// URL in ES_URL, with ES_CA_CERTS naming its CA"
    if problem.get("scheme") == "http_with_ca":
        return f"ES_CA_CERTS is set but ES_URL ({url}) is http://: use https:// (or unset ES_CA_CERTS)"
    if "CERTIFICATE_VERIFY_FAILED" in problem.get("reason", "") or "certificate verify failed" in problem.get(
        "reason", ""
    ):
        where = f"; the local node's CA is {own.ca_certs}" if own is not None and own.ca_certs else ""
        return (
            f"up but TLS verification failed at {url}: its certificate is not signed by a CA we trust; "
            f"set ES_CA_CERTS to the CA (PEM) that signed it{where}"
        )
    return f"up but the TLS handshake failed at {url} ({problem.get('reason', '')[:200]}): check the URL's scheme and ES_CA_CERTS"


def _member_status(member: dict, pid: int | None, running: bool) -> dict:
    """One member as ``es status --json`` lists it under ``nodes``."""
    return {"name": member["name"], "url": member["url"], "pid": pid, "running": running, "node_dir": member["dir"]}


def _node_info(
    root: Path,
    state: dict,
    seen: list[dict],
    info: dict,
    problem: dict | None = None,
    settings: Settings | None = None,
) -> NodeInfo:
    """The one shape start and status report: one node's ``pid``, or a cluster's ``nodes``;
    a secured node's CA and how to authenticate; why a live node did not answer (``problem``)."""
    single = len(seen) == 1
    access = access_from_state(state)
    secure = access is not None and access.secure
    node = NodeInfo(
        running=bool(info),
        url=state.get("url"),
        version=info.get("version", state.get("version")),
        pid=seen[0]["pid"] if single else None,
        java_home=state.get("java_home"),
        node_dir=str(root),
        health=info.get("health"),
        nodes=None if single else seen,
        state=RUNNING if info else NOT_RUNNING,
        secure=secure,
        ca_certs=access.ca_certs if access is not None and secure else None,
        auth=access.auth_description() if access is not None else None,
    )
    return _explain(node, problem or {}, settings or Settings(), state)


# --- Stop -------------------------------------------------------------------------------


def stop_node(settings: Settings, timeout_s: float = 60.0, log=print) -> bool:
    """Stop exactly the processes this node directory started (every member of a cluster);
    True if one was stopped."""
    if settings.es_url:
        log(f"ES_URL is set ({settings.es_url}): that cluster is not ours to stop.")
        return False
    root = settings.node_dir.resolve()
    members = recorded_members(root, _read_state(root))
    # Every member is told at once, then awaited: one by one, the others would elect a new master
    # and move shards for each member that left, and a cluster took the sum of their shutdowns.
    told: list[tuple[Path, int]] = []
    for member in members:
        node_dir = Path(member["dir"])
        if (pid := _tell_to_stop(node_dir)) is not None:
            told.append((node_dir, pid))
    deadline = time.monotonic() + timeout_s
    for node_dir, pid in told:
        _await_stop(node_dir, pid, deadline, timeout_s, log)
    if not told:
        log("No local node is running.")
    return bool(told)


def _tell_to_stop(node_dir: Path) -> int | None:
    """SIGTERM the node whose pid file is in ``node_dir``; its pid, or None when none runs."""
    pid = _read_pid(node_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
    return pid


def _await_stop(node_dir: Path, pid: int, deadline: float, timeout_s: float, log) -> None:
    """Wait until the node told to stop is gone (SIGKILL it past ``deadline``)."""
    while time.monotonic() < deadline and _is_our_process(pid, node_dir):
        time.sleep(0.2)
    if _is_our_process(pid, node_dir):
        os.kill(pid, signal.SIGKILL)
        log(f"Node pid {pid} ignored SIGTERM for {timeout_s:.0f}s; killed.")
    _pid_file(node_dir).unlink(missing_ok=True)
    log(f"Stopped Elasticsearch (pid {pid}).")
