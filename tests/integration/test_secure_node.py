"""A secured local node (``rrs es start --secure``): TLS, the elastic password, and the
least-privilege roles of core/security_roles.py, each used for what it is meant for.

One node for the module, started with the same code as ``rrs es start --secure`` in its own
directory and port. The commands run through ``rrs`` (click's runner) with nothing but the
node directory in the environment: the URL, CA and password come from its ``node.json``.
The roles are tried with file-realm users (they need no ``.security`` index) and, where the
node can make them, with API keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from rrsearch.core.security_roles import ADMIN, READER, ROLE_NAMES, SEARCH_LOG, SEARCH_SERVICE, WRITER, role_descriptors
from rrsearch.core.settings import Settings

pytestmark = pytest.mark.slow  # a node of its own (~40 s to start here), and ingest runs

SLICE = 12  # documents of sample/corpus.jsonl each ingest takes
# The environment names that would point the commands elsewhere: the tests set what they need.
FOREIGN = ("ES_URL", "ES_API_KEY", "ES_USERNAME", "ES_PASSWORD", "ES_CA_CERTS", "RRS_INDEX_ALIAS")
NO_API_KEYS = (
    "API keys need the rrs-local-node plugin (es_local_node_plugin/, installed by rrs/es_distribution.py "
    "prepare_distribution): without its analysis-common filters the .security index cannot be created and "
    "POST /_security/api_key answers 400"
)


@pytest.fixture(scope="module")
def secure_node():
    """Settings of a node started as ``rrs es start --secure`` does (stopped and removed at the end)."""
    from rrsearch.rrs.local_node import first_free_port, start_node, stop_node

    base = Settings()
    if base.es_url:
        pytest.skip("ES_URL names an external cluster: the secured local node is not started")
    settings = base.model_copy(
        update={
            "es_node_dir": base.home / f"test-node-secure-{os.getpid()}",  # conftest clears it if pytest dies
            "es_port": first_free_port(9460),
            "es_heap": "1g",
            "es_secure": True,
            "index_alias": "passages",
            "es_url": None,
            "es_api_key": None,
            "es_username": None,
            "es_password": None,
            "es_ca_certs": None,
        }
    )
    shutil.rmtree(settings.node_dir, ignore_errors=True)
    start_node(settings, log=print)
    yield settings
    stop_node(settings, log=print)
    shutil.rmtree(settings.node_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def state(secure_node) -> dict:
    return json.loads((secure_node.node_dir / "node.json").read_text())


@pytest.fixture(scope="module")
def elastic(state) -> tuple[str, str]:
    return "elastic", Path(state["auth"]["password_file"]).read_text().strip()


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a user has: the node directory, offline models, and ``extra``."""
    env = {name: value for name, value in os.environ.items() if name not in FOREIGN}
    env.update(RRS_ES_NODE_DIR=str(settings.node_dir), HF_HUB_OFFLINE="1", RRS_RERANK_ENABLED="false", **extra)
    return env


def rrs(settings: Settings, *args: str, **extra: str):
    """``rrs ARGS`` in this process with that environment; the click result (exit_code, output, stderr)."""
    from rrsearch.rrs.cli import main

    env = env_for(settings, **extra)
    # CliRunner sets what ``env`` holds; the names left out must be unset too (None unsets).
    unset = {name: None for name in FOREIGN if name not in env}
    return CliRunner().invoke(main, list(args), env={**env, **unset}, catch_exceptions=True)


def corpus_slice(tmp_path: Path, repo_root: Path, start: int, count: int = SLICE) -> tuple[Path, list[str]]:
    lines = (repo_root / "sample" / "corpus.jsonl").read_text().splitlines()[start : start + count]
    path = tmp_path / f"slice-{start}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, [json.loads(line)["id"] for line in lines]


def search_app(monkeypatch, settings: Settings, bi_encoder, **extra: str):
    """The search service (``rrs serve``'s app) with the settings that environment gives."""
    from rrsearch.service.http.app import create_app

    for name in FOREIGN:
        monkeypatch.delenv(name, raising=False)
    for name, value in env_for(settings, **extra).items():
        monkeypatch.setenv(name, value)
    app = create_app(Settings(), bi_encoder=bi_encoder)
    app.testing = True
    return app


