"""Our Elasticsearch plugin, ``rrsearch`` (the Maven project in ``es_plugin/``), built, installed
and configured here: the ``english`` analyzer, the ``rrs_rrf`` / ``rrs_linear`` / ``rrs_rerank``
retrievers, the ``rrs_embed`` query vector builder and ingest processor (Java packages
``rrs.analysis.english``, ``rrs.search``, ``rrs.embed``; docs/plugin.md), with the node settings
``rrs es start`` gives them and the ingest pipeline ``rrs index create`` makes.

Why: production clusters (and the official Docker images) ship the ``analysis-common``
module, so text fields can use the ``english`` analyzer (Lucene's ``EnglishAnalyzer``:
standard tokenizer, possessive filter, lowercase, English stop words, Porter stemmer). The
local node is the ``integ-test-zip`` distribution from Maven Central, which lacks that
module: without this plugin it has no ``english`` analyzer and ranks text differently
from production. Lucene's English analysis ships in the node's own ``lib/``, and the
server jar is on Maven Central, so a small plugin closes the gap.

The Maven project lives at the top of the checkout (``es_plugin/``, beside ``es_mappings/``;
in a wheel ``rrsearch/es_plugin/``, package data). It is built in a copy under ``<cache>/plugins`` (the repository tree stays clean) against the node's exact
Elasticsearch and Lucene versions, and the zip is kept there: a later call with the same
version and the same plugin sources returns it without running Maven. A first build takes
about 10 s plus Maven's downloads (a few MB, once per machine into ``~/.m2``).

The same functions build and install any of our plugin projects: ``project`` (the Maven
project's folder), ``name`` (the descriptor's name) and ``label`` (how messages call it) default
to this plugin's; the local node's ``rrs-local-node`` (``es_plugin/local-node/``,
:mod:`rrsearch.rrs.es_distribution`) passes its own. Installing ``rrsearch`` removes the
analyzer-only build it replaces (``rrs-analysis-english``, its name before it had four jobs):
both on one node would register ``english`` twice, and the node would not start.

Example::

    zip_path = build_plugin("9.5.4", cache=Path("/var/cache/rrs"), java_home=jdk.home)
    install_plugin(es_home, zip_path, java_home=jdk.home)   # then start the node
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from rrsearch.core.errors import NodeError
from rrsearch.core.pool_announcement import RERANKER_KEY_SETTING, RERANKER_URL_SETTING, announced_url

PLUGIN_NAME = "rrsearch"  # the descriptor's name: the node installs it as plugins/<name>
ARTIFACT = "rrsearch-es-plugin"  # the Maven artifact: target/rrsearch-es-plugin-<es version>.zip
ANALYZER_NAME = "english"
# es_plugin/ at the top of the checkout (rrs/../es_plugin), or rrsearch/es_plugin/ in a wheel: the same path from here
PROJECT_DIR = Path(__file__).resolve().parent.parent / "es_plugin"
LOCAL_NODE_DIR = "local-node"  # es_plugin/local-node/: the local node's own plugin, a Maven project of its own
LABEL = "rrsearch Elasticsearch plugin"  # how messages name this plugin
# Names a plugin had before: installing it removes them (they register the same analyzer and retrievers).
LEGACY_NAMES = {PLUGIN_NAME: ("rrs-analysis-english",)}
_LUCENE_JAR = re.compile(r"^lucene-analysis-common-(\d+(?:\.\d+)*)\.jar$")
_TAIL = 3000  # characters of a failing tool's output kept in the error


def project_fingerprint(project: Path = PROJECT_DIR) -> str:
    """A short hash of the plugin's sources (pom and src/), so an edited plugin is rebuilt."""
    digest = hashlib.sha256()
    files = [project / "pom.xml", *sorted(p for p in (project / "src").rglob("*") if p.is_file())]  # not local-node/
    for path in files:
        digest.update(path.relative_to(project).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def lucene_version(es_home: Path) -> str:
    """The Lucene version of a distribution, read off ``lib/lucene-analysis-common-<v>.jar``."""
    lib = es_home / "lib"
    found = [m.group(1) for p in (lib.iterdir() if lib.is_dir() else []) if (m := _LUCENE_JAR.match(p.name))]
    if len(found) != 1:
        raise NodeError(
            f"Cannot tell the Lucene version of {es_home}: expected one lucene-analysis-common-*.jar "
            f"in {lib}, found {found or 'none'}."
        )
    return found[0]


def plugin_zip_path(
    es_version: str,
    cache: Path,
    fingerprint: str | None = None,
    *,
    project: Path = PROJECT_DIR,
    name: str = ARTIFACT,
) -> Path:
    """Where the built zip of artifact ``name`` for ``es_version`` (and these sources) is cached."""
    return cache / "plugins" / f"{name}-{es_version}-{fingerprint or project_fingerprint(project)}.zip"


def build_plugin(
    es_version: str,
    cache: Path,
    java_home: Path,
    log=print,
    *,
    es_home: Path | None = None,
    project: Path = PROJECT_DIR,
    artifact: str = ARTIFACT,
    label: str = LABEL,
) -> Path:
    """The plugin zip for Elasticsearch ``es_version``, built with Maven once and cached.

    ``cache`` is the rrs home (``Settings.home``): the zip goes to ``<cache>/plugins`` and
    the Lucene version is read from the distribution in ``<cache>/dist`` (or ``es_home``).
    ``java_home`` must be Java 21+ (the server jar's bytecode level; 17+ for 8.x); it is Maven's
    JAVA_HOME. For Elasticsearch 8.x the build has the ``english`` analyzer only (see
    :func:`retrievers_note`).
    """
    if not (project / "pom.xml").exists():
        raise NodeError(
            f"The {label}'s Maven project is missing ({project}): run from a checkout, or reinstall the wheel "
            "(it carries es_plugin/ as package data)."
        )
    fingerprint = project_fingerprint(project)
    target = plugin_zip_path(es_version, cache, fingerprint, name=artifact)
    if target.exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise NodeError(f"Maven (mvn) is needed to build the {label}: install it (Debian: apt install maven).")
    lucene = lucene_version(es_home or cache / "dist" / f"elasticsearch-{es_version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"Building the {label} for Elasticsearch {es_version} (Lucene {lucene}) with Maven...")
    # A private build folder: two builds at once (a test and `rrs es start`) don't collide.
    work = Path(tempfile.mkdtemp(prefix=f"build-{es_version}-", dir=target.parent))
    try:
        copy = work / "project"
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns("target", LOCAL_NODE_DIR, "__pycache__"))
        env = dict(os.environ, JAVA_HOME=str(java_home))
        cmd = [
            mvn,
            "-q",
            "-B",
            "package",
            f"-Delasticsearch.version={es_version}",
            f"-Dlucene.version={lucene}",
            f"-Delasticsearch.major={es_version.split('.')[0]}",  # a pom may pick sources or Java by major
            *(["-Pes8"] if es_version.split(".")[0] == "8" else []),  # 8.x: the analyzer alone (pom.xml)
        ]
        try:
            result = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=900, check=False)
        except subprocess.TimeoutExpired as exc:
            raise NodeError(f"Maven did not finish building the {label} within 15 minutes.") from exc
        built = copy / "target" / f"{artifact}-{es_version}.zip"
        if result.returncode != 0 or not built.exists():
            tail = (result.stdout + result.stderr)[-_TAIL:]
            raise NodeError(
                f"mvn could not build the {label} for Elasticsearch {es_version} (exit {result.returncode}):\n{tail}"
            )
        partial = work / target.name
        shutil.copyfile(built, partial)
        os.replace(partial, target)  # atomic: a reader never sees half a zip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"Built {target}.")
    return target


