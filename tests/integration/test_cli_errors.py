"""Every command meets a misconfigured connection with one line that names the fix, a non-zero
exit and no traceback (issue 35). Here: the plain-HTTP session node asked over https, an
http:// URL with ES_CA_CERTS set, and a port where nothing listens. The secured node's cases
(a wrong password, a missing CA, a key without a privilege) are in test_secure_node.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rrsearch.rrs.cli import main

SAMPLE = "sample"
COMMANDS = {
    "index info": ["index", "info"],
    "index create": ["index", "create"],
    "index delete": ["index", "delete", "--yes"],
    "ingest": ["ingest", f"{SAMPLE}/corpus.jsonl", "--no-progress"],
    "delete": ["delete", "doc-1"],
    "eval": ["eval", SAMPLE, "--index", "passages", "--limit", "1", "--no-progress"],
    "judgments export": ["judgments", "export", "--output", "OUT"],
    "train-reranker": ["train-reranker", SAMPLE, "--output", "OUT"],
    "serve": ["serve", "--port", "1"],
}


def _run(args: list[str], env: dict[str, str], tmp_path) -> tuple[int, str]:
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = CliRunner().invoke(main, args, env={"ES_API_KEY": None, "ES_USERNAME": None, **env})
    return result.exit_code, result.output


def _one_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in output, output
    assert len(errors) == 1, output
    return errors[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_https_to_a_plain_node_says_use_http(command, es_settings, tmp_path):
    from rrsearch.core.es_client import resolve_url

    url = resolve_url(es_settings).split(",")[0].replace("http://", "https://")
    code, output = _run(COMMANDS[command], {"ES_URL": url}, tmp_path)
    assert code != 0
    assert "does not speak TLS: use an http:// ES_URL" in _one_line(output)


@pytest.mark.parametrize("command", ["index info", "ingest", "eval", "serve"])
def test_a_ca_with_an_http_url_says_use_https(command, es_settings, tmp_path):
    from rrsearch.core.es_client import resolve_url

    env = {"ES_URL": resolve_url(es_settings), "ES_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt"}
    code, output = _run(COMMANDS[command], env, tmp_path)
    assert code != 0
    assert "ES_CA_CERTS is set but the Elasticsearch URL" in _one_line(output)


@pytest.mark.parametrize("command", ["index create", "judgments export", "delete"])
def test_a_node_that_is_not_there_says_check_the_url(command, tmp_path):
    code, output = _run(COMMANDS[command], {"ES_URL": "http://127.0.0.1:1"}, tmp_path)
    assert code != 0
    line = _one_line(output)
    assert "cannot reach Elasticsearch at http://127.0.0.1:1" in line and "rrs es status" in line


def test_debug_shows_the_traceback_instead(tmp_path):
    result = CliRunner().invoke(main, ["--debug", "index", "info"], env={"ES_URL": "http://127.0.0.1:1"})
    assert result.exit_code != 0 and result.exception is not None
    assert "ConnectionError" in type(result.exception).__name__
