"""Security of the local node without a node: certificates, the files and their modes, what
node.json records and how the client reads it back, the roles, and the lines es status prints."""

from __future__ import annotations

import ipaddress
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from rrsearch.core.es_client import connection_options, resolve_url
from rrsearch.core.node_access import access_from_state, local_access
from rrsearch.core.security_roles import (
    ADMIN,
    LOCK_INDEX,
    READER,
    ROLE_NAMES,
    SEARCH_SERVICE,
    WRITER,
    role_descriptors,
)
from rrsearch.core.settings import Settings
from rrsearch.rrs import local_node
from rrsearch.rrs.node_security import (
    ensure_material,
    install_certificates,
    make_certificates,
    security_node_settings,
    state_record,
    write_roles_file,
)


def test_the_node_certificate_is_signed_by_the_ca_and_valid_for_loopback():
    from cryptography import x509

    made = make_certificates()
    ca = x509.load_pem_x509_certificate(made["ca.crt"])
    node = x509.load_pem_x509_certificate(made["node.crt"])
    node.verify_directly_issued_by(ca)
    names = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert node.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert b"BEGIN PRIVATE KEY" in made["node.key"]  # PKCS#8, which the node reads


def test_material_is_made_once_with_private_modes(tmp_path):
    lines: list[str] = []
    first = ensure_material(tmp_path, lines.append)
    assert first.complete() and len(lines) == 2
    assert stat.S_IMODE(first.folder.stat().st_mode) == 0o700
    for path in (first.ca_key, first.node_key, first.password_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(first.ca_cert.stat().st_mode) == 0o644
    password, ca = first.password(), first.ca_cert.read_bytes()
    assert len(password) >= 24
    again = ensure_material(tmp_path, lines.append)
    assert again.password() == password and again.ca_cert.read_bytes() == ca and len(lines) == 2


def test_certificates_are_copied_into_the_config_dir(tmp_path):
    material = ensure_material(tmp_path / "node", lambda _m: None)
    conf = tmp_path / "config"
    conf.mkdir()
    install_certificates(material, conf)
    assert sorted(p.name for p in (conf / "certs").iterdir()) == ["ca.crt", "node.crt", "node.key"]
    assert stat.S_IMODE((conf / "certs" / "node.key").stat().st_mode) == 0o600
    assert not (conf / "certs" / "ca.key").exists()  # the node never needs the CA's key


def test_node_config_turns_security_on_or_off(tmp_path):
    assert security_node_settings(False) == {"xpack.security.enabled": "false"}
    assert "xpack.security.enabled: false" in local_node.render_node_config(tmp_path, 9200, 9300)
    text = local_node.render_node_config(tmp_path, 9200, 9300, secure=True)
    for layer in ("http", "transport"):
        assert f"xpack.security.{layer}.ssl.enabled: true" in text
        assert f"xpack.security.{layer}.ssl.key: certs/node.key" in text
        assert f"xpack.security.{layer}.ssl.certificate_authorities: certs/ca.crt" in text
    assert "xpack.security.enabled: true" in text and "xpack.security.enabled: false" not in text


def _secured_state(tmp_path: Path) -> Path:
    """A node directory whose node.json says what a --secure start writes."""
    material = ensure_material(tmp_path, lambda _m: None)
    record = {"url": "https://127.0.0.1:9443", **state_record(material)}
    (tmp_path / "node.json").write_text(json.dumps(record))
    return tmp_path


def test_node_json_names_the_files_never_the_password(tmp_path):
    node_dir = _secured_state(tmp_path)
    text = (node_dir / "node.json").read_text()
    material = ensure_material(node_dir, lambda _m: None)
    assert material.password() not in text
    access = local_access(node_dir)
    assert access is not None and access.secure and access.ca_certs == str(material.ca_cert)
    assert access.basic_auth() == ("elastic", material.password())
    assert access.auth_description() == {
        "method": "basic",
        "username": "elastic",
        "password_file": str(material.password_file),
    }
    assert access_from_state({"url": "http://127.0.0.1:9200"}).secure is False  # type: ignore[union-attr]
    assert access_from_state({}) is None


def test_the_client_takes_the_local_nodes_ca_and_password_unless_told_otherwise(tmp_path):
    node_dir = _secured_state(tmp_path)
    material = ensure_material(node_dir, lambda _m: None)
    plain = Settings(es_node_dir=node_dir, es_url=None, es_api_key=None, es_username=None, es_password=None)
    plain = plain.model_copy(update={"es_ca_certs": None})
    assert resolve_url(plain) == "https://127.0.0.1:9443"
    assert connection_options(plain) == {
        "basic_auth": ("elastic", material.password()),
        "ca_certs": str(material.ca_cert),
    }
    keyed = plain.model_copy(update={"es_api_key": SecretStr("abc")})
    assert connection_options(keyed) == {"api_key": "abc", "ca_certs": str(material.ca_cert)}
    user = plain.model_copy(update={"es_username": "bob", "es_password": SecretStr("pw"), "es_ca_certs": "/ca.pem"})
    assert connection_options(user) == {"basic_auth": ("bob", "pw"), "ca_certs": "/ca.pem"}
    elsewhere = plain.model_copy(update={"es_url": "https://es.example:9200"})
    assert connection_options(elsewhere) == {} and resolve_url(elsewhere) == "https://es.example:9200"


def test_an_unreadable_password_file_says_what_to_do(tmp_path):
    node_dir = _secured_state(tmp_path)
    (node_dir / "security" / "elastic.password").unlink()
    access = local_access(node_dir)
    assert access is not None
    with pytest.raises(Exception, match="ES_USERNAME/ES_PASSWORD"):
        access.basic_auth()


def test_security_is_remembered_per_directory(tmp_path):
    fresh = Settings(es_node_dir=tmp_path)
    assert local_node.wants_secure(fresh, {}) is False
    assert local_node.wants_secure(fresh, {"secure": True}) is True
    assert local_node.wants_secure(fresh.model_copy(update={"es_secure": False}), {"secure": True}) is False
    assert local_node.wants_secure(Settings(es_node_dir=tmp_path, es_secure=True), {}) is True


def test_secured_members_are_planned_on_https(tmp_path):
    members = local_node.plan_members(tmp_path, 2, [9200, 9201], [9300, 9301], "https")
    assert [m["url"] for m in members] == ["https://127.0.0.1:9200", "https://127.0.0.1:9201"]
    record = local_node._write_state(tmp_path, members, "9.5.4", Path("/jdk"), ensure_material(tmp_path, print))
    assert record["secure"] is True and record["url"] == "https://127.0.0.1:9200,https://127.0.0.1:9201"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_the_node_user_is_not_given_the_ca_key_or_the_password(tmp_path):
    node_dir = tmp_path / "node"
    ensure_material(node_dir, lambda _m: None)
    (node_dir / "config").mkdir()
    local_node.give_tree(node_dir, 65534, 65534)
    assert (node_dir / "config").stat().st_uid == 65534
    assert (node_dir / "security").stat().st_uid == 0
    assert (node_dir / "security" / "ca.key").stat().st_uid == 0


# --- Roles ----------------------------------------------------------------------------------


def test_roles_fill_in_the_index_names_from_the_settings():
    settings = Settings(index_alias="docs", search_log_index="logs", judgments_index="marks")
    roles = role_descriptors(settings)
    assert list(roles) == list(ROLE_NAMES)
    assert roles[READER]["indices"][0]["names"] == ["docs", "docs-v*"]
    assert roles[READER]["cluster"] == []  # the service needs no cluster privilege (tested on a node)
    writer_names = {name for entry in roles[WRITER]["indices"] for name in entry["names"]}
    assert writer_names == {"docs", "docs-v*", LOCK_INDEX}
    admin_names = set(roles[ADMIN]["indices"][0]["names"])
    assert admin_names == {"docs", "docs-v*", LOCK_INDEX, "logs", "marks"}
    service = role_descriptors(settings, SEARCH_SERVICE)
    assert [entry["names"] for entry in service["rrs_search_log"]["indices"]] == [["logs"]]
    assert not [name for role in roles.values() for e in role["indices"] for name in e["names"] if "{" in name]
    other = role_descriptors(settings, (READER,), alias="other")
    assert other[READER]["indices"][0]["names"] == ["other", "other-v*"]
    with pytest.raises(KeyError, match="no such role"):
        role_descriptors(settings, ("rrs_nobody",))


def test_the_lock_index_is_the_one_ingest_uses():
    from rrsearch.ingest.lock import LOCK_INDEX as INGEST_LOCK_INDEX

    assert LOCK_INDEX == INGEST_LOCK_INDEX


def test_the_roles_file_holds_one_role_a_line(tmp_path):
    roles = role_descriptors(Settings())
    write_roles_file(tmp_path, roles)
    lines = (tmp_path / "roles.yml").read_text().splitlines()
    assert len(lines) == len(roles)
    assert {line.split(": ", 1)[0]: json.loads(line.split(": ", 1)[1]) for line in lines} == roles


# --- What es status says ----------------------------------------------------------------------


def test_fix_lines_name_the_setting_to_change(tmp_path):
    node_dir = _secured_state(tmp_path)
    state = json.loads((node_dir / "node.json").read_text())
    own = Settings(es_node_dir=node_dir).model_copy(
        update={"es_url": None, "es_api_key": None, "es_username": None, "es_password": None}
    )
    url = state["url"]
    refused = local_node.fix_line({"state": "refused", "http_status": 401}, url, own, state)
    assert refused.startswith(f"up but refused (401) at {url}") and state["auth"]["password_file"] in refused
    with_env = own.model_copy(update={"es_username": "bob", "es_password": SecretStr("x")})
    line = local_node.fix_line({"state": "refused", "http_status": 401}, url, with_env, state)
    assert "ES_API_KEY or ES_USERNAME/ES_PASSWORD are wrong" in line
    forbidden = local_node.fix_line({"state": "refused", "http_status": 403, "reason": "no"}, url, own, state)
    assert forbidden.startswith("up but refused (403)") and "monitor" in forbidden
    tls = local_node.fix_line(
        {"state": "tls_failed", "reason": "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"},
        url,
        own,
        state,
    )
    assert tls.startswith(f"up but TLS verification failed at {url}") and state["ca_certs"] in tls
    scheme = local_node.fix_line({"state": "tls_failed", "scheme": "http_to_https"}, "http://h:1", own, {})
    assert "use an https:// URL" in scheme


def test_exit_codes_tell_the_states_apart():
    assert local_node.EXIT_CODES == {"running": 0, "not_running": 3, "refused": 4, "tls_failed": 5}


def test_ca_certs_with_an_http_url_is_a_tls_mismatch_not_a_crash(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_certificates()["ca.crt"])
    settings = Settings(es_url="http://127.0.0.1:1", es_ca_certs=str(ca))
    info = local_node.node_status(settings)
    assert info.state == "tls_failed" and not info.running
    assert info.fix is not None and "use https://" in info.fix
