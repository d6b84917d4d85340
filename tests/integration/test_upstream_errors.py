"""Upstream failures a user can act on: the client's native error names the endpoint and the
cause class, the server log adds host and port, neither holds a credential or a URL secret, and
"trying the next allowed one" is logged only when another endpoint is actually tried.

Every failure is real: a closed loopback port, a name under .invalid (RFC 6761: never resolves),
a TLS server whose certificate the gateway does not trust, a server that never answers, one that
hangs up, one that closes in the middle of its answer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from egress.config import ConfigError, load_config
from tests.conftest import Running, start_gateway
from tests.support.faulty_upstream import Fault, FaultyUpstream, FullBacklog
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.simulator import Reply, UpstreamSimulator
from tests.support.tls import CertAuthority, make_test_ca

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
# Secrets an endpoint's configuration holds: none may reach a client message or a log line.
QUERY_SECRET = "query-secret-51be02"
SECRETS = (*SIM_ENV.values(), QUERY_SECRET)
NEXT = "trying the next allowed one"


def endpoint(name: str, base_url: str, api: str = "anthropic", **extra: Any) -> dict[str, Any]:
    """An endpoint whose query carries a secret (a user or password in its URL is refused at load)."""
    return {
        "name": name,
        "api": api,
        "base_url": base_url + ("/v1" if api == "openai" else ""),
        "models": ["claude-*"] if api == "anthropic" else ["gpt-*"],
        "credentials": {"env": "SIM_ANTHROPIC_KEY" if api == "anthropic" else "SIM_OPENAI_KEY"},
        "query": {"token": QUERY_SECRET},
        "operator": "Test operator",
        "jurisdiction": "EU",
        "region": "eu",
        "retention_days": 0,
        "trains_on_api_data": False,
        "dpa": True,
        **extra,
    }


def gateway_for(tmp_path: Path, providers: list[dict[str, Any]], **config: Any) -> Running:
    # A generous policy deadline: the first decision after start may meet a busy machine.
    path = write_config(tmp_path, "http://127.0.0.1:1", policy={"timeout_ms": 10000}, **config)
    doc = yaml.safe_load(path.read_text())
    doc["providers"] = providers
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return start_gateway(path, "frank", "infra")


def refused(gateway: Running) -> anthropic.APIStatusError:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(**MESSAGE)
    return info.value


def failure_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The gateway's log lines about upstream endpoints."""
    return [r.getMessage() for r in caplog.records if r.name in ("egress.gateway", "egress.upstream")]


def message(err: anthropic.APIStatusError) -> str:
    """The native error message, as the client shows it."""
    return err.body["error"]["message"]


def assert_no_secret(gateway: Running, *texts: str) -> None:
    for text in texts:
        for secret in (*SECRETS, gateway.key):
            assert secret not in text


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="egress")
    return caplog


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


def faulty(fault: Fault) -> Iterator[FaultyUpstream]:
    server = FaultyUpstream(fault).start()
    yield server
    server.stop()


@pytest.fixture
def silent() -> Iterator[FaultyUpstream]:
    yield from faulty(Fault.SILENT)


@pytest.fixture
def hang_up() -> Iterator[FaultyUpstream]:
    yield from faulty(Fault.HANG_UP)


@pytest.fixture
def cut_body() -> Iterator[FaultyUpstream]:
    yield from faulty(Fault.CUT_BODY)


@pytest.fixture
def reset() -> Iterator[FaultyUpstream]:
    yield from faulty(Fault.RESET)


def test_connection_refused_names_the_endpoint_and_the_cause(tmp_path, logs):
    port = free_port()
    gateway = gateway_for(tmp_path, [endpoint("eu-cloud", f"http://127.0.0.1:{port}")])
    try:
        err = refused(gateway)
        assert err.status_code == 502
        assert err.body["error"]["details"]["error_code"] == "upstream_unavailable"
        assert message(err) == "egress: endpoint 'eu-cloud' failed: connection refused"
        # Machine-readable beside the message, in Anthropic's `details`.
        assert err.body["error"]["details"] == {
            "error_code": "upstream_unavailable",
            "endpoint": "eu-cloud",
            "cause": "connection_refused",
        }
        [line] = failure_lines(logs)
        assert line.startswith(f"endpoint eu-cloud (127.0.0.1:{port}) failed: connection refused (request egr_")
        assert line.endswith("; no allowed endpoint is left to try")
        assert NEXT not in line
        assert_no_secret(gateway, message(err), str(err.body), line)
    finally:
        gateway.stop()


def test_unresolvable_host_is_a_dns_failure(tmp_path, logs):
    # .invalid is reserved never to resolve (RFC 6761): the resolver answers at once, nothing is sent.
    gateway = gateway_for(tmp_path, [endpoint("eu-cloud", "http://egress-test.invalid:8443")])
    try:
        err = refused(gateway)
        assert err.status_code == 502
        assert err.body["error"]["details"]["error_code"] == "upstream_unavailable"
        assert "endpoint 'eu-cloud' failed: DNS resolution failed" in message(err)
        assert "egress-test.invalid" not in message(err)  # the host is for the operator's log only
        [line] = failure_lines(logs)
        assert line.startswith("endpoint eu-cloud (egress-test.invalid:8443) failed: DNS resolution failed")
        assert_no_secret(gateway, message(err), line)
    finally:
        gateway.stop()


