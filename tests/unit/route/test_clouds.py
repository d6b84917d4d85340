"""egress/route/clouds: inference-profile geographies, SigV4 signing, Google access tokens.

Signing is checked by the Bedrock simulator's verifier (botocore's canonical request recomputed
over what would be sent); tokens come from google-auth's real service-account flow against the
Vertex simulator's token endpoint, which checks the JWT's signature.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from egress.config import load_config
from egress.core.endpoint import Credentials, Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.route.clouds.bedrock import BedrockAdapter
from egress.route.clouds.google_auth import GoogleTokenSource, key_file_loader
from egress.route.clouds.profiles import check_endpoints, geography
from tests.support.bedrock_sim import ACCESS_KEY, BAD_SIGNATURE, SECRET_KEY, verify_sigv4
from tests.support.gateway import SIM_ENV, write_config
from tests.support.vertex_sim import VertexSimulator, make_service_account

PROFILE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"


def bedrock_endpoint(**fields: Any) -> Endpoint:
    doc: dict[str, Any] = {
        "name": "bedrock-eu",
        "api": "bedrock",
        "base_url": "https://bedrock-runtime.eu-central-1.amazonaws.com",
        "models": ["claude-sonnet-4-5"],
        "credentials": {"chain": True},
        "operator": "Amazon Web Services",
        "jurisdiction": "EU",
        "region": "eu-central-1",
        "retention_days": 0,
        "trains_on_api_data": False,
        "dpa": True,
        "model_map": {"claude-sonnet-4-5": PROFILE},
    }
    return Endpoint.model_validate({**doc, **fields})


def test_profile_geographies():
    assert geography(PROFILE).jurisdictions == ("EU",)
    assert geography("us.anthropic.claude-x-v1:0").jurisdictions == ("US",)
    assert geography("jp.anthropic.claude-x-v1:0").jurisdictions == ("JP",)
    assert geography("au.anthropic.claude-x-v1:0").jurisdictions == ("AU",)
    assert len(geography("apac.anthropic.claude-x-v1:0").jurisdictions) > 1
    assert geography("anthropic.claude-sonnet-4-5-20250929-v1:0") is None  # a base id: the endpoint's region
    arn = "arn:aws:bedrock:eu-central-1:123456789012:inference-profile/eu.anthropic.claude-x-v1:0"
    assert geography(arn).prefix == "eu"


def test_profile_must_match_the_endpoints_jurisdiction():
    check_endpoints([bedrock_endpoint()])
    with pytest.raises(ValueError, match=r"declares jurisdiction US but inference profile 'eu\.anthropic"):
        check_endpoints([bedrock_endpoint(jurisdiction="US")])
    with pytest.raises(ValueError, match="not in one jurisdiction"):
        check_endpoints([bedrock_endpoint(model_map={"claude-sonnet-4-5": "apac.anthropic.claude-x-v1:0"})])


def test_config_load_refuses_a_profile_outside_the_endpoints_jurisdiction(tmp_path: Path):
    endpoint = bedrock_endpoint(jurisdiction="DE").model_dump(mode="json", exclude_none=True)
    endpoint["credentials"] = {"chain": True}
    path = write_config(tmp_path, "http://127.0.0.1:9", providers=[endpoint])
    with pytest.raises(Exception, match="declares jurisdiction DE but inference profile"):
        load_config(path, env=SIM_ENV)


def test_credentials_take_exactly_one_source():
    assert Credentials.model_validate({"chain": True}).chain
    assert Credentials.model_validate({"key_file": "/k.json"}).key_file == "/k.json"
    with pytest.raises(ValueError, match="exactly one"):
        Credentials.model_validate({"chain": True, "env": "X"})
    with pytest.raises(ValueError, match="is for `api: vertex`"):
        bedrock_endpoint(credentials={"key_file": "/k.json"})
    with pytest.raises(ValueError, match="is for `api: bedrock`"):
        bedrock_endpoint(api="anthropic", model_map={})


def test_a_request_for_a_profile_of_another_geography_is_refused_before_it_leaves():
    adapter = BedrockAdapter(bedrock_endpoint(models=["*"]))
    with pytest.raises(EgressError, match="declares jurisdiction EU but inference profile 'us") as caught:
        adapter.prepare("us.anthropic.claude-x-v1:0", True, b'{"model":"x"}', CIMultiDict())
    assert caught.value.code is ErrorCode.NO_ROUTE


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_sigv4_from_the_credential_chain_verifies(aws_env: None):
    adapter = BedrockAdapter(bedrock_endpoint(region="eu-central-1"))
    headers: CIMultiDict[str] = CIMultiDict({"content-type": "application/json", "anthropic-version": "2023-06-01"})
    prepared = adapter.prepare(PROFILE, True, b'{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}', headers)
    url = "http://127.0.0.1:8443" + prepared.path
    asyncio.run(adapter.authorize(url, headers, prepared.body))
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    sent = [*headers.items(), ("host", "127.0.0.1:8443")]
    assert verify_sigv4("POST", url, sent, prepared.body, "eu-central-1") is None
    # One byte of the body changed after signing, or another region: refused.
    assert verify_sigv4("POST", url, sent, prepared.body + b" ", "eu-central-1") == BAD_SIGNATURE
    assert "scoped" in (verify_sigv4("POST", url, sent, prepared.body, "us-east-1") or "")
    changed = [(k, "text/plain" if k == "content-type" else v) for k, v in sent]
    assert verify_sigv4("POST", url, changed, prepared.body, "eu-central-1") == BAD_SIGNATURE


def test_no_aws_credentials_is_a_precise_upstream_error(monkeypatch: pytest.MonkeyPatch, aws_env: None):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    adapter = BedrockAdapter(bedrock_endpoint())
    with pytest.raises(EgressError, match="no AWS credentials") as caught:
        asyncio.run(adapter.authorize("http://127.0.0.1:1/model/x/invoke", CIMultiDict(), b"{}"))
    assert caught.value.code is ErrorCode.UPSTREAM_UNAVAILABLE


@pytest.fixture
def vertex(tmp_path: Path) -> Iterator[VertexSimulator]:
    sim = VertexSimulator(token_lifetime_s=200).start()
    sim.account = make_service_account(tmp_path / "sa", sim.token_uri)
    yield sim
    sim.stop()


def test_google_token_is_cached_and_refreshed_before_expiry_in_the_background(vertex: VertexSimulator):
    assert vertex.account is not None
    source = GoogleTokenSource("vertex-eu", key_file_loader(str(vertex.account.path)), refresh_margin_s=300)

    async def scenario() -> tuple[str, str, str, int]:
        first = await source.token()  # none yet: waits for the first token
        assert vertex.token_requests == 1
        # 200 s of life, refreshed within 300 s of expiry: still valid, so served at once while
        # one refresh runs on a thread.
        second, third = await asyncio.gather(source.token(), source.token())
        assert second == third == first
        for _ in range(200):
            if vertex.token_requests == 2 and source._refreshing is None:
                break
            await asyncio.sleep(0.01)
        return first, second, await source.token(), vertex.token_requests

    first, second, fresh, requests = asyncio.run(scenario())
    assert requests == 2
    assert fresh != first and fresh in vertex.tokens


def test_google_token_failure_is_an_upstream_error_without_details(vertex: VertexSimulator, tmp_path: Path):
    other = make_service_account(tmp_path / "other", vertex.token_uri)  # a key the simulator does not know
    source = GoogleTokenSource("vertex-eu", key_file_loader(str(other.path)))
    with pytest.raises(EgressError, match=r"could not obtain a Google access token \(RefreshError\)") as caught:
        asyncio.run(source.token())
    assert caught.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert "BEGIN PRIVATE KEY" not in caught.value.message
