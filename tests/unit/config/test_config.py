"""Configuration: embedded defaults work; every mistake is named with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from egress.cli.main import main
from egress.config import ConfigError, load_config

GOOD = """\
server:
  port: 9090
providers:
  - name: eu-mistral
    api: openai
    base_url: https://api.mistral.ai/v1
    models: ["mistral-*", "codestral-*"]
    credentials: {env: MISTRAL_API_KEY}
    operator: Mistral AI
    jurisdiction: FR
    region: eu-west
    retention_days: 30
    trains_on_api_data: false
    dpa: true
"""


def test_embedded_defaults_load_without_any_file(tmp_path):
    config = load_config(None, env={"HOME": str(tmp_path)})
    assert config.server.host == "127.0.0.1" and config.server.port == 8080
    assert config.auth.required is True
    assert {e.name for e in config.providers} >= {"anthropic", "openai"}
    assert config.store_url == f"sqlite:///{tmp_path}/.local/share/egress/egress.db"


def test_file_values_merge_over_defaults_and_env_is_resolved(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    config = load_config(path, env={"MISTRAL_API_KEY": "sk-m", "EGRESS_DATA_DIR": str(tmp_path / "d")})
    assert config.server.port == 9090 and config.server.host == "127.0.0.1"
    (endpoint,) = config.providers
    assert endpoint.credentials.api_key.get_secret_value() == "sk-m"
    assert "sk-m" not in repr(config)  # secrets never appear in reprs or logs
    assert config.resolved_data_dir == tmp_path / "d"


def problems(text: str, tmp_path: Path, env=None) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {"MISTRAL_API_KEY": "x"})
    return [str(p) for p in info.value.problems]


def test_unknown_key_is_named_with_its_line(tmp_path):
    out = problems(GOOD.replace("  port: 9090", "  prot: 9090"), tmp_path)
    assert out == [f"{tmp_path}/bad.yaml:2: server.prot: unknown key (check its spelling and place)"]


def test_wrong_values_are_named_with_their_lines(tmp_path):
    text = GOOD.replace("jurisdiction: FR", "jurisdiction: France").replace("retention_days: 30", "retention_days: -1")
    out = problems(text, tmp_path)
    assert any(":10: providers[0].jurisdiction: Value error, must be an ISO 3166" in p for p in out), out
    assert any(":12: providers[0].retention_days: Input should be greater than or equal to 0" in p for p in out), out


def test_missing_required_key_points_at_its_parent(tmp_path):
    out = problems(GOOD.replace("    dpa: true\n", ""), tmp_path)
    assert out == [f"{tmp_path}/bad.yaml:4: providers[0].dpa: required key is missing"]


def test_unset_credential_variable_is_named(tmp_path):
    out = problems(GOOD, tmp_path, env={"HOME": str(tmp_path)})
    assert out == [
        f"{tmp_path}/bad.yaml:8: providers[0].credentials.env: environment variable MISTRAL_API_KEY is not set "
        "(endpoint 'eu-mistral')"
    ]


def test_both_credential_sources_is_an_error(tmp_path):
    out = problems(GOOD.replace("{env: MISTRAL_API_KEY}", "{env: MISTRAL_API_KEY, passthrough: true}"), tmp_path)
    assert len(out) == 1 and "providers[0].credentials: Value error, set exactly one of" in out[0]


def test_invalid_yaml_is_reported_with_its_line(tmp_path):
    out = problems("server:\n  port: [1, 2\n", tmp_path)
    assert len(out) == 1 and "not valid YAML" in out[0]


def test_duplicate_endpoint_names(tmp_path):
    text = GOOD + GOOD.split("providers:\n", 1)[1]
    out = problems(text, tmp_path)
    assert any("duplicate endpoint names: ['eu-mistral']" in p for p in out), out


def test_config_check_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", "x")
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    result = CliRunner().invoke(main, ["config", "check", str(good)])
    assert result.exit_code == 0 and "OK (1 provider endpoints: eu-mistral)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("base_url: https://api.mistral.ai/v1", "base_url: api.mistral.ai"))
    result = CliRunner().invoke(main, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert (
        f"error: {bad}:6: providers[0].base_url: Value error, must be an absolute http:// or https:// URL"
        in result.output
    )


def test_masking_defaults_and_unknown_kinds(tmp_path):
    config = load_config(None, env={"HOME": str(tmp_path)})
    # The embedded defaults' endpoints are in the US: personal data is masked too.
    assert config.masking.kinds == ("secret", "pii")
    assert config.policy.engine == "rego" and config.policy.files == ()
    assert config.masking_key_file == config.resolved_data_dir / "masking.key"
    out = problems(GOOD + "masking:\n  kinds: [secret, passwords]\n", tmp_path)
    assert len(out) == 1 and "masking.kinds" in out[0] and "unknown finding kind 'passwords'" in out[0]


def test_policy_section_is_validated(tmp_path):
    out = problems(GOOD + "policy:\n  engine: opa\n", tmp_path)
    assert len(out) == 1 and "engine opa needs opa_url" in out[0]
    out = problems(GOOD + "policy:\n  query: egress.decision\n", tmp_path)
    assert len(out) == 1 and "policy.query" in out[0]
    out = problems(GOOD + "policy:\n  timeout_ms: 0\n", tmp_path)
    assert len(out) == 1 and "policy.timeout_ms" in out[0]
