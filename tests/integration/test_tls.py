"""TLS on both sides, with a CA made at test time: upstreams verified against the configured CA
bundle (or refused), a client certificate for upstreams that require one, and `egress serve`
answering HTTPS with the configured certificate."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import yaml

from egress.app import open_configured_store
from egress.config import default_cache_dir, load_config
from egress.gateway.auth import new_key
from tests.conftest import Running, start_gateway
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.simulator import UpstreamSimulator
from tests.support.tls import CertAuthority, make_test_ca

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


def trusting(ca: CertAuthority) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.ca_cert))


def running_gateway(tmp_path: Path, sim: UpstreamSimulator, **config) -> Running:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return start_gateway(write_config(tmp_path, sim.url, **config), "frank", "infra")


@pytest.fixture
def tls_sim(ca: CertAuthority) -> Iterator[UpstreamSimulator]:
    sim = UpstreamSimulator(ssl_context=ca.server_context()).start()
    yield sim
    sim.stop()


@pytest.fixture
def mtls_sim(ca: CertAuthority) -> Iterator[UpstreamSimulator]:
    sim = UpstreamSimulator(ssl_context=ca.server_context(require_client_cert=True)).start()
    yield sim
    sim.stop()


def ask(gateway: Running) -> anthropic.types.Message:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0)
    return client.messages.create(**MESSAGE)


def test_upstream_verified_with_the_configured_ca_bundle(tmp_path, ca, tls_sim):
    assert tls_sim.url.startswith("https://")
    gateway = running_gateway(tmp_path, tls_sim, upstream={"ca_bundle": str(ca.ca_cert)})
    try:
        assert ask(gateway).content[0].text == "Hello there!"
        assert len(tls_sim.received) == 1 and tls_sim.received[0].json()["model"] == "claude-sonnet-4-5"
    finally:
        gateway.stop()


def test_upstream_not_trusted_by_the_system_store_is_refused(tmp_path, tls_sim):
    gateway = running_gateway(tmp_path, tls_sim)
    try:
        with pytest.raises(anthropic.APIStatusError) as refused:
            ask(gateway)
        assert refused.value.status_code == 502
        error = refused.value.body["error"]
        assert error["details"]["error_code"] == "upstream_unavailable"
        assert "TLS certificate is not trusted" in error["message"]
        assert tls_sim.received == []  # the handshake failed: no request, no body left egress
        [record] = gateway.audit(expect=1)
        assert (record["status"], record["outcome"]) == (502, "failed")
    finally:
        gateway.stop()


def test_an_endpoint_may_bring_its_own_ca_bundle(tmp_path, ca, tls_sim):
    """The global bundle (none here: the system store) stays for the others."""
    path = write_config(tmp_path, tls_sim.url)
    doc = yaml.safe_load(path.read_text())
    doc["providers"][0]["tls_ca_bundle"] = str(ca.ca_cert)  # sim-anthropic only
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    gateway = start_gateway(path, "frank", "infra")
    try:
        assert ask(gateway).content[0].text == "Hello there!"
        chat = openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.key, max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:
            chat.chat.completions.create(**CHAT)  # sim-openai: same server, no bundle of its own
        assert refused.value.status_code == 502 and "TLS certificate is not trusted" in refused.value.message
        assert [r.path for r in tls_sim.received] == ["/v1/messages"]
    finally:
        gateway.stop()


def test_mtls_upstream_passes_only_with_the_client_certificate(tmp_path, ca, mtls_sim):
    without = running_gateway(tmp_path / "without", mtls_sim, upstream={"ca_bundle": str(ca.ca_cert)})
    try:
        with pytest.raises(anthropic.APIStatusError) as refused:
            ask(without)
        assert refused.value.status_code == 502
        assert refused.value.body["error"]["details"]["error_code"] in ("upstream_unavailable", "upstream_protocol_error")
        assert mtls_sim.received == []
    finally:
        without.stop()
    client_tls = {"ca_bundle": str(ca.ca_cert), "client_cert": str(ca.client_cert), "client_key": str(ca.client_key)}
    with_cert = running_gateway(tmp_path / "with", mtls_sim, upstream=client_tls)
    try:
        assert ask(with_cert).content[0].text == "Hello there!"
        assert len(mtls_sim.received) == 1
    finally:
        with_cert.stop()


def test_threaded_gateway_serves_https(tmp_path, ca, upstream):
    server = {"tls_cert_file": str(ca.server_cert), "tls_key_file": str(ca.server_key)}
    gateway = running_gateway(tmp_path, upstream, server=server)
    try:
        assert gateway.url.startswith("https://")
        with openai.OpenAI(
            base_url=gateway.url + "/v1",
            api_key=gateway.key,
            max_retries=0,
            http_client=openai.DefaultHttpxClient(verify=trusting(ca)),
        ) as client:
            assert client.chat.completions.create(**CHAT).choices[0].message.content
    finally:
        gateway.stop()


# --- egress serve, a real process ------------------------------------------------------------------


def wait_ready_https(url: str, proc: subprocess.Popen, ca: CertAuthority, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"egress serve exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url + "/readyz", timeout=1, verify=trusting(ca)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("egress serve did not become ready")


def test_egress_serve_over_https(tmp_path, ca, upstream):
    env = {
        **os.environ,
        **SIM_ENV,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }
    server = {"tls_cert_file": str(ca.server_cert), "tls_key_file": str(ca.server_key)}
    config = write_config(tmp_path, upstream.url, server=server)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "egress", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        wait_ready_https(url, proc, ca)
        # The first key is printed once, on the first start.
        store = open_configured_store(load_config(config, env=SIM_ENV))
        secret, key = new_key("gina", None)
        store.create_key(key)
        store.close()
        client = openai.OpenAI(
            base_url=url + "/v1",
            api_key=secret,
            max_retries=0,
            http_client=openai.DefaultHttpxClient(verify=trusting(ca)),
        )
        deadline = time.monotonic() + 10
        while True:  # the key ring picks up the new key within key_refresh_s
            try:
                completion = client.chat.completions.create(**CHAT)
                break
            except openai.PermissionDeniedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert completion.choices[0].message.content
        client.close()  # a kept-alive connection would hold the graceful shutdown
        # Plain HTTP to the TLS port gets no answer; HTTPS without the CA does not verify.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/readyz", timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert f"egress listening on {url}" in out
    assert f"export ANTHROPIC_BASE_URL={url}" in out and f"export OPENAI_BASE_URL={url}/v1" in out