def _zip_jars(plugin_zip: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(plugin_zip) as archive:
        return {Path(n).name: archive.read(n) for n in archive.namelist() if n.endswith(".jar")}


def installed_matches(es_home: Path, plugin_zip: Path, *, name: str = PLUGIN_NAME) -> bool:
    """True when ``plugins/<name>`` holds exactly the jars of ``plugin_zip``."""
    installed = es_home / "plugins" / name
    if not installed.is_dir():
        return False
    jars = _zip_jars(plugin_zip)
    return bool(jars) and all(
        (installed / name).is_file() and (installed / name).read_bytes() == data for name, data in jars.items()
    )


def _plugin_cli(es_home: Path, java_home: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR") if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(ES_JAVA_HOME=str(java_home), ES_PATH_CONF=str(es_home / "config"))
    try:
        return subprocess.run(
            [str(es_home / "bin" / "elasticsearch-plugin"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeError(f"elasticsearch-plugin {args[0]} could not run in {es_home}: {exc}") from exc


def install_plugin(
    es_home: Path, plugin_zip: Path, java_home: Path, log=print, *, name: str = PLUGIN_NAME, label: str = LABEL
) -> None:
    """Install the plugin ``name`` into the distribution at ``es_home`` (stopped node), once.

    Skipped when ``plugins/<name>`` already holds this zip's jar; an older build is removed
    first, and so is the plugin under a name it had before (:data:`LEGACY_NAMES`). Run it before
    the node starts: a node loads plugins only at start-up. The files it writes are
    world-readable, so a node that drops root can read them.
    """
    legacy = [old for old in LEGACY_NAMES.get(name, ()) if (es_home / "plugins" / old).exists()]
    if installed_matches(es_home, plugin_zip, name=name) and not legacy:
        return
    for old in legacy:
        log(f"Removing {old} from {es_home}: {name} replaces it.")
        _remove(es_home, java_home, old)
    if installed_matches(es_home, plugin_zip, name=name):
        return
    if (es_home / "plugins" / name).exists():
        log(f"Replacing an older {name} in {es_home}.")
        _remove(es_home, java_home, name)
    log(f"Installing the {label} into {es_home}.")
    result = _plugin_cli(es_home, java_home, ["install", "--batch", plugin_zip.resolve().as_uri()])
    if result.returncode != 0 or not installed_matches(es_home, plugin_zip, name=name):
        tail = (result.stdout + result.stderr)[-_TAIL:]
        raise NodeError(
            f"elasticsearch-plugin could not install {plugin_zip.name} into {es_home} "
            f"(exit {result.returncode}):\n{tail}"
        )


def _remove(es_home: Path, java_home: Path, name: str) -> None:
    removed = _plugin_cli(es_home, java_home, ["remove", "--purge", name])
    if removed.returncode != 0:
        tail = (removed.stdout + removed.stderr)[-_TAIL:]
        raise NodeError(f"elasticsearch-plugin could not remove the old {name} from {es_home}:\n{tail}")


# --- The retrievers' node settings (rrs.search in the same plugin) -------------------------

_RETRIEVERS_CLASS = "rrs/search/RerankPool.class"


def has_retrievers(es_home: Path) -> bool:
    """True when the installed plugin is a build with the retrievers (an older one knows only the analyzer)."""
    installed = es_home / "plugins" / PLUGIN_NAME
    for jar in installed.glob("*.jar") if installed.is_dir() else []:
        with zipfile.ZipFile(jar) as archive:
            if _RETRIEVERS_CLASS in archive.namelist():
                return True
    return False


def retrievers_note(es_version: str | None) -> str | None:
    """The one line a node of ``es_version`` says when our retrievers cannot be on it (8.x:
    they use 9.x server APIs, so the 8.x build has the ``english`` analyzer only), else None."""
    if not es_version or es_version.split(".")[0] != "8":
        return None
    return (
        f"Elasticsearch {es_version}: our plugin gives 8.x nodes the english analyzer only; the rrs_rrf / "
        "rrs_linear / rrs_rerank retrievers need 9.x, so RRS_RETRIEVAL_PATH=retrievers is unavailable here "
        "(the service's default path, msearch, works)."
    )


def plugin_node_settings(es_home: Path, settings) -> tuple[dict[str, str], dict[str, str]]:
    """What ``rrs es start`` gives the node from our settings: ``RRS_RERANKER_URL`` (else the pool
    ``rrs serve --role reranker`` announces here) as ``rrs.reranker.url`` (elasticsearch.yml),
    ``RRS_RERANKER_API_KEY`` as ``rrs.reranker.api_key`` (keystore). Nothing when the plugin with
    the retrievers is not installed: a node refuses to start with a setting no plugin declares."""
    url = settings.reranker_url or announced_url(settings.home)
    if not (url or settings.reranker_api_key) or not has_retrievers(es_home):
        return {}, {}
    yml = {RERANKER_URL_SETTING: url} if url else {}
    key = settings.reranker_api_key.get_secret_value() if settings.reranker_api_key else None
    return yml, ({RERANKER_KEY_SETTING: key} if key else {})


def write_keystore(es_home: Path, conf: Path, java_home: Path, secrets: dict[str, str]) -> None:
    """Put ``secrets`` into the node's keystore (``<conf>/elasticsearch.keystore``, created when
    missing) with ``elasticsearch-keystore``, values on stdin so they never appear in a process list."""
    if not secrets:
        return
    env = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR") if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(ES_JAVA_HOME=str(java_home), ES_PATH_CONF=str(conf))
    tool = str(es_home / "bin" / "elasticsearch-keystore")
    for name, value in secrets.items():
        args = [tool, "add", "-f", "-x", name]  # -f: create the keystore when missing; -x: the value from stdin
        try:
            result = subprocess.run(
                args, env=env, input=value, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NodeError(f"elasticsearch-keystore could not run in {es_home}: {exc}") from exc
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-_TAIL:]
            raise NodeError(f"elasticsearch-keystore could not store {name}: {tail}")


# --- rrs_embed: the ingest pipeline `rrs index create` makes ---------------------------------

EMBED_PROCESSOR = "rrs_embed"
EMBED_PIPELINE = "rrsearch-embed"  # one pipeline for every alias: the processor reads each index's own _meta.bi_encoder
EMBED_TEMPLATE_PRIORITY = 500  # plus the alias's length: two aliases' patterns ('a-v*', 'ab-v*') never share a priority


def embed_template_name(alias: str) -> str:
    """The index template that gives every version of ``alias`` (``<alias>-v*``) the pipeline."""
    return f"{EMBED_PIPELINE}-{alias}"


def embed_processor_everywhere(es) -> bool:
    """True when every ingest node of the cluster has our plugin's ``rrs_embed`` processor."""
    nodes = es.nodes.info(metric="ingest")["nodes"].values()
    ingest = [node for node in nodes if "ingest" in node.get("roles", ["ingest"])]
    return bool(ingest) and all(
        EMBED_PROCESSOR in {p["type"] for p in node.get("ingest", {}).get("processors", [])} for node in ingest
    )


def attach_embed_pipeline(es, alias: str, index: str) -> str:
    """Make ``_bulk`` into ``alias`` embed raw passages: the pipeline :data:`EMBED_PIPELINE` (one
    ``rrs_embed`` processor), the default pipeline of ``index`` and, through an index template, of
    every later version of the alias (``rrs ingest --reindex``). ``rrs ingest`` goes through it too
    and is not embedded twice: the processor keeps a vector whose ``model`` is the index's. The
    line to print: what was done, or why not (a node without our plugin: nothing changes)."""
    from elasticsearch import ApiError

    if not embed_processor_everywhere(es):
        return (
            f"{alias}: no ingest pipeline (the cluster's nodes lack our plugin's {EMBED_PROCESSOR} processor): a _bulk "
            "of raw passages gets no vectors here; rrs ingest works as before (docs/plugin.md says how to install it)"
        )
    try:
        es.ingest.put_pipeline(
            id=EMBED_PIPELINE,
            description="rrsearch: each passage's vector from the node's embedding pool (rrs.embedder.url, else "
            "rrs.reranker.url), as rrs ingest makes it; a passage that has its vector keeps it",
            processors=[{EMBED_PROCESSOR: {}}],
            meta={"managed_by": "rrs index create"},
        )
        es.indices.put_index_template(
            name=embed_template_name(alias),
            index_patterns=[f"{alias}-v*"],
            priority=EMBED_TEMPLATE_PRIORITY + len(alias),
            template={"settings": {"index.default_pipeline": EMBED_PIPELINE}},
            meta={"managed_by": "rrs index create", "alias": alias},
        )
        es.indices.put_settings(index=index, settings={"index.default_pipeline": EMBED_PIPELINE})
    except ApiError as exc:
        if exc.meta.status == 403:
            return (
                f"{alias}: no ingest pipeline: this user may not make one (it needs the cluster privileges "
                "manage_ingest_pipelines and manage_index_templates, as rrs_admin has); _bulk of raw passages gets no vectors"
            )
        raise
    return f"{alias}: _bulk of raw passages is embedded by the ingest pipeline {EMBED_PIPELINE} ({EMBED_PROCESSOR})"


def detach_embed_pipeline(es, alias: str) -> None:
    """Remove the alias's index template (the shared pipeline stays: other aliases use it)."""
    from elasticsearch import NotFoundError

    try:
        es.indices.delete_index_template(name=embed_template_name(alias))
    except NotFoundError:
        pass
