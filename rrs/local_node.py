"""A real Elasticsearch node, or a cluster of N nodes, on loopback, for development, tests and CI.

The distribution is Elastic's ``integ-test-zip`` from Maven Central, fetched once with
``mvn dependency:copy`` into a cache, unpacked once, and run with a JDK found on the
machine. Each node has its own directory (config, data, logs, pid file), so the unpacked
distribution stays pristine and several nodes can share it. One node uses single-node
discovery in the node directory itself; N nodes live in ``node-1`` ... ``node-N`` below
it, each with its own HTTP and transport port, seeded with each other's transport ports.
The directory's ``node.json`` lists them all, and its ``url`` names every node, so a
client keeps working when one of them dies.

Example::

    settings = Settings()
    info = start_node(settings)      # downloads on first use, waits for yellow
    print(info.url)                  # http://127.0.0.1:9200
    stop_node(settings)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from rrsearch.core.errors import NodeError
from rrsearch.core.settings import Settings

# The one place the Elasticsearch version is pinned. ES 9 needs Java 21+, ES 8 runs on 17+.
PINNED_VERSIONS = {9: "9.5.4", 8: "8.19.21"}
MIN_JAVA_FOR_MAJOR = {9: 21, 8: 17}
MAVEN_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
CLUSTER_NAME = "rrs-local"
ES_USER = "rrs-es"  # Elasticsearch refuses to run as root; root starts it as this user.


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int


@dataclass
class NodeInfo:
    """What ``es status --json`` prints and what the state file holds."""

    running: bool
    url: str | None
    version: str | None
    pid: int | None = None
    managed: bool = True
    java_home: str | None = None
    node_dir: str | None = None
    health: str | None = None
    nodes: list[dict] | None = None  # a cluster's members: name, url, pid, running

    def to_dict(self) -> dict:
        return asdict(self)


# --- JDKs -------------------------------------------------------------------------------


def java_major(java_home: Path) -> int | None:
    """Major version of a JDK, read from its ``release`` file (no JVM start needed)."""
    release = java_home / "release"
    if not (java_home / "bin" / "java").exists():
        return None
    if release.exists():
        match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1))
    try:
        out = subprocess.run(
            [str(java_home / "bin" / "java"), "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def find_jdks(extra: list[Path] | None = None) -> list[Jdk]:
    """Every JDK on the machine we can see, newest first."""
    candidates: list[Path] = list(extra or [])
    for root in (Path("/usr/lib/jvm"), Path("/opt/java"), Path("/Library/Java/JavaVirtualMachines")):
        if root.is_dir():
            candidates += sorted(p for p in root.iterdir() if p.is_dir())
    java_on_path = shutil.which("java")
    if java_on_path:
        candidates.append(Path(os.path.realpath(java_on_path)).parent.parent)
    seen: set[Path] = set()
    found: list[Jdk] = []
    for home in candidates:
        home = home / "Contents" / "Home" if (home / "Contents" / "Home").is_dir() else home
        real = Path(os.path.realpath(home))
        if real in seen:
            continue
        seen.add(real)
        major = java_major(real)
        if major:
            found.append(Jdk(real, major))
    return sorted(found, key=lambda jdk: jdk.major, reverse=True)


def choose_version(jdks: list[Jdk], override: str | None = None) -> tuple[str, Jdk]:
    """The newest pinned ES version some JDK here can run, and that JDK."""
    if not jdks:
        raise NodeError(
            "No Java found. Elasticsearch needs a JDK: install Java 21 or newer "
            "(Debian: apt install openjdk-21-jdk-headless, or a Temurin JDK) or set ES_JAVA_HOME."
        )
    if override:
        major = int(override.split(".")[0])
        need = MIN_JAVA_FOR_MAJOR.get(major, 21)
        for jdk in jdks:
            if jdk.major >= need:
                return override, jdk
        raise NodeError(f"Elasticsearch {override} needs Java {need}+; newest found is {jdks[0].major}.")
    for major in sorted(PINNED_VERSIONS, reverse=True):
        if jdks[0].major >= MIN_JAVA_FOR_MAJOR[major]:
            return PINNED_VERSIONS[major], jdks[0]
    raise NodeError(f"Java {jdks[0].major} is too old for Elasticsearch: install Java 21 or newer.")


# --- Distribution -----------------------------------------------------------------------


def fetch_distribution(version: str, cache: Path) -> Path:
    """The distribution zip, fetched with Maven once and cached under ``cache``."""
    target = cache / "dist" / f"elasticsearch-{version}.zip"
    if target.exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise NodeError(
            "Maven (mvn) is needed to fetch Elasticsearch from Maven Central: "
            "install it (Debian: apt install maven) or set ES_URL to an existing cluster."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-q", "-B", "dependency:copy",
        f"-Dartifact={MAVEN_ARTIFACT.format(version=version)}",
        f"-DoutputDirectory={target.parent}",
        "-Dmdep.overWriteReleases=true",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=target.parent)
    if result.returncode != 0 or not target.exists():
        tail = (result.stdout + result.stderr)[-2000:]
        raise NodeError(f"mvn could not fetch Elasticsearch {version}:\n{tail}")
    return target


def unpack_distribution(zip_path: Path, cache: Path) -> Path:
    """The unpacked distribution's home; unpacked once (a marker file says it's complete)."""
    version = zip_path.stem.removeprefix("elasticsearch-")
    home = cache / "dist" / f"elasticsearch-{version}"
    marker = home / ".rrs-unpacked"
    if marker.exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(cache / "dist")
    for script in (home / "bin").iterdir():
        script.chmod(0o755)
    marker.touch()
    return home


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


def render_node_config(node_dir: Path, http_port: int, transport_port: int, *, name: str = "rrs-node-1",
                       seed_ports: list[int] | None = None, masters: list[str] | None = None) -> str:
    """``elasticsearch.yml`` for a loopback node (pure: easy to test): single-node discovery,
    or, with ``seed_ports``, a cluster member that finds the others there (``masters``: the
    names that bootstrap a new cluster; only on its first start)."""
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
        # Loopback-only dev node: no TLS/users (also skips security auto-configuration,
        # whose keystore entries this distribution can't read back).
        "xpack.security.enabled": "false",
    }
    return "".join(f"{key}: {value}\n" for key, value in lines.items())


def write_node_config(es_home: Path, node_dir: Path, http_port: int, heap: str, *, transport_port: int | None = None,
                      **member) -> Path:
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


def _drop_root_prefix(node_dir: Path, log) -> list[str]:
    """When run as root: a ``setpriv`` prefix that runs ES as ``ES_USER``; else nothing."""
    if os.geteuid() != 0:
        return []
    import pwd

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


def give_tree(root: Path, uid: int, gid: int) -> None:
    """Hand ``root`` and everything under it to ``uid``:``gid`` without following a symlink.

    The node's user can write in this tree; a link it planted (``logs -> /etc``) must not
    make root give away the link's target, so links are skipped, not descended or chowned.
    """
    if root.is_symlink():
        raise NodeError(f"{root} is a symbolic link; give the node a real directory (RRS_ES_NODE_DIR)")
    os.chown(root, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root, followlinks=False):
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
    log = node_dir / "logs" / f"{CLUSTER_NAME}.log"
    if not log.exists():
        candidates = sorted((node_dir / "logs").glob("*.log")) if (node_dir / "logs").exists() else []
        if not candidates:
            return "(no log written)"
        log = candidates[0]
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def cluster_info(url: str, session: requests.Session | None = None, timeout: float = 5.0) -> dict:
    """Version and health of the cluster at ``url``; raises requests errors when unreachable."""
    http = session or requests
    nodes = http.get(f"{url}/_nodes/_local", params={"filter_path": "nodes.*.version"}, timeout=timeout)
    nodes.raise_for_status()
    health = http.get(f"{url}/_cluster/health", timeout=timeout)
    health.raise_for_status()
    version = next(iter(nodes.json()["nodes"].values()))["version"]
    return {"version": version, "health": health.json()["status"]}


def _wait_for_yellow(url: str, pid: int, node_dir: Path, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _is_our_process(pid, node_dir):
            raise NodeError(f"Elasticsearch exited during start-up. Log tail:\n{log_tail(node_dir)}")
        try:
            resp = requests.get(
                f"{url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "2s"}, timeout=5
            )
            if resp.ok and resp.json().get("status") in ("yellow", "green"):
                return cluster_info(url)
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise NodeError(
        f"Elasticsearch did not reach yellow within {timeout_s:.0f}s. Log tail:\n{log_tail(node_dir)}"
    )


def add_english_analysis(es_home: Path, version: str, cache: Path, java_home: Path, log=print) -> bool:
    """Install the english analysis plugin into the distribution; where it cannot be built,
    say why and go on (text fields then use the standard analyzer)."""
    from rrsearch.rrs.analysis_plugin import build_plugin, install_plugin

    try:
        install_plugin(es_home, build_plugin(version, cache, java_home, log=log, es_home=es_home), java_home, log=log)
        return True
    except NodeError as exc:
        log(f"The english analysis plugin is not installed ({exc}); text fields will use the standard analyzer.")
        return False


def start_node(settings: Settings, log=print) -> NodeInfo:
    """Start the local node, or the cluster of ``es_nodes`` nodes (or report the external or
    running one), and wait for yellow."""
    if settings.es_url:
        log(f"ES_URL is set: using the existing cluster at {settings.es_url}; nothing started.")
        return node_status(settings)
    running = node_status(settings)
    if running.running and all(member["running"] for member in running.nodes or []):
        log(f"Already running at {running.url}" + (f" (pid {running.pid})." if running.pid else "."))
        return running
    version, jdk = choose_version(
        find_jdks([settings.es_java_home] if settings.es_java_home else None), settings.es_version
    )
    if settings.es_java_home and jdk.home != Path(os.path.realpath(settings.es_java_home)):
        log(f"ES_JAVA_HOME is Java too old for {version}; using {jdk.home} instead.")
    cache = settings.home.resolve()
    zip_path = fetch_distribution(version, cache)
    es_home = unpack_distribution(zip_path, cache)
    if settings.es_english_plugin:
        add_english_analysis(es_home, version, cache, jdk.home, log)
    if settings.es_nodes > 1 or _read_state(settings.node_dir.resolve()).get("nodes"):
        return _start_cluster(settings, es_home, jdk, log)

    node_dir = settings.node_dir.resolve()
    port = settings.es_port
    if not port_is_free(port):
        port = first_free_port(port + 1)
        log(f"Port {settings.es_port} is taken; using {port}.")
    node_dir.mkdir(parents=True, exist_ok=True)
    conf = write_node_config(es_home, node_dir, port, settings.es_heap)
    started = time.monotonic()
    pid = _launch(es_home, node_dir, conf, jdk, log)
    url = f"http://127.0.0.1:{port}"
    info = _wait_for_yellow(url, pid, node_dir, settings.es_start_timeout_s)
    node = NodeInfo(
        running=True, url=url, version=info["version"], pid=pid, java_home=str(jdk.home),
        node_dir=str(node_dir), health=info["health"],
    )
    write_private(_state_file(node_dir), json.dumps(node.to_dict()))
    log(f"Elasticsearch {node.version} up at {url} on Java {jdk.major} in {time.monotonic() - started:.1f}s.")
    return node


def plan_members(root: Path, count: int, http_ports: list[int], transport_ports: list[int]) -> list[dict]:
    """Name, directory and ports of each cluster node (pure)."""
    return [
        {"name": f"rrs-node-{i}", "dir": str(root / f"node-{i}"), "http_port": http, "transport_port": transport}
        for i, (http, transport) in enumerate(zip(http_ports, transport_ports), start=1)
    ]


def free_ports(start: int, count: int, taken: set[int] = frozenset()) -> list[int]:
    """``count`` free ports from ``start`` up, skipping ``taken``."""
    ports: list[int] = []
    port = start
    while len(ports) < count:
        port = first_free_port(port)
        if port not in taken:
            ports.append(port)
        port += 1
    return ports


def _start_cluster(settings: Settings, es_home: Path, jdk: Jdk, log) -> NodeInfo:
    """Start every member that is not running (the first time: plan ports, bootstrap the
    cluster) and wait until all of them have joined."""
    root = settings.node_dir.resolve()
    state = _read_state(root)
    members = state.get("nodes")
    if not members:
        http = free_ports(settings.es_port, settings.es_nodes)
        members = plan_members(root, settings.es_nodes, http, free_ports(settings.es_port + 100, settings.es_nodes, set(http)))
    elif len(members) != settings.es_nodes and settings.es_nodes > 1:
        raise NodeError(f"{root} holds a {len(members)}-node cluster; stop it and use another --dir for "
                        f"{settings.es_nodes} nodes")
    names = [member["name"] for member in members]
    first_boot = not any((Path(member["dir"]) / "data" / "_state").exists() for member in members)
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for member in members:
        node_dir = Path(member["dir"])
        member["pid"] = _read_pid(node_dir)
        if member["pid"] is None:
            node_dir.mkdir(parents=True, exist_ok=True)
            conf = write_node_config(
                es_home, node_dir, member["http_port"], settings.es_heap, transport_port=member["transport_port"],
                name=member["name"], seed_ports=[m["transport_port"] for m in members],
                masters=names if first_boot else None,
            )
            member["pid"] = _launch(es_home, node_dir, conf, jdk, log)
        member["url"] = f"http://127.0.0.1:{member['http_port']}"
    info = _wait_for_members(members, settings.es_start_timeout_s)
    url = ",".join(member["url"] for member in members)
    record = {"url": url, "version": info["version"], "java_home": str(jdk.home), "node_dir": str(root),
              "nodes": [{k: v for k, v in member.items() if k != "pid"} for member in members]}
    write_private(_state_file(root), json.dumps(record))
    log(f"Elasticsearch {info['version']} cluster of {len(members)} nodes up at {url} on Java {jdk.major} "
        f"in {time.monotonic() - started:.1f}s ({info['health']}).")
    return node_status(settings)


def _launch(es_home: Path, node_dir: Path, conf: Path, jdk: Jdk, log) -> int:
    """Start one node as a daemon; its pid."""
    env = node_environment(dict(os.environ), java_home=jdk.home, conf=conf, node_dir=node_dir)
    pid_file = _pid_file(node_dir)
    pid_file.unlink(missing_ok=True)
    prefix = _drop_root_prefix(node_dir, log)
    result = subprocess.run(
        [*prefix, str(es_home / "bin" / "elasticsearch"), "-d", "-p", str(pid_file)],
        env=env, capture_output=True, text=True, cwd=node_dir, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise NodeError(
            f"Elasticsearch failed to start (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-2000:]}\nLog tail:\n{log_tail(node_dir)}"
        )
    return int(pid_file.read_text().strip())


def _wait_for_members(members: list[dict], timeout_s: float) -> dict:
    """Version and health once every member has joined and the cluster is yellow or better."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for member in members:
            if not _is_our_process(member["pid"], Path(member["dir"])):
                raise NodeError(f"{member['name']} exited during start-up. Log tail:\n{log_tail(Path(member['dir']))}")
        for member in members:
            try:
                resp = requests.get(f"{member['url']}/_cluster/health", timeout=5, params={
                    "wait_for_nodes": str(len(members)), "wait_for_status": "yellow", "timeout": "2s"})
                if resp.ok and not resp.json().get("timed_out"):
                    return cluster_info(member["url"])
            except requests.RequestException:
                continue
        time.sleep(0.5)
    raise NodeError(f"the {len(members)} nodes did not form a cluster within {timeout_s:.0f}s. Log tail of "
                    f"{members[0]['name']}:\n{log_tail(Path(members[0]['dir']))}")