def test_untrusted_tls_certificate_through_the_openai_sdk(tmp_path, logs, ca):
    sim = UpstreamSimulator(ssl_context=ca.server_context()).start()  # signed by a CA the gateway lacks
    gateway = gateway_for(tmp_path, [endpoint("eu-openai", sim.url, api="openai")])
    try:
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.key, max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(**CHAT)
        err = info.value
        assert err.status_code == 502 and err.code == "upstream_unavailable"
        text = err.body["message"]  # the SDK's body is the error object itself
        assert "endpoint 'eu-openai' failed: TLS certificate is not trusted (certificate verify failed" in text
        assert set(err.body) == {"message", "type", "param", "code"}  # OpenAI's error object, unchanged
        [line] = failure_lines(logs)
        assert line.startswith(f"endpoint eu-openai (127.0.0.1:{sim.port}) failed: TLS certificate verify failed")
        assert sim.received == []
        assert_no_secret(gateway, text, line)
    finally:
        gateway.stop()
        sim.stop()


def test_an_endpoint_that_never_answers_is_a_read_timeout(tmp_path, logs, silent):
    gateway = gateway_for(tmp_path, [endpoint("slow-box", silent.url, read_timeout_s=0.5)])
    try:
        err = refused(gateway)
        assert err.status_code == 504
        assert err.body["error"]["details"]["error_code"] == "upstream_timeout"
        assert message(err) == "egress: endpoint 'slow-box' failed: read timeout: no data for 0.5 s"
        [line] = failure_lines(logs)
        assert line.startswith(f"endpoint slow-box (127.0.0.1:{silent.port}) failed: read timeout")
        assert silent.requests == 1
    finally:
        gateway.stop()


def test_an_endpoint_that_never_accepts_is_a_connect_timeout(tmp_path, logs):
    backlog = FullBacklog()
    gateway = gateway_for(tmp_path, [endpoint("eu-cloud", backlog.url, connect_timeout_s=0.5)])
    try:
        err = refused(gateway)
        assert err.status_code == 504
        assert err.body["error"]["details"]["error_code"] == "upstream_timeout"
        assert message(err) == "egress: endpoint 'eu-cloud' failed: connect timeout: no connection within 0.5 s"
        [line] = failure_lines(logs)
        assert line.startswith(f"endpoint eu-cloud (127.0.0.1:{backlog.port}) failed: connect timeout")
    finally:
        gateway.stop()
        backlog.stop()


def test_an_endpoint_that_hangs_up_before_answering(tmp_path, logs, hang_up):
    gateway = gateway_for(tmp_path, [endpoint("eu-cloud", hang_up.url)])
    try:
        err = refused(gateway)
        assert err.status_code == 502
        assert err.body["error"]["details"]["error_code"] == "upstream_unavailable"
        assert message(err) == "egress: endpoint 'eu-cloud' failed: connection closed before answering"
        [line] = failure_lines(logs)
        assert f"(127.0.0.1:{hang_up.port}) failed: connection closed before answering" in line
    finally:
        gateway.stop()


def test_an_answer_cut_in_the_middle(tmp_path, logs, cut_body):
    gateway = gateway_for(tmp_path, [endpoint("eu-cloud", cut_body.url)])
    try:
        err = refused(gateway)
        assert err.status_code == 502
        assert err.body["error"]["details"]["error_code"] == "upstream_protocol_error"
        assert message(err) == "egress: endpoint 'eu-cloud' failed: connection closed before the answer was complete"
        [line] = failure_lines(logs)
        assert line.startswith(f"endpoint eu-cloud (127.0.0.1:{cut_body.port}) failed while answering HTTP 200:")
        assert_no_secret(gateway, message(err), line)
    finally:
        gateway.stop()


def test_two_endpoints_fail_each_named_with_its_cause(tmp_path, logs, hang_up):
    first_port = free_port()
    gateway = gateway_for(
        tmp_path,
        [endpoint("eu-primary", f"http://127.0.0.1:{first_port}"), endpoint("eu-secondary", hang_up.url)],
    )
    try:
        err = refused(gateway)
        assert err.status_code == 502
        assert err.body["error"]["details"]["error_code"] == "upstream_unavailable"
        assert message(err) == (
            "egress: no allowed endpoint could be reached: 'eu-primary' (connection refused); "
            "'eu-secondary' (connection closed before answering)"
        )
        assert err.body["error"]["details"]["attempts"] == [
            {"endpoint": "eu-primary", "cause": "connection_refused"},
            {"endpoint": "eu-secondary", "cause": "connection_closed"},
        ]
        first, second = failure_lines(logs)
        assert first.startswith(f"endpoint eu-primary (127.0.0.1:{first_port}) failed: connection refused")
        assert first.endswith(f"; {NEXT} (eu-secondary)")
        assert second.startswith(f"endpoint eu-secondary (127.0.0.1:{hang_up.port}) failed: connection closed")
        assert second.endswith("; no allowed endpoint is left to try")
        assert NEXT not in second
        assert_no_secret(gateway, message(err), first, second)
    finally:
        gateway.stop()


