"""The production path: the real nginx (deploy/nginx.conf.template) in front of `rrs serve`.
A hundred clients that send half a request header and wait do not stall anyone else."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest
import requests

IDLE_CLIENTS = 100


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: ./run installs it (apt install nginx)")
        pytest.skip("nginx is not installed (apt install nginx)")
    return found


def render(template: str, *, upstream: str, listen: int) -> str:
    return template.replace("${RRS_UPSTREAM}", upstream).replace("${RRS_LISTEN}", str(listen))


@pytest.fixture(scope="module")
def proxy(search_front, repo_root, tmp_path_factory):
    """nginx from the deploy template in front of the session's search front end."""
    from rrsearch.rrs.local_node import first_free_port

    base, work = search_front, tmp_path_factory.mktemp("nginx")
    port = first_free_port(18_900)
    template = (repo_root / "deploy" / "nginx.conf.template").read_text()
    (work / "rrs.conf").write_text(render(template, upstream=base.removeprefix("http://"), listen=port))
    temp = {name: work / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (work / "nginx.conf").write_text(
        "daemon off;\nworker_processes 1;\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {work}/nginx.pid;\nerror_log {work}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n  access_log {work}/access.log;\n"
        + "".join(
            f"  {name}_temp_path {path};\n"
            for name, path in (
                ("client_body", temp["body"]),
                ("proxy", temp["proxy"]),
                ("fastcgi", temp["fastcgi"]),
                ("uwsgi", temp["uwsgi"]),
                ("scgi", temp["scgi"]),
            )
        )
        + f"  include {work}/rrs.conf;\n}}\n"
    )
    process = subprocess.Popen(
        [nginx_binary(), "-p", str(work), "-c", str(work / "nginx.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{url}/healthz", timeout=2)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start: {process.communicate()[0]}")
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_idle_half_open_connections_do_not_stall_the_service(proxy):
    query = {"query": "bread rising in a warm kitchen", "top_k": 3, "rerank": False}
    assert requests.post(f"{proxy}/search", json=query, timeout=30).status_code == 200  # warm: embedding, window
    host, port = proxy.removeprefix("http://").split(":")
    idle = []
    try:
        for _ in range(IDLE_CLIENTS):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")  # never finishes its header
            idle.append(sock)
        time.sleep(0.5)
        for _ in range(3):  # a second each, or requests raises: a stall fails the test
            assert requests.get(f"{proxy}/healthz", timeout=1).json() == {"status": "ok"}
            found = requests.post(f"{proxy}/search", json=query, timeout=1)
            assert found.status_code == 200 and len(found.json()["hits"]) == 3
    finally:
        for sock in idle:
            sock.close()


def test_an_oversized_body_gets_the_json_error_from_the_proxy(proxy):
    response = requests.post(
        f"{proxy}/search", data=b"x" * 70_000, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"
