"""Security for the local node (``rrs es start --secure``): TLS on HTTP and transport, and the
``elastic`` user's password, made once under the node directory.

What lives in ``<node dir>/security/`` (made on the first secure start, kept after):

- ``ca.crt``, ``ca.key``: a private certificate authority (the key 0600);
- ``node.crt``, ``node.key``: one certificate for every member, signed by that CA, valid for
  ``localhost``, ``127.0.0.1`` and ``::1`` (server and client use: HTTP and transport);
- ``elastic.password``: a generated password of the built-in ``elastic`` superuser (0600).

On each start the certificates are copied into the member's ``config/certs`` (the node may
read only below its config directory), the password goes into its keystore as
``bootstrap.password`` (the password ``elastic`` has until someone changes it through the
security API), and ``elasticsearch.yml`` gets the settings :func:`security_node_settings`
names. ``node.json`` records how a client connects (:func:`state_record`; read back by
:mod:`rrsearch.core.node_access`): the https URL,
the CA file and the password file, never the password itself. The certificates are made in
Python (the ``cryptography`` package) rather than with ``elasticsearch-certutil``: no JVM,
well under a second.

Example::

    material = ensure_material(node_dir)           # once; later calls return the same files
    install_certificates(material, conf)            # into config/certs of one member
    record = state_record(material)                 # what node.json says (core/node_access.py reads it)
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from rrsearch.core.errors import NodeError

SECURITY_DIR = "security"
CERTS_DIR = "certs"  # below each member's config directory
ELASTIC_USER = "elastic"
BOOTSTRAP_PASSWORD = "bootstrap.password"  # keystore entry the reserved realm reads
CA_DAYS = 3650
NODE_DAYS = 825  # what browsers and certutil's defaults stay within
HOSTS = ("localhost",)
IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class SecurityMaterial:
    """The files of one secured node directory (see the module docstring)."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def node_cert(self) -> Path:
        return self.folder / "node.crt"

    @property
    def node_key(self) -> Path:
        return self.folder / "node.key"

    @property
    def password_file(self) -> Path:
        return self.folder / "elastic.password"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.ca_cert, self.ca_key, self.node_cert, self.node_key, self.password_file))


def material_for(node_dir: Path) -> SecurityMaterial:
    return SecurityMaterial(node_dir / SECURITY_DIR)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never world-readable for a moment), not
    following a link planted in its place."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
    os.chmod(path, mode)  # the umask may have taken bits away; never adds any beyond ``mode``


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificates() -> dict[str, bytes]:
    """A new CA and a node certificate it signs (PEM bytes keyed by file name). Pure: no files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _now() - datetime.timedelta(minutes=5)  # a clock a little behind still accepts it
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rrs local node CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    node_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in HOSTS]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in IPS]
    node_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rrs-local-node")]))
        .issuer_name(ca_name)
        .public_key(node_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=NODE_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return {
        "ca.crt": ca_cert.public_bytes(pem),
        "ca.key": _key_pem(ca_key),
        "node.crt": node_cert.public_bytes(pem),
        "node.key": _key_pem(node_key),
    }


def ensure_material(node_dir: Path, log=print) -> SecurityMaterial:
    """The CA, node certificate and ``elastic`` password of ``node_dir``, made on the first call
    (keys and password 0600, the folder 0700); later calls return the same files."""
    material = material_for(node_dir)
    if material.complete():
        return material
    if material.folder.is_symlink():
        raise NodeError(f"{material.folder} is a symbolic link; give the node a real directory (RRS_ES_NODE_DIR)")
    material.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (material.ca_cert.is_file() and material.node_cert.is_file()):
        try:
            made = make_certificates()
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise NodeError(
                f"--secure needs the Python package 'cryptography' ({exc}): pip install cryptography"
            ) from exc
        for name, data in made.items():
            _write_file(material.folder / name, data, 0o600 if name.endswith(".key") else 0o644)
        log(f"Made a CA and a node certificate in {material.folder}.")
    if not material.password_file.is_file():
        _write_file(material.password_file, (secrets.token_urlsafe(24) + "\n").encode(), 0o600)
        log(f"The elastic user's password is in {material.password_file}.")
    return material


def install_certificates(material: SecurityMaterial, conf: Path) -> None:
    """Copy the certificates into ``<conf>/certs`` (the node reads files only below its config)."""
    target = conf / CERTS_DIR
    target.mkdir(mode=0o700, exist_ok=True)
    for source in (material.ca_cert, material.node_cert, material.node_key):
        dest = target / source.name
        dest.unlink(missing_ok=True)
        shutil.copyfile(source, dest, follow_symlinks=False)
        os.chmod(dest, 0o600 if source.suffix == ".key" else 0o644)


def write_roles_file(conf: Path, descriptors: dict[str, dict]) -> None:
    """The node's ``roles.yml``: our least-privilege roles (core/security_roles.py), so a
    file-realm user (``elasticsearch-users useradd NAME -r rrs_reader``) can be given one.
    One role a line: the node's parser starts a role at each line that is not indented, and
    JSON is YAML's flow style."""
    (conf / "roles.yml").write_text("".join(f"{name}: {json.dumps(body)}\n" for name, body in descriptors.items()))


def security_node_settings(secure: bool) -> dict[str, str]:
    """The ``elasticsearch.yml`` lines of security: off, or TLS on HTTP and transport with the
    certificates in ``config/certs`` (paths relative to the config directory)."""
    if not secure:
        # Loopback-only dev node: no TLS/users (also skips security auto-configuration,
        # whose keystore entries this distribution can't read back).
        return {"xpack.security.enabled": "false"}
    pem = {
        "key": f"{CERTS_DIR}/node.key",
        "certificate": f"{CERTS_DIR}/node.crt",
        "certificate_authorities": f"{CERTS_DIR}/ca.crt",
    }
    lines = {"xpack.security.enabled": "true", "xpack.security.enrollment.enabled": "false"}
    for layer in ("http", "transport"):
        lines[f"xpack.security.{layer}.ssl.enabled"] = "true"
        for key, value in pem.items():
            lines[f"xpack.security.{layer}.ssl.{key}"] = value
    # Every member holds the same certificate, valid for 127.0.0.1: members check each other fully.
    lines["xpack.security.transport.ssl.verification_mode"] = "full"
    return lines


# --- What node.json records ---------------------------------------------------------------


def state_record(material: SecurityMaterial) -> dict:
    """What ``node.json`` says of a secured node (paths only, never the password)."""
    return {
        "secure": True,
        "ca_certs": str(material.ca_cert),
        "auth": {"method": "basic", "username": ELASTIC_USER, "password_file": str(material.password_file)},
    }