def test_the_next_endpoint_answers_after_a_failure(tmp_path, logs, upstream):
    first_port = free_port()
    gateway = gateway_for(
        tmp_path, [endpoint("eu-primary", f"http://127.0.0.1:{first_port}"), endpoint("eu-secondary", upstream.url)]
    )
    try:
        client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0)
        assert client.messages.create(**MESSAGE).content[0].text
        [line] = failure_lines(logs)
        assert line.startswith(f"endpoint eu-primary (127.0.0.1:{first_port}) failed: connection refused")
        assert line.endswith(f"; {NEXT} (eu-secondary)")
        assert len(upstream.received) == 1
    finally:
        gateway.stop()


def test_an_open_circuit_is_not_announced_as_the_next_one(tmp_path, logs):
    """Once the second endpoint's circuit is open, a failure of the first has no next one."""
    ports = free_port(), free_port()
    gateway = gateway_for(
        tmp_path,
        [
            endpoint("eu-primary", f"http://127.0.0.1:{ports[0]}"),
            endpoint("eu-secondary", f"http://127.0.0.1:{ports[1]}"),
        ],
    )
    try:
        for _ in range(3):  # the default breaker opens after three consecutive failures
            refused(gateway)
        logs.clear()
        err = refused(gateway)  # both circuits open now: neither is tried
        assert err.body["error"]["details"]["error_code"] == "upstream_unavailable"
        assert "'eu-primary' (skipped: circuit open" in message(err)
        assert "'eu-secondary' (skipped: circuit open" in message(err)
        assert err.body["error"]["details"]["attempts"] == [
            {"endpoint": "eu-primary", "cause": "circuit_open"},
            {"endpoint": "eu-secondary", "cause": "circuit_open"},
        ]
        assert all(NEXT not in line for line in failure_lines(logs))
    finally:
        gateway.stop()


def test_a_url_with_a_password_is_refused_at_load(tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:1")
    doc = yaml.safe_load(path.read_text())
    doc["providers"] = [endpoint("eu-cloud", "http://egress:url-password-7f3a9c@127.0.0.1:8443")]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_config(path, env=SIM_ENV)
    [problem] = info.value.problems
    assert "providers[0].base_url" in str(problem) and "must not hold a user or password" in str(problem)
    assert "url-password-7f3a9c" not in str(problem)


def test_a_reset_connection(tmp_path, logs, reset):
    gateway = gateway_for(tmp_path, [endpoint("eu-cloud", reset.url)])
    try:
        err = refused(gateway)
        assert err.status_code == 502
        assert err.body["error"]["details"]["error_code"] == "upstream_unavailable"
        assert message(err) == "egress: endpoint 'eu-cloud' failed: connection reset by the endpoint"
        [line] = failure_lines(logs)
        assert line.startswith(f"endpoint eu-cloud (127.0.0.1:{reset.port}) failed: connection reset")
    finally:
        gateway.stop()


def test_tls_spoken_to_a_plain_http_server_is_a_handshake_failure(tmp_path, logs, upstream):
    https = upstream.url.replace("http://", "https://")
    gateway = gateway_for(tmp_path, [endpoint("eu-cloud", https)])
    try:
        err = refused(gateway)
        assert err.status_code == 502
        assert err.body["error"]["details"]["error_code"] == "upstream_unavailable"
        assert message(err) == "egress: endpoint 'eu-cloud' failed: TLS handshake failed"
        [line] = failure_lines(logs)
        assert line.startswith(f"endpoint eu-cloud (127.0.0.1:{upstream.port}) failed: TLS handshake failed")
        assert upstream.received == []
    finally:
        gateway.stop()


def test_an_overloaded_answer_then_a_failure_lists_both(tmp_path, logs, upstream):
    """A 503 is dropped for the next allowed endpoint; when that one fails too, both are named."""
    upstream.enqueue(Reply(status=503, headers={"content-type": "application/json"}, chunks=[b'{"error":"busy"}']))
    second_port = free_port()
    gateway = gateway_for(
        tmp_path, [endpoint("eu-primary", upstream.url), endpoint("eu-secondary", f"http://127.0.0.1:{second_port}")]
    )
    try:
        err = refused(gateway)
        assert err.status_code == 502
        assert message(err) == (
            "egress: no allowed endpoint could be reached: 'eu-primary' (HTTP 503); 'eu-secondary' (connection refused)"
        )
        assert err.body["error"]["details"]["attempts"] == [
            {"endpoint": "eu-primary", "cause": "http_status", "status": 503},
            {"endpoint": "eu-secondary", "cause": "connection_refused"},
        ]
        first, second = failure_lines(logs)
        assert first.startswith(f"endpoint eu-primary (127.0.0.1:{upstream.port}) failed: answered HTTP 503")
        assert first.endswith(f"; {NEXT} (eu-secondary)")
        assert second.endswith("; no allowed endpoint is left to try")
    finally:
        gateway.stop()
