"""Inbound mTLS settings: a client CA needs HTTPS; the handshake's certificate subject is read
into the ASGI TLS extension only when the handshake verified one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from egress.gateway.http_protocol import client_certificate
from egress.gateway.settings import ServerSettings


def test_client_ca_needs_tls() -> None:
    with pytest.raises(ValidationError, match="client_ca_file needs tls_cert_file"):
        ServerSettings(client_ca_file="/etc/ca.pem")
    ok = ServerSettings(tls_cert_file="/c.pem", tls_key_file="/k.pem", client_ca_file="/ca.pem")
    assert str(ok.client_ca_file) == "/ca.pem"


class FakeSsl:
    def __init__(self, cert: dict | None) -> None:
        self.cert = cert

    def getpeercert(self) -> dict | None:
        return self.cert


class FakeTransport:
    def __init__(self, ssl_object: FakeSsl | None) -> None:
        self.ssl_object = ssl_object

    def get_extra_info(self, name: str) -> object:
        return self.ssl_object if name == "ssl_object" else None


def test_subject_of_a_verified_certificate() -> None:
    cert = {"subject": ((("countryName", "DE"),), (("organizationName", "Example"),), (("commonName", "ci-runner"),))}
    tls = client_certificate(FakeTransport(FakeSsl(cert)))  # type: ignore[arg-type]
    assert tls == {"client_cert_name": "CN=ci-runner,O=Example,C=DE", "client_cert_cn": "ci-runner"}


def test_no_certificate_no_extension() -> None:
    assert client_certificate(FakeTransport(None)) is None  # type: ignore[arg-type]  # plain HTTP
    assert client_certificate(FakeTransport(FakeSsl({}))) is None  # type: ignore[arg-type]  # none sent
    assert client_certificate(FakeTransport(FakeSsl(None))) is None  # type: ignore[arg-type]
