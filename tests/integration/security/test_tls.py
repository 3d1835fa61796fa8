"""TLS verification is on for every https endpoint, and plain http is refused off loopback.

A real TLS server with a self-signed certificate listens on 127.0.0.1 and the client reaches it
over https, so it sees exactly what it would see from a man in the middle: a certificate no
trusted CA signed. Verification does not depend on the address (only plain http is a loopback
privilege), so this proves it for every endpoint. The client must refuse the handshake before
any signed request (and so any STS token) leaves the process. A control case trusts the
certificate through ``SSL_CERT_FILE`` and shows that the same request then does arrive, so the
refusal is the verification and nothing else. Refusing http for other addresses is checked
where it happens, in configuration: those addresses are never contacted.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.endpoints import parse_endpoint_override
from emrops.emr.errors import EmrError, RequestNotSentError
from emrops.emr.models import GetOperationRequest

pytestmark = pytest.mark.integration

TOKEN = "sts-token-must-never-travel-unverified"
SECRET = "tls-test-secret-value"


#: A documentation address (TEST-NET-1): only ever parsed, never contacted.
NON_LOOPBACK = "192.0.2.10"


def _self_signed(directory: Path, hosts: list[str]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emrops-tls-test")])
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class RecordingTLSServer:
    """An aiohttp server over TLS that records every request that got through the handshake."""

    def __init__(self, host: str, cert: Path, key: Path) -> None:
        self.host = host
        self.cert, self.key = cert, key
        self.requests: list[dict[str, str]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        body = {"RequestId": "tls-test", "Code": "ResourceNotFound", "Message": "nothing here"}
        return web.json_response(body, status=404)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[RecordingTLSServer]:
    cert, key = _self_signed(tmp_path, ["127.0.0.1", "localhost"])
    server = RecordingTLSServer("127.0.0.1", cert, key)
    await server.start()
    yield server
    await server.stop()


async def _get_operation(endpoint: str) -> None:
    async with EmrClient(endpoint=endpoint, deadline=10) as client:
        await client.get_operation(
            GetOperationRequest(region_id="cn-hangzhou", cluster_id="c-tls", operation_id="op-tls"),
            credentials=StaticCredentials("tls-test-ak", SECRET, security_token=TOKEN),
        )


def test_plain_http_is_refused_for_a_non_loopback_endpoint() -> None:
    for endpoint in (f"http://{NON_LOOPBACK}:8443", "http://emr.cn-hangzhou.aliyuncs.com", "http://10.0.0.1"):
        with pytest.raises(ValueError, match="https"):
            parse_endpoint_override(endpoint)
        with pytest.raises(ValueError, match="https"):
            EmrClient(endpoint=endpoint)
    # Loopback stays usable over http: that is the emulator.
    assert parse_endpoint_override("http://127.0.0.1:8090").scheme == "http"


def test_operator_refuses_to_start_with_http_to_a_non_loopback_endpoint(tmp_path: Path) -> None:
    """`emrops run --emr-endpoint http://<not loopback>` exits with an error naming the problem."""
    result = subprocess.run(
        [sys.executable, "-m", "emrops", "run", "--emr-endpoint", f"http://{NON_LOOPBACK}:8443"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path)},
        check=False,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "https" in output
    assert "Traceback" not in output


async def test_self_signed_certificate_fails_verification(
    tls_server: RecordingTLSServer,
) -> None:
    with pytest.raises(RequestNotSentError) as caught:
        await _get_operation(f"https://{tls_server.host}:{tls_server.port}")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert tls_server.requests == [], "a signed request went through an unverified TLS connection"
    assert TOKEN not in str(caught.value) and SECRET not in str(caught.value)


async def test_self_signed_certificate_also_fails_by_host_name(tls_server: RecordingTLSServer) -> None:
    """The same refusal when the endpoint is a name (the certificate even lists it)."""
    with pytest.raises(RequestNotSentError):
        await _get_operation(f"https://localhost:{tls_server.port}")
    assert tls_server.requests == []


async def test_control_trusting_the_certificate_lets_the_request_through(
    tls_server: RecordingTLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same server, certificate trusted through SSL_CERT_FILE: the request arrives (the server
    answers ResourceNotFound), so the refusals above come from verification alone."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(EmrError) as caught:
        await _get_operation(f"https://{tls_server.host}:{tls_server.port}")
    assert not isinstance(caught.value, RequestNotSentError), caught.value
    assert len(tls_server.requests) == 1
    await asyncio.sleep(0)
