"""The auth.oidc and server TLS settings: safe defaults, and each mistake named with its key and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from egress.config import ConfigError, load_config
from tests.support.tls import make_test_ca

ENV = {"HOME": "/nonexistent-home"}


def load(tmp_path: Path, doc: dict):
    path = tmp_path / "egress.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_config(path, env={**ENV, "HOME": str(tmp_path)})


def problems(tmp_path: Path, doc: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, doc)
    return str(caught.value)


def test_oidc_is_off_by_default_and_its_defaults_are_safe(tmp_path):
    assert load(tmp_path, {}).auth.oidc is None
    oidc = load(tmp_path, {"auth": {"oidc": {"issuer": "https://idp.example.org", "audience": "egress"}}}).auth.oidc
    assert oidc.audience == ("egress",)
    assert oidc.algorithms == ("RS256", "PS256", "ES256", "EdDSA")
    assert (oidc.user_claim, oidc.team_claim, oidc.leeway_s) == (None, "groups", 60.0)


@pytest.mark.parametrize(
    ("oidc", "where", "says"),
    [
        ({"issuer": "http://idp.example.org", "audience": "egress"}, "auth.oidc.issuer", "https"),
        ({"issuer": "https://idp.example.org", "audience": []}, "auth.oidc.audience", "audience"),
        ({"issuer": "https://idp.example.org"}, "auth.oidc.audience", "required key is missing"),
        ({"issuer": "https://idp.example.org", "audience": "e", "algorithms": ["HS256"]}, "auth.oidc.algorithms", "HS256"),
        ({"issuer": "https://idp.example.org", "audience": "e", "algorithms": ["none"]}, "auth.oidc.algorithms", "none"),
        ({"issuer": "https://idp.example.org", "audience": "e", "leeway_s": 301}, "auth.oidc.leeway_s", "300"),
        ({"issuer": "https://idp.example.org", "audience": "e", "jwks_url": "ftp://x"}, "auth.oidc.jwks_url", "https"),
        ({"issuer": "https://idp.example.org", "audience": "e", "ca_bundle": "/no/such/ca.pem"}, "auth.oidc.ca_bundle", "cannot read"),
    ],
)
def test_oidc_mistakes_are_named(tmp_path, oidc, where, says):
    message = problems(tmp_path, {"auth": {"oidc": oidc}})
    assert where in message and says in message


def test_loopback_http_issuer_is_allowed(tmp_path):
    oidc = {"issuer": "http://127.0.0.1:8900", "audience": "egress", "jwks_url": "http://localhost:8900/jwks"}
    assert load(tmp_path, {"auth": {"oidc": oidc}}).auth.oidc.issuer == "http://127.0.0.1:8900"


def test_server_tls_files(tmp_path):
    ca = make_test_ca(tmp_path / "ca")
    server = load(tmp_path, {"server": {"tls_cert_file": str(ca.server_cert), "tls_key_file": str(ca.server_key)}})
    assert server.server.tls_cert_file == ca.server_cert
    only_one = problems(tmp_path, {"server": {"tls_cert_file": str(ca.server_cert)}})
    assert "server" in only_one and "both or neither" in only_one
    missing = problems(tmp_path, {"server": {"tls_cert_file": str(tmp_path / "nope.pem"), "tls_key_file": str(ca.server_key)}})
    assert "server.tls_cert_file" in missing and "cannot read" in missing and "nope.pem" in missing
    mismatched = problems(tmp_path, {"server": {"tls_cert_file": str(ca.server_cert), "tls_key_file": str(ca.client_key)}})
    assert "server.tls_cert_file" in mismatched and "do not load together" in mismatched
    upstream = problems(tmp_path, {"upstream": {"ca_bundle": str(tmp_path / "missing-ca.pem")}})
    assert "upstream.ca_bundle" in upstream and "cannot read" in upstream


def test_an_endpoint_ca_bundle_must_be_readable(tmp_path):
    provider = {
        "name": "corp-gateway",
        "api": "openai",
        "base_url": "https://llm.corp.example/v1",
        "models": ["gpt-*"],
        "credentials": {"passthrough": True},
        "operator": "Corp",
        "jurisdiction": "FR",
        "region": "eu-west",
        "retention_days": 0,
        "trains_on_api_data": False,
        "dpa": True,
        "tls_ca_bundle": str(tmp_path / "corp-ca.pem"),
    }
    message = problems(tmp_path, {"providers": [provider]})
    assert "providers[0].tls_ca_bundle" in message and "cannot read" in message
    make_test_ca(tmp_path / "ca")
    (tmp_path / "corp-ca.pem").write_bytes((tmp_path / "ca" / "ca.pem").read_bytes())
    assert load(tmp_path, {"providers": [provider]}).providers[0].tls_ca_bundle == str(tmp_path / "corp-ca.pem")
