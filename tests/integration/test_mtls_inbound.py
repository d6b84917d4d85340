"""Inbound mTLS (`server.client_ca_file`): a client certificate that the test CA signed acts as the
service account its subject maps to (`auth.client_cert_accounts`); a certificate from an unknown
CA and an expired one fail the handshake; a valid certificate whose subject is not mapped is
refused; people without a certificate still come in with their keys."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Running, start_gateway
from tests.support.faults import records, wait_for
from tests.support.gateway import write_config
from tests.support.simulator import UpstreamSimulator
from tests.support.tls import CertAuthority, issue_client_certificate, make_test_ca

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, ca: CertAuthority, upstream_sim: UpstreamSimulator
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("gw")
    server = {
        "tls_cert_file": str(ca.server_cert),
        "tls_key_file": str(ca.server_key),
        "client_ca_file": str(ca.ca_cert),
    }
    config = write_config(
        tmp, upstream_sim.url, server=server, auth={"client_cert_accounts": {"ci-runner": "ci-build"}}
    )
    gw = start_gateway(config, "frank", "infra")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def upstream_sim() -> Iterator[UpstreamSimulator]:
    sim = UpstreamSimulator().start()
    yield sim
    sim.stop()


def client(ca: CertAuthority, cert: tuple[Path, Path] | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(ca.ca_cert))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.Client(verify=ctx, timeout=20)


def post(c: httpx.Client, url: str, **headers: str) -> httpx.Response:
    return c.post(url + "/v1/messages", json=MESSAGE, headers={"anthropic-version": "2023-06-01", **headers})


def test_a_valid_certificate_is_its_service_account(running: Running, ca: CertAuthority, tmp_path: Path) -> None:
    cert = issue_client_certificate(ca, tmp_path, "ci-runner")
    with client(ca, cert) as c:
        answer = post(c, running.url)
    assert answer.status_code == 200, answer.text

    def mine() -> list[dict]:
        return [r for r in records(running.store) if r.get("auth") == "mtls" and "type" not in r]

    wait_for(lambda: len(mine()) >= 1, 10, "the audit record")
    record = mine()[-1]
    assert (record["user"], record["outcome"]) == ("ci-build", "forwarded")


def test_a_certificate_from_an_unknown_ca_fails_the_handshake(
    running: Running, ca: CertAuthority, upstream_sim: UpstreamSimulator, tmp_path: Path
) -> None:
    other = make_test_ca(tmp_path / "other", name="someone else's CA")
    cert = issue_client_certificate(other, tmp_path / "o", "ci-runner")
    upstream_sim.reset()
    with client(ca, cert) as c, pytest.raises(httpx.TransportError):
        post(c, running.url)
    assert upstream_sim.received == []


def test_an_expired_certificate_fails_the_handshake(
    running: Running, ca: CertAuthority, upstream_sim: UpstreamSimulator, tmp_path: Path
) -> None:
    cert = issue_client_certificate(ca, tmp_path, "ci-runner", expired=True)
    upstream_sim.reset()
    with client(ca, cert) as c, pytest.raises(httpx.TransportError):
        post(c, running.url)
    assert upstream_sim.received == []


def test_a_valid_certificate_whose_subject_is_not_mapped_is_refused(
    running: Running, ca: CertAuthority, tmp_path: Path
) -> None:
    cert = issue_client_certificate(ca, tmp_path, "laptop-7")
    with client(ca, cert) as c:
        refused = post(c, running.url)
    assert refused.status_code == 401
    assert "not mapped to a service account" in refused.json()["error"]["message"]


def test_without_a_certificate_keys_still_work_and_nothing_else_does(running: Running, ca: CertAuthority) -> None:
    with client(ca, None) as c:
        assert post(c, running.url, **{"x-egress-key": running.key}).status_code == 200
        assert post(c, running.url).status_code == 401