def one_error_line(output: str) -> str:
    """The command's one ``error:`` line (there must be exactly one)."""
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    return errors[0]


def logged(es, settings: Settings) -> int:
    es.indices.refresh(index=settings.search_log_index)
    return es.count(index=settings.search_log_index)["count"]


# --- The node and what it records --------------------------------------------------------


def test_status_gives_the_url_the_ca_and_how_to_authenticate_never_the_password(secure_node, state, elastic):
    result = rrs(secure_node, "es", "status", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["running"] is True and info["state"] == "running" and info["secure"] is True
    assert info["url"].startswith("https://127.0.0.1:") and info["url"] == state["url"]
    assert info["ca_certs"] == state["ca_certs"] and Path(info["ca_certs"]).is_file()
    assert info["auth"] == {"method": "basic", "username": "elastic", "password_file": state["auth"]["password_file"]}
    assert elastic[1] not in result.output and elastic[1] not in json.dumps(state)
    folder = secure_node.node_dir / "security"
    for name in ("ca.key", "node.key", "elastic.password"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    text = rrs(secure_node, "es", "status")
    assert text.exit_code == 0 and f"security on: CA {state['ca_certs']}" in text.stdout


def test_basic_auth_over_tls_and_the_client_needs_nothing_set(secure_node, state, elastic):
    from rrsearch.core.es_client import make_client, server_version

    url = state["url"]
    me = requests.get(f"{url}/_security/_authenticate", auth=elastic, verify=state["ca_certs"], timeout=10)
    assert me.status_code == 200 and me.json()["username"] == "elastic"
    anonymous = requests.get(f"{url}/_cluster/health", verify=state["ca_certs"], timeout=10)
    assert anonymous.status_code == 401
    with pytest.raises(requests.exceptions.SSLError):  # the system's CAs do not know ours
        requests.get(f"{url}/_cluster/health", auth=elastic, verify=True, timeout=10)
    es = make_client(secure_node)
    assert server_version(es).startswith(("8.", "9.")) and es.security.authenticate()["username"] == "elastic"
    es.close()


def test_the_choice_is_the_directorys(secure_node, state):
    """A start that does not ask finds the node running, secured; asking for it open while it
    runs secured is refused, naming what to do."""
    from rrsearch.core.errors import NodeError
    from rrsearch.rrs.local_node import start_node

    plain = Settings(es_node_dir=secure_node.node_dir, home=secure_node.home, es_port=secure_node.es_port)
    info = start_node(plain, log=print)
    assert info.running and info.secure and info.url == state["url"]
    with pytest.raises(NodeError, match="running with security; stop it first"):
        start_node(secure_node.model_copy(update={"es_secure": False}), log=print)


# --- What goes wrong, and what says so ---------------------------------------------------


def test_a_wrong_password_exits_non_zero_and_status_says_up_but_refused(secure_node, state):
    wrong = {"ES_USERNAME": "elastic", "ES_PASSWORD": "not-the-password"}
    info = rrs(secure_node, "index", "info", **wrong)
    assert info.exit_code != 0 and "Traceback" not in info.output
    assert one_error_line(info.output).startswith(
        f"error: Elasticsearch at {state['url']} refused the credentials (401"
    )
    status = rrs(secure_node, "es", "status", **wrong)
    assert status.exit_code == 4
    assert status.stdout.startswith(f"up but refused (401) at {state['url']}")
    assert "ES_API_KEY or ES_USERNAME/ES_PASSWORD" in status.stdout and state["auth"]["password_file"] in status.stdout
    info = json.loads(rrs(secure_node, "es", "status", "--json", **wrong).stdout)
    assert info["running"] is False and info["state"] == "refused" and info["http_status"] == 401
    assert info["fix"].startswith("up but refused (401)")


def test_a_missing_ca_exits_non_zero_and_status_says_tls_verification_failed(secure_node, state, elastic):
    first = state["url"].split(",")[0]
    no_ca = {"ES_URL": first, "ES_USERNAME": elastic[0], "ES_PASSWORD": elastic[1]}
    info = rrs(secure_node, "index", "info", **no_ca)
    assert info.exit_code != 0 and "Traceback" not in info.output
    assert "set ES_CA_CERTS to the PEM file" in one_error_line(info.output)
    status = rrs(secure_node, "es", "status", **no_ca)
    assert status.exit_code == 5, status.output
    assert status.stdout.startswith(f"up but TLS verification failed at {first}") and "ES_CA_CERTS" in status.stdout
    info = json.loads(rrs(secure_node, "es", "status", "--json", **no_ca).stdout)
    assert info["running"] is False and info["state"] == "tls_failed" and info["managed"] is False
    with_ca = rrs(secure_node, "es", "status", **no_ca, ES_CA_CERTS=state["ca_certs"])
    assert with_ca.exit_code == 0 and with_ca.stdout.startswith("running: external cluster")
    plain_http = rrs(secure_node, "es", "status", **{**no_ca, "ES_URL": first.replace("https://", "http://")})
    assert plain_http.exit_code == 5 and "use an https:// URL" in plain_http.stdout


def test_a_node_that_is_down_is_still_not_running(tmp_path):
    """The old answer stays for what it meant: nothing listens (exit 3)."""
    from rrsearch.rrs.local_node import first_free_port

    folder = tmp_path / "node"
    folder.mkdir()
    port = first_free_port(9490)
    (folder / "node.json").write_text(
        json.dumps({"url": f"https://127.0.0.1:{port}", "secure": True, "ca_certs": str(folder / "ca.crt")})
    )
    status = rrs(Settings(es_node_dir=folder), "es", "status", "--json")
    assert status.exit_code == 3 and json.loads(status.stdout)["state"] == "not_running"


# --- The whole flow, nothing copied by hand ------------------------------------------------


def test_index_create_ingest_and_search_with_nothing_copied(secure_node, tmp_path, repo_root, bi_encoder, monkeypatch):
    created = rrs(secure_node, "index", "create")
    assert created.exit_code == 0, created.output
    source, ids = corpus_slice(tmp_path, repo_root, 0)
    ingested = rrs(secure_node, "ingest", str(source))
    assert ingested.exit_code == 0, ingested.output
    client = search_app(monkeypatch, secure_node, bi_encoder).test_client()
    response = client.post("/search", json={"query": "plants in pots", "top_k": 5})
    assert response.status_code == 200, response.get_json()
    assert {hit["parent_id"] for hit in response.get_json()["hits"]} <= set(ids)
    assert client.get("/readyz").status_code == 200


# --- Least privilege: file-realm users with our roles --------------------------------------


def _pbkdf2(password: str) -> str:
    """A users-file hash the node reads (PBKDF2-HMAC-SHA512, as elasticsearch-users writes with -p pbkdf2)."""
    salt = os.urandom(32)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 10_000, 32)
    return "{PBKDF2}10000$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


USERS = {"rrs-admin": (ADMIN,), "rrs-writer": (WRITER,), "rrs-service": SEARCH_SERVICE, "rrs-reader": (READER,)}


@pytest.fixture(scope="module")
def role_users(secure_node, state) -> dict[str, dict[str, str]]:
    """A file-realm user per role set, in the node's ``users``/``users_roles`` (the node re-reads
    them within seconds); the roles are those ``rrs es start --secure`` put in ``roles.yml``."""
    conf = secure_node.node_dir / "config"
    roles_file = (conf / "roles.yml").read_text()
    assert all(f"{name}: " in roles_file for name in ROLE_NAMES)
    passwords = {user: f"pw-{user}-{os.getpid()}" for user in USERS}
    (conf / "users").write_text("".join(f"{user}:{_pbkdf2(passwords[user])}\n" for user in USERS))
    members: dict[str, list[str]] = {}
    for user, roles in USERS.items():
        for role in roles:
            members.setdefault(role, []).append(user)
    (conf / "users_roles").write_text("".join(f"{role}:{','.join(users)}\n" for role, users in members.items()))
    deadline = time.monotonic() + 60
    url = state["url"].split(",")[0]
    for user in USERS:
        while True:
            seen = requests.get(
                f"{url}/_security/_authenticate", auth=(user, passwords[user]), verify=state["ca_certs"], timeout=10
            )
            if seen.status_code == 200 and sorted(seen.json()["roles"]) == sorted(USERS[user]):
                break
            assert time.monotonic() < deadline, f"the node did not load the users file: {seen.text}"
            time.sleep(1)
    return {user: {"ES_USERNAME": user, "ES_PASSWORD": password} for user, password in passwords.items()}


def test_each_role_does_its_job_and_no_more(secure_node, role_users, tmp_path, repo_root, bi_encoder, monkeypatch):
    from rrsearch.core.es_client import make_client

    alias = {"RRS_INDEX_ALIAS": "passages"}
    admin, writer = {**role_users["rrs-admin"], **alias}, {**role_users["rrs-writer"], **alias}
    service, reader = {**role_users["rrs-service"], **alias}, {**role_users["rrs-reader"], **alias}
    # admin: index create (and the lock and search-log indexes); the writer may not make a version
    created = rrs(secure_node, "index", "create", **admin)
    assert created.exit_code == 0, created.output
    assert rrs(secure_node, "index", "create", "--new-version", **writer).exit_code != 0
    # writer: ingest into the alias and delete; the reader may not ingest, nor the service delete
    source, ids = corpus_slice(tmp_path, repo_root, 40)
    assert rrs(secure_node, "ingest", str(source), **reader).exit_code != 0
    ingested = rrs(secure_node, "ingest", str(source), **writer)
    assert ingested.exit_code == 0, ingested.output
    es = make_client(secure_node)
    assert rrs(secure_node, "delete", ids[0], **service).exit_code != 0
    deleted = rrs(secure_node, "delete", ids[0], **writer)
    assert deleted.exit_code == 0, deleted.output
    assert es.count(index="passages", query={"term": {"parent_id": ids[0]}})["count"] == 0
    assert es.count(index="passages", query={"term": {"parent_id": ids[1]}})["count"] > 0
    # the service: search, and its search log; nothing more
    before = logged(es, secure_node)
    app = search_app(monkeypatch, secure_node, bi_encoder, **service)
    answer = app.test_client().post("/search", json={"query": "history of the roman empire", "top_k": 3})
    assert answer.status_code == 200, answer.get_json()
    assert app.extensions["rrs"]["search_log"].flush()
    assert logged(es, secure_node) == before + 1
    # the reader alone searches too, but its search log is refused (and said to be, once)
    plain = search_app(monkeypatch, secure_node, bi_encoder, **reader)
    assert plain.test_client().post("/search", json={"query": "volcano", "top_k": 3}).status_code == 200
    plain.extensions["rrs"]["search_log"].flush()
    assert plain.extensions["rrs"]["search_log"].refused
    # admin: --reindex (a new version, the alias swap) and index delete; the writer may do neither
    assert rrs(secure_node, "ingest", "--reindex", str(source), **writer).exit_code != 0
    assert rrs(secure_node, "ingest", "--reindex", str(source), **admin).exit_code == 0
    assert rrs(secure_node, "index", "delete", "--yes", **writer).exit_code != 0
    es.close()


def test_the_role_file_matches_the_settings(secure_node):
    """roles.yml on the node holds role_descriptors() for the node's settings, one role a line."""
    lines = (secure_node.node_dir / "config" / "roles.yml").read_text().splitlines()
    parsed = {line.split(": ", 1)[0]: json.loads(line.split(": ", 1)[1]) for line in lines}
    assert parsed == role_descriptors(secure_node)


# --- Least privilege: API keys --------------------------------------------------------------


@pytest.fixture(scope="module")
def api_key(secure_node):
    """Make an API key with some of our roles (as elastic); skips where the node cannot make keys."""
    from elasticsearch import BadRequestError

    from rrsearch.core.es_client import make_client

    es = make_client(secure_node)
    try:
        es.security.create_api_key(name="rrs-probe", role_descriptors={}, expiration="1h")
    except BadRequestError as exc:
        es.close()
        if "Unknown filter type" in str(exc) or "pattern_capture" in str(exc):
            pytest.skip(NO_API_KEYS)
        raise

    def make(*roles: str, alias: str = "passages") -> dict[str, str]:
        key = es.security.create_api_key(
            name=f"rrs-{'-'.join(roles)}", role_descriptors=role_descriptors(secure_node, roles, alias=alias)
        )
        return {"ES_API_KEY": key["encoded"], "RRS_INDEX_ALIAS": alias}

    yield make
    es.close()


def test_api_keys_reader_key_for_the_service_writer_key_for_ingest(
    secure_node, api_key, tmp_path, repo_root, bi_encoder, monkeypatch
):
    from rrsearch.core.es_client import make_client

    alias = "keyed"
    admin, writer = api_key(ADMIN, alias=alias), api_key(WRITER, alias=alias)
    service, reader = api_key(*SEARCH_SERVICE, alias=alias), api_key(READER, alias=alias)
    created = rrs(secure_node, "index", "create", **admin)
    assert created.exit_code == 0, created.output
    source, ids = corpus_slice(tmp_path, repo_root, 80)
    refused = rrs(secure_node, "ingest", str(source), **reader)  # a reader key cannot ingest: one line says why
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "(403): grant" in one_error_line(refused.output)
    ingested = rrs(secure_node, "ingest", str(source), **writer)
    assert ingested.exit_code == 0, ingested.output
    es = make_client(secure_node)
    before = logged(es, secure_node)
    app = search_app(monkeypatch, secure_node, bi_encoder, **service)
    answer = app.test_client().post("/search", json={"query": "ocean tides", "top_k": 3})
    assert answer.status_code == 200, answer.get_json()
    assert {hit["parent_id"] for hit in answer.get_json()["hits"]} <= set(ids)
    assert app.extensions["rrs"]["search_log"].flush() and logged(es, secure_node) == before + 1
    assert rrs(secure_node, "delete", ids[0], **service).exit_code != 0
    assert rrs(secure_node, "delete", ids[0], **writer).exit_code == 0
    assert rrs(secure_node, "index", "delete", "--yes", **admin).exit_code == 0
    es.close()


def test_es_status_with_a_reader_key_says_which_privilege_is_missing(secure_node, api_key):
    status = rrs(secure_node, "es", "status", **api_key(READER))
    assert status.exit_code == 4 and status.stdout.startswith("up but refused (403)")
    assert "monitor" in status.stdout


def test_the_service_without_its_privileges_says_misconfigured_not_retry(
    secure_node, api_key, tmp_path, repo_root, bi_encoder, monkeypatch, caplog
):
    """A key that may not read the index: searches and /readyz say "misconfigured credentials or
    privileges", not "retry shortly". A key that may read but not write the search log: searches
    are served, and the log says so once and stops retrying."""
    import logging

    alias = "unprivileged"
    created = rrs(secure_node, "index", "create", **api_key(ADMIN, alias=alias))
    assert created.exit_code == 0, created.output
    source, _ids = corpus_slice(tmp_path, repo_root, 100)
    assert rrs(secure_node, "ingest", str(source), **api_key(WRITER, alias=alias)).exit_code == 0

    no_read = search_app(monkeypatch, secure_node, bi_encoder, **api_key(SEARCH_LOG, alias=alias))
    answer = no_read.test_client().post("/search", json={"query": "ocean tides", "top_k": 3})
    assert answer.status_code == 503 and answer.get_json()["error"] == "search_backend_misconfigured"
    assert "misconfigured credentials or privileges" in answer.get_json()["message"]
    assert "retry shortly" not in answer.get_json()["message"]
    ready = no_read.test_client().get("/readyz")
    assert ready.status_code == 503
    assert any("misconfigured credentials or privileges" in p for p in ready.get_json()["problems"])

    read_only = search_app(monkeypatch, secure_node, bi_encoder, **api_key(READER, alias=alias))
    writer = read_only.extensions["rrs"]["search_log"]
    with caplog.at_level(logging.ERROR, logger="rrsearch.service.search_log"):
        for query in ("ocean tides", "bread yeast", "violin strings"):
            assert read_only.test_client().post("/search", json={"query": query, "top_k": 3}).status_code == 200
            assert writer.flush(20)
    assert writer.refused is not None and "(403" in writer.refused and "security.md" in writer.refused
    said = [r.getMessage() for r in caplog.records if "refuses writes" in r.getMessage()]
    assert len(said) == 1 and secure_node.search_log_index in said[0]  # once, not once per record or retry