def _read_state(node_dir: Path) -> dict:
    path = _state_file(node_dir)
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}


def node_status(settings: Settings) -> NodeInfo:
    """Is the configured cluster (ES_URL or the local node or cluster) up, where, and which version."""
    if settings.es_url:
        from rrsearch.core.es_client import make_client, server_version  # knows how to authenticate

        try:
            es = make_client(settings)
            version = server_version(es)
            health = es.cluster.health()["status"]
            return NodeInfo(True, settings.es_url, version, managed=False, health=health)
        except Exception:  # noqa: BLE001 -- any failure means "not reachable"
            return NodeInfo(False, settings.es_url, None, managed=False)
    node_dir = settings.node_dir.resolve()
    state = _read_state(node_dir)
    if state.get("nodes"):
        return _cluster_status(state, node_dir)
    pid = _read_pid(node_dir)
    if pid is None:
        return NodeInfo(False, state.get("url"), state.get("version"), node_dir=str(node_dir))
    url = state.get("url")
    try:
        info = cluster_info(url) if url else {}
    except requests.RequestException:
        info = {}
    return NodeInfo(
        running=bool(info), url=url, version=info.get("version", state.get("version")), pid=pid,
        java_home=state.get("java_home"), node_dir=str(node_dir), health=info.get("health"),
    )


