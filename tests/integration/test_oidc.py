"""OIDC tokens through the real gateway, with the official SDKs, against a local issuer on loopback:
only a valid token reaches the provider; every refusal is the client's native unauthorized error
(401; 403 for OpenAI clients), audited, with nothing sent upstream and the token in no audit
record and no log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import orjson
import pytest

from tests.conftest import Running, start_gateway
from tests.support.gateway import SIM_ENV, write_config
from tests.support.oidc_issuer import LocalIssuer, unsigned_token
from tests.support.oidc_issuer import new_key as new_signing_key
from tests.support.simulator import UpstreamSimulator

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    started = LocalIssuer(audience="egress").start()
    yield started
    started.stop()


@pytest.fixture
def oidc_gateway(upstream: UpstreamSimulator, issuer: LocalIssuer, tmp_path: Path) -> Iterator[Running]:
    oidc = {"issuer": issuer.url, "audience": "egress", "leeway_s": 5, "jwks_refetch_min_s": 0}
    running = start_gateway(write_config(tmp_path, upstream.url, auth={"oidc": oidc}), "erin", "platform")
    yield running
    running.stop()


def anthropic_sdk(url: str, api_key: str, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=api_key, default_headers=headers, max_retries=0)


def openai_sdk(url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0)


def raw_audit(gateway: Running) -> bytes:
    return b"\n".join(r.entry.canonical for r in gateway.store.iter_audit())


def test_valid_tokens_pass_with_either_sdk_and_are_audited_as_oidc(oidc_gateway, upstream, issuer, caplog):
    caplog.set_level(logging.DEBUG)
    token = issuer.mint(jti="tok-anthropic")
    message = anthropic_sdk(oidc_gateway.url, token).messages.create(**MESSAGE)
    assert message.content[0].text == "Hello there!"
    sent = upstream.received[-1]
    # The token is the gateway's credential: dropped, and the provider's own key sent instead.
    assert sent.header("x-api-key") == SIM_ENV["SIM_ANTHROPIC_KEY"]
    assert token not in str(sent.headers)

    chat_token = issuer.mint(jti="tok-openai")
    completion = openai_sdk(oidc_gateway.url, chat_token).chat.completions.create(**CHAT)
    assert completion.choices[0].message.content
    assert upstream.received[-1].header("authorization") == f"Bearer {SIM_ENV['SIM_OPENAI_KEY']}"

    # In x-egress-key, beside the client's own (ignored) API key.
    header_token = issuer.mint(jti="tok-header")
    anthropic_sdk(oidc_gateway.url, "sk-ant-client", **{"x-egress-key": header_token}).messages.create(**MESSAGE)
    assert header_token not in str(upstream.received[-1].headers)

    records = oidc_gateway.audit(expect=3)
    assert [(r["user"], r["team"], r["auth"], r["key_id"]) for r in records] == [
        ("dana@example.org", "payments", "oidc", "tok-anthropic"),
        ("dana@example.org", "payments", "oidc", "tok-openai"),
        ("dana@example.org", "payments", "oidc", "tok-header"),
    ]
    for secret in (token, chat_token, header_token):
        assert secret.encode() not in raw_audit(oidc_gateway)
        assert secret not in caplog.text


def test_gateway_keys_still_work_beside_oidc(oidc_gateway, upstream):
    anthropic_sdk(oidc_gateway.url, oidc_gateway.key).messages.create(**MESSAGE)
    openai_sdk(oidc_gateway.url, oidc_gateway.key).chat.completions.create(**CHAT)
    records = oidc_gateway.audit(expect=2)
    assert [(r["user"], r["auth"]) for r in records] == [("erin", "gateway_key"), ("erin", "gateway_key")]


REFUSED = {
    "expired": lambda i: i.mint(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    "not yet valid": lambda i: i.mint(nbf=int(time.time()) + 3600),
    "wrong audience": lambda i: i.mint(aud="another-service"),
    "wrong issuer": lambda i: i.mint(iss="https://idp.attacker.example"),
    "wrong key, same kid": lambda i: i.mint(key=new_signing_key(i.keys[0].kid)),
    "unknown kid": lambda i: i.mint(key=new_signing_key("stranger")),
    "alg none": lambda i: i.forge_alg_none(),
    "HS256 keyed with the public key": lambda i: i.forge_hs256_with_public_key(),
    "forged signature": lambda i: unsigned_token({"alg": "RS256", "kid": "key-1"}, i.claims(), b"not a signature" * 9),
    "garbage": lambda i: "garbage-token-" + "x" * 40,
}
REASONS = {
    "expired": "expired",
    "not yet valid": "not valid yet",
    "wrong audience": "not meant for this gateway",
    "wrong issuer": "not issued by",
    "wrong key, same kid": "signature does not verify",
    "unknown kid": "not one of the issuer's keys",
    "alg none": "'none' is not accepted",
    "HS256 keyed with the public key": "'HS256' is not accepted",
    "forged signature": "signature does not verify",
    "garbage": "missing gateway key or OIDC token",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_tokens_get_a_native_401_and_reach_nothing(oidc_gateway, upstream, issuer, case, caplog):
    caplog.set_level(logging.DEBUG)
    token = REFUSED[case](issuer)
    with pytest.raises(anthropic.AuthenticationError) as refused:
        anthropic_sdk(oidc_gateway.url, token).messages.create(**MESSAGE)
    body = refused.value.body
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert body["error"]["details"]["error_code"] == "unauthorized"
    assert REASONS[case] in body["error"]["message"]
    # OpenAI-family clients get the refusal as a 403 (Codex CLI retries a 401: see openai_errors).
    with pytest.raises(openai.PermissionDeniedError) as refused_chat:
        openai_sdk(oidc_gateway.url, token).chat.completions.create(**CHAT)
    assert refused_chat.value.code == "unauthorized" and REASONS[case] in refused_chat.value.message
    assert upstream.received == []
    records = oidc_gateway.audit(expect=2)
    assert [(r["status"], r["outcome"]) for r in records] == [(401, "refused"), (403, "refused")]
    assert token.encode() not in raw_audit(oidc_gateway)
    signature = token.rsplit(".", 1)[-1]
    assert token not in caplog.text and (len(signature) < 8 or signature not in caplog.text)
    assert token not in str(body) and token not in str(refused_chat.value.body)


def test_a_key_added_at_the_issuer_is_picked_up(oidc_gateway, upstream, issuer):
    anthropic_sdk(oidc_gateway.url, issuer.mint()).messages.create(**MESSAGE)
    rotated = new_signing_key("key-2", "ES256")
    issuer.publish(rotated)
    message = anthropic_sdk(oidc_gateway.url, issuer.mint(key=rotated)).messages.create(**MESSAGE)
    assert message.content[0].text == "Hello there!"
    assert issuer.jwks_hits == 2


def test_a_verified_token_is_not_verified_again(oidc_gateway, upstream, issuer):
    token = issuer.mint()
    client = anthropic_sdk(oidc_gateway.url, token)
    for _ in range(3):
        client.messages.create(**MESSAGE)
    hits = issuer.jwks_hits
    issuer.stop()  # the keys cannot be fetched again: the cached verification carries the token
    client.messages.create(**MESSAGE)
    assert issuer.jwks_hits == hits == 1
    records = oidc_gateway.audit(expect=4)
    assert all(orjson.dumps(r).count(token.encode()) == 0 for r in records)
