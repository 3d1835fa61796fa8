"""Certificates for the local control plane: roles, names, and a real mutual-TLS handshake."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emrops.controlplane import certs


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> certs.CertFiles:
    return certs.generate(tmp_path_factory.mktemp("certs"))


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_serving_certificate_names_loopback_and_is_issued_by_the_serving_ca(files: certs.CertFiles) -> None:
    serving, ca = load(files.serving_cert), load(files.serving_ca)

    serving.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    usage = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_admin_certificate_is_in_system_masters_and_issued_by_the_client_ca(files: certs.CertFiles) -> None:
    admin = load(files.admin_cert)

    admin.verify_directly_issued_by(load(files.client_ca))
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # The serving CA must not vouch for clients: the two roles have separate roots.
    with pytest.raises((ValueError, TypeError)):
        admin.verify_directly_issued_by(load(files.serving_ca))


def test_certificates_are_valid_now(files: certs.CertFiles) -> None:
    now = datetime.datetime.now(datetime.UTC)
    for path in (files.serving_ca, files.serving_cert, files.client_ca, files.admin_cert):
        cert = load(path)
        assert cert.not_valid_before_utc < now < cert.not_valid_after_utc


def test_service_account_keys_are_a_matching_rsa_pair(files: certs.CertFiles) -> None:
    private = serialization.load_pem_private_key(files.service_account_key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(files.service_account_pub.read_bytes())
    fmt = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert private.public_key().public_bytes(*fmt) == public.public_bytes(*fmt)
    assert public.key_size == 2048  # type: ignore[union-attr]


def test_private_keys_are_readable_by_their_owner_only(files: certs.CertFiles) -> None:
    for path in (files.serving_key, files.admin_key, files.service_account_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_mutual_tls_handshake_with_the_generated_files(files: certs.CertFiles) -> None:
    """What the apiserver and kubectl do with these files, done by Python's ssl module."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.serving_cert, files.serving_key)
    server_context.load_verify_locations(files.client_ca)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.create_default_context(cafile=str(files.serving_ca))
    client_context.load_cert_chain(files.admin_cert, files.admin_key)

    peer: dict[str, object] = {}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with server_context.wrap_socket(conn, server_side=True) as tls:
                peer.update(tls.getpeercert() or {})
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve)
        thread.start()
        with (
            socket.create_connection(listener.getsockname(), timeout=5) as raw,
            client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.recv(2) == b"ok"
        thread.join(timeout=5)

    subject = dict(pair[0] for pair in peer["subject"])  # type: ignore[attr-defined]
    assert subject == {"organizationName": "system:masters", "commonName": "admin"}
