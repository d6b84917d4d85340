"""`credentials: none`: an auth-free self-hosted endpoint gets the body and the protocol headers,
never a credential of the developer's (API key, bearer token or login, cookie, account id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from egress.config import ConfigError, load_config
from tests.conftest import start_gateway
from tests.support.gateway import write_config

# What a developer's client may carry: each is a credential or ties the request to an account.
ANTHROPIC_KEY = "sk-ant-api03-developer-own-key-4411"
OPENAI_KEY = "sk-proj-developer-own-key-8822"
CLIENT_CREDENTIALS = {
    "cookie": "session=developer-cookie-5533",
    "anthropic-api-key": "sk-ant-api03-second-copy-6644",
    "chatgpt-account-id": "acct-developer-7755",
    "openai-organization": "org-developer-9966",
    "openai-project": "proj_developer-1177",
    "x-goog-api-key": "AIza-developer-2288",
    "proxy-authorization": "Basic ZGV2OnNlY3JldA==",
    "x-auth-token": "developer-auth-token-3399",
}
SECRETS = (ANTHROPIC_KEY, OPENAI_KEY, *CLIENT_CREDENTIALS.values())
# Every header name the self-hosted server may see: the protocol's, the SDKs' own, the transport's.
PROTOCOL_HEADERS = {
    "host",
    "content-type",
    "content-length",
    "accept",
    "accept-encoding",
    "user-agent",
    "anthropic-version",
    "anthropic-beta",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-retry-count",
    "x-stainless-read-timeout",
    "x-stainless-timeout",
    "x-stainless-async",
    "x-stainless-helper-method",
    "x-stainless-raw-response",
}


def own_box(base_url: str, api: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "own-box",
        "api": api,
        "base_url": base_url,
        "models": ["*"],
        "credentials": "none",
        "operator": "us (self-hosted)",
        "jurisdiction": "self",
        "region": "self-hosted",
        "retention_days": 0,
        "trains_on_api_data": False,
        "dpa": False,
        **extra,
    }


def config_with(tmp_path: Path, providers: list[dict[str, Any]]) -> Path:
    path = write_config(tmp_path, "http://127.0.0.1:1", policy={"timeout_ms": 10000})
    doc = yaml.safe_load(path.read_text())
    doc["providers"] = providers
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def assert_no_credential(received) -> None:
    names = {name.lower() for name, _ in received.headers if not name.lower().startswith("x-stainless-")}
    assert names <= PROTOCOL_HEADERS, f"headers beyond the protocol's: {sorted(names - PROTOCOL_HEADERS)}"
    raw = repr(received.headers)
    for secret in SECRETS:
        assert secret not in raw
    for name in ("authorization", "x-api-key", "api-key", "cookie", "x-egress-key"):
        assert received.header(name) is None


def test_anthropic_client_credentials_never_reach_an_auth_free_endpoint(tmp_path, upstream):
    gateway = start_gateway(config_with(tmp_path, [own_box(upstream.url, "anthropic")]), "frank", "infra")
    try:
        client = anthropic.Anthropic(
            base_url=gateway.url,
            api_key=ANTHROPIC_KEY,  # the developer's own key, as x-api-key
            default_headers={
                "x-egress-key": gateway.key,
                "authorization": "Bearer sk-ant-oat01-developer-login-0011",  # and a Claude login
                **CLIENT_CREDENTIALS,
            },
            max_retries=0,
        )
        answer = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.content[0].text
        [received] = upstream.received
        assert received.json()["messages"][0]["content"] == "hi"  # the body arrived
        assert received.header("anthropic-version")  # and the protocol headers
        assert_no_credential(received)
        assert "sk-ant-oat01-developer-login-0011" not in repr(received.headers)
    finally:
        gateway.stop()


def test_openai_client_credentials_never_reach_an_auth_free_chat_server(tmp_path, upstream):
    gateway = start_gateway(config_with(tmp_path, [own_box(upstream.url + "/v1", "openai-chat")]), "frank", "infra")
    try:
        client = openai.OpenAI(
            base_url=gateway.url + "/v1",
            api_key=OPENAI_KEY,  # Authorization: Bearer <the developer's key>
            organization="org-developer-9966",
            project="proj_developer-1177",
            default_headers={"x-egress-key": gateway.key, **CLIENT_CREDENTIALS},
            max_retries=0,
        )
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        [received] = upstream.received
        assert received.path == "/v1/chat/completions"
        assert received.json()["messages"][0]["content"] == "hi"
        assert_no_credential(received)
    finally:
        gateway.stop()


def test_credentials_none_spellings(tmp_path):
    for spelling in ("none", {"none": True}):
        path = config_with(tmp_path, [{**own_box("http://127.0.0.1:8000/v1", "openai-chat"), "credentials": spelling}])
        [box] = load_config(path, env={}).providers
        assert box.credentials.none and not box.credentials.passthrough and box.credentials.api_key is None


@pytest.mark.parametrize(
    "credentials",
    [
        {"none": True, "passthrough": True},
        {"none": True, "env": "KEY"},
        {"none": True, "header": "x-api-key"},
        "nothing",
    ],
)
def test_credentials_none_cannot_be_combined(tmp_path, credentials):
    path = config_with(tmp_path, [{**own_box("http://127.0.0.1:8000/v1", "openai-chat"), "credentials": credentials}])
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"KEY": "x"})
    assert any("providers[0].credentials" in str(p) for p in info.value.problems)
