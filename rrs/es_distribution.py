"""The Elasticsearch distribution a local node runs, and the JDK that runs it.

The distribution is Elastic's ``integ-test-zip`` from Maven Central, fetched once with
``mvn dependency:copy`` into a cache, unpacked once (a marker file says the unpacking
finished), and run with a JDK found on the machine: the newest pinned version that JDK
can run. Nothing here starts a node; :mod:`rrsearch.rrs.local_node` does, with what
:func:`prepare_distribution` hands it.

Example::

    dist = prepare_distribution(Settings())   # fetches and unpacks on first use
    print(dist.version, dist.jdk.major, dist.home)
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rrsearch.core.errors import NodeError
from rrsearch.core.settings import Settings
from rrsearch.rrs.es_plugin import LOCAL_NODE_DIR, PROJECT_DIR, retrievers_note

# The one place the Elasticsearch version is pinned. ES 9 needs Java 21+, ES 8 runs on 17+.
PINNED_VERSIONS = {9: "9.5.4", 8: "8.19.21"}
MIN_JAVA_FOR_MAJOR = {9: 21, 8: 17}
MAVEN_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
JDK_ROOTS = (Path("/usr/lib/jvm"), Path("/opt/java"), Path("/Library/Java/JavaVirtualMachines"))
# The local node's own plugin (Maven project es_plugin/local-node/, Java package rrs.localnode): what the integ-test-zip
# distribution lacks and clients rely on. Only for that distribution: a full one has both modules, and a name or route
# registered twice stops a node.
LOCAL_NODE_PLUGIN = "rrs-local-node"
LOCAL_NODE_PROJECT = PROJECT_DIR / LOCAL_NODE_DIR
LOCAL_NODE_PROVIDES = ("analysis-common", "rest-root")  # the modules it stands in for


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int


@dataclass(frozen=True)
class Distribution:
    """An unpacked distribution ready to run: its version, home, and the JDK chosen for it."""

    version: str
    home: Path
    jdk: Jdk


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


def _jdk_candidates(extra: list[Path] | None) -> list[Path]:
    """Where JDKs usually live, plus ``extra`` (ES_JAVA_HOME) and the ``java`` on PATH."""
    candidates: list[Path] = list(extra or [])
    for root in JDK_ROOTS:
        if root.is_dir():
            candidates += sorted(p for p in root.iterdir() if p.is_dir())
    java_on_path = shutil.which("java")
    if java_on_path:
        candidates.append(Path(os.path.realpath(java_on_path)).parent.parent)
    return candidates


def find_jdks(extra: list[Path] | None = None) -> list[Jdk]:
    """Every JDK on the machine we can see, newest first (each real directory once)."""
    seen: set[Path] = set()
    found: list[Jdk] = []
    for home in _jdk_candidates(extra):
        home = home / "Contents" / "Home" if (home / "Contents" / "Home").is_dir() else home  # macOS bundles
        real = Path(os.path.realpath(home))
        if real in seen:
            continue
        seen.add(real)
        major = java_major(real)
        if major:
            found.append(Jdk(real, major))
    return sorted(found, key=lambda jdk: jdk.major, reverse=True)


def supported_major(version: str) -> int:
    """The major of an RRS_ES_VERSION the local node can run (8 or 9), or a one-line NodeError."""
    head = version.split(".")[0]
    if not head.isdigit() or int(head) not in PINNED_VERSIONS:
        raise NodeError(
            f"RRS_ES_VERSION={version} is not supported: the local node runs Elasticsearch "
            f"{PINNED_VERSIONS[8]} (8.19.x) or {PINNED_VERSIONS[9]} (9.x); set one of them, or unset it for the newest."
        )
    return int(head)


def choose_version(jdks: list[Jdk], override: str | None = None) -> tuple[str, Jdk]:
    """The newest pinned ES version some JDK here can run, and that JDK."""
    if not jdks:
        raise NodeError(
            "No Java found. Elasticsearch needs a JDK: install Java 21 or newer "
            "(Debian: apt install openjdk-21-jdk-headless, or a Temurin JDK) or set ES_JAVA_HOME."
        )
    if override:
        major = supported_major(override)
        need = MIN_JAVA_FOR_MAJOR[major]
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
        mvn,
        "-q",
        "-B",
        "dependency:copy",
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


def add_english_analysis(es_home: Path, version: str, cache: Path, java_home: Path, log=print) -> bool:
    """Install our plugin (``rrsearch``: the english analyzer, and on 9.x the retrievers and
    ``rrs_embed``) into the distribution; where it cannot be built, say why and go on (text
    fields then use the standard analyzer)."""
    from rrsearch.rrs.es_plugin import build_plugin, install_plugin

    try:
        install_plugin(es_home, build_plugin(version, cache, java_home, log=log, es_home=es_home), java_home, log=log)
        return True
    except NodeError as exc:
        log(f"The rrsearch plugin is not installed ({exc}); text fields will use the standard analyzer.")
        return False


def add_local_node_plugin(
    es_home: Path, version: str, cache: Path, java_home: Path, log=print, *, project: Path = LOCAL_NODE_PROJECT
) -> bool:
    """Install ``rrs-local-node`` into the integ-test distribution at ``es_home``: analysis-common's
    token filters, tokenizers, char filters and analyzers (the ``.security`` index's ``email``
    analyzer among its users, so API keys work with security on) and rest-root's ``GET /``.
    Where it cannot be built or installed, say in one line what the node lacks and go on.
    A distribution that has those modules gets nothing (False)."""
    from rrsearch.rrs.es_plugin import build_plugin, install_plugin

    if any((es_home / "modules" / module).is_dir() for module in LOCAL_NODE_PROVIDES):
        return False
    label = f"{LOCAL_NODE_PLUGIN} plugin"
    try:
        plugin_zip = build_plugin(
            version,
            cache,
            java_home,
            log=log,
            es_home=es_home,
            project=project,
            artifact=LOCAL_NODE_PLUGIN,
            label=label,
        )
        install_plugin(es_home, plugin_zip, java_home, log=log, name=LOCAL_NODE_PLUGIN, label=label)
        return True
    except NodeError as exc:
        lines = [text for line in str(exc).splitlines() if (text := re.sub(r"\x1b\[[0-9;]*m", "", line).strip())]
        errors = [line for line in lines[1:] if "ERROR" in line]  # Maven's: the first naming a source file says most
        detail = next((line for line in errors if ".java:" in line), errors[0] if errors else "")
        reason = lines[0] + (f" {detail}" if detail else "") if lines else type(exc).__name__
        log(
            f"The {label} is not installed ({reason}); this node has no GET / and no analysis-common analysis "
            "(lowercase, synonym, stemmer, ngram, html_strip, the language analyzers, ...): API keys fail with security on."
        )
        return False


def prepare_distribution(settings: Settings, log=print) -> Distribution:
    """Everything a node needs before it can start: a JDK, the version it can run, that
    version fetched and unpacked (once), the local node's own plugin installed and, when
    asked, the english plugin."""
    version, jdk = choose_version(
        find_jdks([settings.es_java_home] if settings.es_java_home else None), settings.es_version
    )
    if settings.es_java_home and jdk.home != Path(os.path.realpath(settings.es_java_home)):
        log(f"ES_JAVA_HOME is Java too old for {version}; using {jdk.home} instead.")
    cache = settings.home.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    # `rrs es start` run at once in several node directories shares this distribution: one fetches,
    # unpacks and installs the plugins while the others wait, then find it done.
    with open(cache / f"dist-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        home = unpack_distribution(fetch_distribution(version, cache), cache)
        if settings.es_english_plugin:
            add_english_analysis(home, version, cache, jdk.home, log)
        add_local_node_plugin(home, version, cache, jdk.home, log)
    if note := retrievers_note(version):
        log(note)
    return Distribution(version, home, jdk)
