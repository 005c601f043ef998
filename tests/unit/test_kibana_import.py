"""``rrs kibana import`` against a local stand-in for Kibana's saved-objects import API.

The stand-in (a real HTTP server on a free port, in a thread) checks the request the way
Kibana documents it -- POST /api/saved_objects/_import (or /s/<space>/...), query
overwrite=true, a kbn-xsrf header, credentials when configured, and a multipart/form-data
body whose ``file`` part is an .ndjson file of saved objects -- and answers the way Kibana
does: 200 with success/successCount/successResults/errors, or a 4xx/5xx error body.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from rrsearch.rrs.cli import main
from rrsearch.rrs.kibana import (
    OBJECTS_DIR,
    KibanaError,
    auth_headers,
    build_import_request,
    http_error_message,
    import_url,
    load_objects,
    ndjson_body,
    retitle_data_views,
    summarise_import,
)

ICONS = {"index-pattern": "indexPatternApp", "search": "discoverApp", "lens": "lensApp", "dashboard": "dashboardApp"}
SETTINGS_ENV = [
    "KIBANA_URL",
    "RRS_KIBANA_URL",
    "KIBANA_API_KEY",
    "RRS_KIBANA_API_KEY",
    "KIBANA_USERNAME",
    "RRS_KIBANA_USERNAME",
    "KIBANA_PASSWORD",
    "RRS_KIBANA_PASSWORD",
    "RRS_KIBANA_SPACE",
    "ES_USERNAME",
    "RRS_ES_USERNAME",
    "ES_PASSWORD",
    "RRS_ES_PASSWORD",
    "RRS_INDEX_ALIAS",
    "RRS_SEARCH_LOG_INDEX",
]


# --- a stand-in for Kibana --------------------------------------------------------------


@dataclass
class FakeKibana:
    """Validates import requests like Kibana and records what it received."""

    authorization: str | None = None  # required Authorization header, if any
    reject_ids: dict[str, dict] = field(default_factory=dict)  # id -> Kibana error object
    status: int | None = None  # force an error status (with Kibana's error body)
    status_times: int = 10**9  # ... for this many requests, then answer normally
    received: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def error(self, status: int, error: str, message: str) -> Response:
        body = {"statusCode": status, "error": error, "message": message}
        return Response(json.dumps(body), status=status, content_type="application/json")

    def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return self.error(404, "Not Found", "Not Found")
        space = ""
        path = request.path
        if path.startswith("/s/"):
            _, _, space, path = path.split("/", 3)
            path = "/" + path
        if path != "/api/saved_objects/_import":
            return self.error(404, "Not Found", "Not Found")
        if "kbn-xsrf" not in request.headers:
            return self.error(400, "Bad Request", "Request must contain a kbn-xsrf header.")
        if self.authorization and request.headers.get("Authorization") != self.authorization:
            return self.error(
                401, "Unauthorized", "[security_exception]: missing authentication credentials for REST request"
            )
        if self.status and self.status_times > 0:
            self.status_times -= 1
            return self.error(self.status, "Internal Server Error", "An internal server error occurred.")
        if request.args.get("overwrite") != "true":
            self.problems.append(f"overwrite={request.args.get('overwrite')}")
        if request.mimetype != "multipart/form-data":
            return self.error(415, "Unsupported Media Type", "Unsupported Media Type")
        upload = request.files.get("file")
        if upload is None:
            return self.error(400, "Bad Request", "[request body.file]: expected value of type [Stream]")
        if not upload.filename.endswith(".ndjson"):
            return self.error(400, "Bad Request", f"Invalid file extension {upload.filename}")
        objects = [json.loads(line) for line in upload.read().decode().splitlines() if line.strip()]
        self.received.append(
            {
                "space": space,
                "headers": dict(request.headers),
                "args": dict(request.args),
                "filename": upload.filename,
                "objects": objects,
            }
        )
        return Response(json.dumps(self.answer(objects)), content_type="application/json")

    def answer(self, objects: list[dict]) -> dict:
        ok, errors = [], []
        for obj in objects:
            meta = {"title": obj["attributes"].get("title"), "icon": ICONS.get(obj["type"], "")}
            if obj["id"] in self.reject_ids:
                errors.append(
                    {
                        "id": obj["id"],
                        "type": obj["type"],
                        "meta": meta,
                        "title": meta["title"],
                        "error": self.reject_ids[obj["id"]],
                    }
                )
            else:
                ok.append({"type": obj["type"], "id": obj["id"], "meta": meta, "overwrite": True})
        answer = {"success": not errors, "successCount": len(ok), "warnings": []}
        if ok:
            answer["successResults"] = ok
        if errors:
            answer["errors"] = errors
        return answer


@pytest.fixture
def kibana():
    fake = FakeKibana()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    yield fake
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No Kibana/ES credentials or index overrides from the developer's environment."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    return monkeypatch


def run_import(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["kibana", "import", *args], env=env, catch_exceptions=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- end to end -------------------------------------------------------------------------


def test_import_posts_every_object_and_reports_each_result(kibana, clean_env):
    shipped = load_objects(OBJECTS_DIR)
    result = run_import("--url", kibana.url, "--api-key", "s3cr3t-key")
    assert result.exit_code == 0, result.output
    assert kibana.problems == []
    (call,) = kibana.received
    assert call["space"] == "" and call["args"] == {"overwrite": "true"}
    assert call["headers"]["Kbn-Xsrf"]
    assert call["headers"]["Authorization"] == "ApiKey s3cr3t-key"
    assert call["filename"].endswith(".ndjson")
    assert [(o["type"], o["id"]) for o in call["objects"]] == [(o["type"], o["id"]) for o in shipped]
    ok_lines = [line for line in result.stdout.splitlines() if line.startswith("ok")]
    assert len(ok_lines) == len(shipped)
    assert any("dashboard" in line and "rrs-search-logs-dashboard" in line for line in ok_lines)
    assert "s3cr3t-key" not in result.output


def test_space_and_basic_auth_from_the_environment(kibana, clean_env):
    kibana.authorization = "Basic " + base64.b64encode(b"importer:pa55").decode()
    result = run_import(
        "--url", kibana.url, "--space", "search-team", env={"KIBANA_USERNAME": "importer", "KIBANA_PASSWORD": "pa55"}
    )
    assert result.exit_code == 0, result.output
    assert kibana.received[0]["space"] == "search-team"
    assert "pa55" not in result.output


def test_url_and_key_come_from_settings_when_no_flags(kibana, clean_env):
    kibana.authorization = "ApiKey from-env"
    result = run_import(env={"RRS_KIBANA_URL": kibana.url, "KIBANA_API_KEY": "from-env"})
    assert result.exit_code == 0, result.output
    assert len(kibana.received) == 1


def test_data_views_follow_the_configured_index_names(kibana, clean_env):
    result = run_import(
        "--url",
        kibana.url,
        env={"RRS_INDEX_ALIAS": "docs", "RRS_SEARCH_LOG_INDEX": "docs-logs", "RRS_JUDGMENTS_INDEX": "docs-marks"},
    )
    assert result.exit_code == 0, result.output
    views = {o["id"]: o["attributes"]["title"] for o in kibana.received[0]["objects"] if o["type"] == "index-pattern"}
    assert views == {"rrs-passages": "docs", "rrs-search-logs": "docs-logs", "rrs-judgments": "docs-marks"}


def test_refused_credentials_are_a_clear_error(kibana, clean_env):
    kibana.authorization = "ApiKey right"
    result = run_import("--url", kibana.url, "--api-key", "wrong")
    assert result.exit_code == 1
    assert "refused the credentials" in result.stderr and "HTTP 401" in result.stderr
    assert "missing authentication credentials" in result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("ok")]
    assert kibana.received == []


@pytest.mark.parametrize("status, words", [(500, "Kibana failed"), (503, "not ready"), (403, "may not manage")])
def test_server_errors_are_a_clear_error(kibana, clean_env, status, words):
    kibana.status = status
    result = run_import("--url", kibana.url)
    assert result.exit_code == 1
    assert words in result.stderr and f"HTTP {status}" in result.stderr


def test_wait_retries_while_kibana_is_starting(kibana, clean_env, monkeypatch):
    monkeypatch.setattr("rrsearch.rrs.kibana.RETRY_INTERVAL_S", 0.05)
    kibana.status, kibana.status_times = 503, 3
    result = run_import("--url", kibana.url, "--wait", "30")
    assert result.exit_code == 0, result.output
    assert kibana.status_times == 0 and len(kibana.received) == 1


def test_wrong_base_url_is_a_clear_error(kibana, clean_env):
    result = run_import("--url", kibana.url + "/app/kibana")
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr and "base URL" in result.stderr


def test_rejected_objects_are_named_and_fail_the_command(kibana, clean_env):
    kibana.reject_ids = {
        "rrs-logs-top-queries": {
            "type": "missing_references",
            "references": [{"type": "index-pattern", "id": "rrs-search-logs"}],
        },
        "rrs-search-log": {"type": "unknown", "message": "boom", "statusCode": 500},
    }
    result = run_import("--url", kibana.url)
    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 2
    assert any("rrs-logs-top-queries" in f and "missing_references: index-pattern/rrs-search-logs" in f for f in failed)
    assert any("rrs-search-log " in f and "unknown: boom" in f for f in failed)
    assert f"2 of {len(load_objects())} saved objects were not imported" in result.stderr


def test_unreachable_kibana_is_a_clear_error_from_the_real_script(clean_env):
    port = free_port()  # closed again: nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "rrsearch", "kibana", "import", "--url", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"cannot reach Kibana at http://127.0.0.1:{port}" in done.stderr
    assert "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr


def test_broken_ndjson_names_file_and_line(kibana, clean_env, tmp_path):
    folder = tmp_path / "objects"
    folder.mkdir()
    (folder / "a.ndjson").write_text('{"type":"index-pattern","id":"x","attributes":{"title":"x"}}\n{"type": \n')
    result = run_import("--url", kibana.url, "--dir", str(folder))
    assert result.exit_code == 1
    assert f"{folder / 'a.ndjson'}:2: not JSON" in result.stderr
    assert kibana.received == []


# --- the pure parts ---------------------------------------------------------------------


def test_import_url_is_space_aware_and_checked():
    assert import_url("http://k:5601/") == "http://k:5601/api/saved_objects/_import?overwrite=true"
    assert import_url("https://k/kibana", "ops") == "https://k/kibana/s/ops/api/saved_objects/_import?overwrite=true"
    with pytest.raises(KibanaError, match="space id"):
        import_url("http://k:5601", "Ops Team")
    with pytest.raises(KibanaError, match="http"):
        import_url("k:5601")


def test_auth_prefers_the_api_key():
    assert auth_headers("abc", "u", "p") == {"Authorization": "ApiKey abc"}
    assert auth_headers(None, "u", "p") == {"Authorization": "Basic dTpw"}
    assert auth_headers() == {}


def test_request_carries_xsrf_and_hides_secrets_in_repr():
    request = build_import_request("http://k:5601", b"{}\n", api_key="top-secret")
    assert request.headers["kbn-xsrf"] and request.headers["Authorization"] == "ApiKey top-secret"
    assert request.filename.endswith(".ndjson")
    assert "top-secret" not in repr(request)


def test_summary_accounts_for_every_object_sent():
    sent = [
        {"type": "lens", "id": "a", "attributes": {"title": "A"}},
        {"type": "lens", "id": "b", "attributes": {"title": "B"}},
        {"type": "dashboard", "id": "c", "attributes": {"title": "C"}},
    ]
    payload = {
        "success": False,
        "successCount": 1,
        "successResults": [{"type": "lens", "id": "a", "meta": {"title": "A"}}],
        "errors": [{"type": "dashboard", "id": "c", "title": "C", "error": {"type": "conflict"}}],
    }
    results = summarise_import(payload, sent)
    assert [(r.id, r.ok) for r in results] == [("a", True), ("b", False), ("c", False)]
    assert results[0].detail == "created"
    assert results[1].detail == "not reported by Kibana"
    assert results[2].detail.startswith("conflict")
    with pytest.raises(KibanaError, match="unexpected answer"):
        summarise_import({"statusCode": 200}, sent)


def test_error_messages_name_the_cause():
    assert "credentials" in http_error_message(401, {"message": "nope"}, "http://k") and "nope" in http_error_message(
        401, {"message": "nope"}, "http://k"
    )
    assert "HTTP 413" in http_error_message(413, "Payload Too Large", "http://k")


def test_retitle_only_touches_the_named_data_views():
    objects = [
        {"type": "index-pattern", "id": "rrs-passages", "attributes": {"title": "passages"}},
        {"type": "index-pattern", "id": "other", "attributes": {"title": "keep"}},
        {"type": "lens", "id": "rrs-passages", "attributes": {"title": "lens"}},
    ]
    out = retitle_data_views(objects, {"rrs-passages": "docs"})
    assert [o["attributes"]["title"] for o in out] == ["docs", "keep", "lens"]
    assert objects[0]["attributes"]["title"] == "passages"  # inputs are not modified
    assert ndjson_body(out).decode().count("\n") == 3