def _cluster_status(state: dict, node_dir: Path) -> NodeInfo:
    """Each member's pid and whether it answers; the cluster's health from any member that does."""
    members, info = [], {}
    for member in state["nodes"]:
        pid = _read_pid(Path(member["dir"]))
        answered = False
        if pid is not None:
            try:
                info = info or cluster_info(member["url"], timeout=3.0)
                answered = True
            except requests.RequestException:
                pass
        members.append({"name": member["name"], "url": member["url"], "pid": pid, "running": answered,
                        "node_dir": member["dir"]})
    return NodeInfo(
        running=bool(info), url=state.get("url"), version=info.get("version", state.get("version")),
        java_home=state.get("java_home"), node_dir=str(node_dir), health=info.get("health"), nodes=members,
    )


def stop_node(settings: Settings, timeout_s: float = 60.0, log=print) -> bool:
    """Stop exactly the processes this node directory started (every member of a cluster);
    True if one was stopped."""
    if settings.es_url:
        log(f"ES_URL is set ({settings.es_url}): that cluster is not ours to stop.")
        return False
    node_dir = settings.node_dir.resolve()
    dirs = [Path(member["dir"]) for member in _read_state(node_dir).get("nodes") or []] or [node_dir]
    stopped = [_stop_process(path, timeout_s, log) for path in dirs]
    if not any(stopped):
        log("No local node is running.")
    return any(stopped)


def _stop_process(node_dir: Path, timeout_s: float, log) -> bool:
    pid = _read_pid(node_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _is_our_process(pid, node_dir):
        time.sleep(0.2)
    if _is_our_process(pid, node_dir):
        os.kill(pid, signal.SIGKILL)
        log(f"Node pid {pid} ignored SIGTERM for {timeout_s:.0f}s; killed.")
    _pid_file(node_dir).unlink(missing_ok=True)
    log(f"Stopped Elasticsearch (pid {pid}).")
    return True
