"""docker-compose.yml is valid (checked by Debian's docker-compose, no engine needed) and
wired the way the README promises."""

import shutil
import subprocess

import pytest
import yaml

from rrsearch.rrs.local_node import PINNED_VERSIONS


@pytest.fixture(scope="module")
def compose(repo_root):
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is needed to validate the compose file: apt install docker-compose"
    result = subprocess.run(
        [tool, "-f", str(repo_root / "docker-compose.yml"), "--profile", "ingest", "config"],
        capture_output=True,
        text=True,
        cwd=repo_root,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def port_entries(service):
    """(host_ip, published, target) whatever form this docker-compose version prints."""
    for port in service.get("ports", []):
        if isinstance(port, dict):
            yield port.get("host_ip"), str(port["published"]), int(port["target"])
        else:
            host_ip, published, target = str(port).split("/")[0].rsplit(":", 2)
            yield host_ip, published, int(target)


def test_images_match_the_local_node_version(compose):
    version = PINNED_VERSIONS[9]
    services = compose["services"]
    assert services["elasticsearch"]["image"].endswith(f"/elasticsearch:{version}")
    assert services["kibana"]["image"].endswith(f"/kibana:{version}")


def test_every_long_running_service_has_a_healthcheck(compose):
    for name in ("elasticsearch", "kibana", "search"):
        assert compose["services"][name]["healthcheck"]["test"], name


def test_dependencies_wait_for_health(compose):
    services = compose["services"]
    for name in ("kibana", "search", "ingest"):
        assert services[name]["depends_on"]["elasticsearch"]["condition"] == "service_healthy", name
    assert services["kibana-import"]["depends_on"]["kibana"]["condition"] == "service_healthy"


def test_service_is_wired_to_elasticsearch_and_reserves_a_gpu(compose):
    search = compose["services"]["search"]
    assert search["environment"]["ES_URL"] == "http://elasticsearch:9200"
    assert search["build"]
    devices = search["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert list(port_entries(search)) == [] and search["expose"] == ["8000"]  # only nginx is published


def test_nginx_fronts_the_service_with_the_repo_config(compose, repo_root):
    nginx = compose["services"]["nginx"]
    assert {(published, target) for _, published, target in port_entries(nginx)} == {("8000", 80)}
    assert nginx["environment"]["RRS_UPSTREAM"] == "search:8000"
    assert nginx["depends_on"]["search"]["condition"] == "service_healthy"
    mount = next(v for v in nginx["volumes"] if "nginx.conf.template" in str(v))
    assert (repo_root / "deploy" / "nginx.conf.template").exists() and "/etc/nginx/templates/" in str(mount)


def test_ports_are_published_on_loopback_only(compose):
    entries = [e for service in compose["services"].values() for e in port_entries(service)]
    assert all(host_ip == "127.0.0.1" for host_ip, _, _ in entries), entries
    assert {"9200", "5601", "8000"} <= {published for _, published, _ in entries}


def test_named_volumes_and_one_off_jobs(compose):
    assert {"esdata", "kibanadata", "models"} <= set(compose["volumes"])
    assert compose["services"]["ingest"]["profiles"] == ["ingest"]
    assert compose["services"]["ingest"]["entrypoint"][:2] == ["rrs", "ingest"]
    assert compose["services"]["kibana-import"]["command"][:3] == ["rrs", "kibana", "import"]
    assert compose["services"]["kibana-import"]["restart"] == "no"


def test_dockerfile_copies_every_package_the_cli_imports(repo_root):
    dockerfile = (repo_root / "Dockerfile").read_text()
    links = [path for path in (repo_root / "rrsearch").iterdir() if path.is_symlink()]
    folders = ["rrsearch", *(path.resolve().name for path in links)]
    assert "es_mappings" in folders
    for folder in folders:
        assert f"COPY {folder} ./{folder}" in dockerfile, folder
