"""`egress providers`: the catalog and the configured endpoints with their checklist answers."""

from __future__ import annotations

import json

from click.testing import CliRunner

from egress.cli.main import main

SECRET = "sk-aoai-must-never-be-printed-0123456789"
CONFIG = """\
catalog:
  - id: mistral
    trains_on_api_data: true
    notes: {trains_on_api_data: "Experiment plan, not opted out"}
providers:
  - name: aoai
    catalog: azure-openai-swedencentral
    params: {resource: my-aoai}
    retention_days: 0
    zero_data_retention: true
    credentials: {env: AOAI_KEY, header: api-key}
  - name: local
    catalog: vllm
    upstream_model: qwen3-coder
    credentials: {passthrough: true}
  - name: deepseek
    catalog: deepseek
    retention_days: 30
    trains_on_api_data: true
    dpa: false
    credentials: {passthrough: true}
masking: {kinds: [secret]}   # personal data in clear: the policy's jurisdiction rules decide
"""


def providers(*args: str, tmp_path=None, config: str | None = None):
    env = {"COLUMNS": "250", "AOAI_KEY": SECRET, "HOME": str(tmp_path) if tmp_path else "/nonexistent"}
    if config is not None:
        path = tmp_path / "egress.yaml"
        path.write_text(config)
        args = ("--config", str(path), *args)
    return CliRunner().invoke(main, ["providers", *args], env=env)


def test_json_lists_the_catalog_and_the_default_endpoints_with_checklist_answers(tmp_path):
    result = providers("--json", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    entries = {r["id"]: r for r in report["catalog"]}
    assert {"anthropic", "openai", "azure-openai-eu-datazone", "aws-bedrock-eu-central-1", "zai", "llamacpp"} <= set(
        entries
    )
    assert report["catalog_version"] == "2026-11-26"
    assert [e["name"] for e in report["endpoints"]] == ["anthropic", "openai"]
    assert report["endpoints"][0]["endpoint"]["catalog"] == "anthropic"

    anthropic = entries["anthropic"]["checklist"]
    assert anthropic["trains_on_api_data"] is False and anthropic["retention_days"] == 30
    assert anthropic["region_pinning"] is True and anthropic["zero_data_retention_offered"] is True
    assert "FISA Section 702 (50 U.S.C. 1881a)" in anthropic["government_access"]
    # The embedded defaults mask personal data, so it may go to the US endpoint, masked.
    assert anthropic["policy_fit"]["pii"] == "masked"
    assert anthropic["policy_fit"]["secret"] == "masked"

    eu_zone = entries["azure-openai-eu-datazone"]
    assert eu_zone["entry"]["jurisdiction"] == "EU" and eu_zone["checklist"]["policy_fit"]["pii"] == "masked"
    assert eu_zone["checklist"]["exposure"] == "secrets: masked (placeholders only); PII: masked (placeholders only)"
    assert "US CLOUD Act (18 U.S.C. 2713)" in eu_zone["checklist"]["government_access"]
    assert eu_zone["checklist"]["retention_days"] is None and eu_zone["entry"]["notes"]["retention_days"]

    zai = entries["zai"]["checklist"]
    assert zai["trains_on_api_data"] is None and zai["policy_fit"]["public"] == "allowed"
    assert zai["policy_fit"]["pii"] == "refused: trains on API data and the request is not public"
    assert "PRC National Intelligence Law (2017) Art. 7" in zai["government_access"]
    assert entries["llamacpp"]["checklist"]["policy_fit"]["proprietary"] == "allowed"
    assert entries["openai"]["origin"] == "bundled"


def test_json_shows_configured_endpoints_and_catalog_overrides_without_credentials(tmp_path):
    result = providers("--json", tmp_path=tmp_path, config=CONFIG)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    report = json.loads(result.stdout)
    aoai, local, deepseek = report["endpoints"]
    assert aoai["endpoint"]["base_url"] == "https://my-aoai.openai.azure.com/openai/v1"
    assert aoai["endpoint"]["credentials"] == {
        "env": "AOAI_KEY",
        "passthrough": False,
        "none": False,
        "chain": False,
        "key_file": None,
        "header": "api-key",
    }
    assert aoai["checklist"]["retention_days"] == 0
    assert aoai["checklist"]["zero_data_retention_in_effect"] is True
    assert aoai["checklist"]["exposure"] == "secrets: masked (placeholders only); PII: sent in clear, not kept"
    assert local["endpoint"]["upstream_model"] == "qwen3-coder"
    assert local["endpoint"]["base_url"] == "http://127.0.0.1:8000/v1"
    assert set(local["checklist"]["policy_fit"].values()) == {"masked", "allowed"}
    assert deepseek["checklist"]["policy_fit"]["secret"] == "refused: trains on API data and the request is not public"
    mistral = next(r for r in report["catalog"] if r["id"] == "mistral")
    assert mistral["origin"] == "bundled, overridden by config"
    assert mistral["checklist"]["policy_fit"]["pii"].startswith("refused: trains on API data")


def test_the_table_prints_catalog_and_endpoints(tmp_path):
    result = providers(tmp_path=tmp_path, config=CONFIG)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Provider catalog 2026-11-26" in out and "Configured endpoints" in out
    for label in ("azure-openai-swedencentral", "aws-bedrock-us-east-1", "mistral (overridden)", "deepseek (deepseek)"):
        assert label in out, label
    assert "aoai (azure-openai-swedencentral)" in out and "local (vllm)" in out
    assert "ZDR in effect" in out and "TRAINS" in out and "no training" in out


def test_one_entry_in_detail_with_its_source_and_as_of(tmp_path):
    result = providers("--id", "deepseek", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    assert "https://cdn.deepseek.com/policies/en-US/deepseek-privacy-policy.html" in result.output
    assert "2026-11-26" in result.output and "note:" in result.output
    assert "policy fit: pii" in result.output and "PRC National Intelligence Law" in result.output
    detail = json.loads(providers("--id", "deepseek", "--json", tmp_path=tmp_path).stdout)
    assert detail["entry"]["source"].startswith("https://") and detail["entry"]["as_of"] == "2026-11-26"

    result = providers("--endpoint", "local", tmp_path=tmp_path, config=CONFIG)
    assert result.exit_code == 0, result.output
    assert "qwen3-coder" in result.output and "https://docs.vllm.ai/" in result.output


def test_unknown_names_and_config_errors_are_refused(tmp_path):
    result = providers("--id", "no-such-entry", tmp_path=tmp_path)
    assert result.exit_code == 2 and "no catalog entry 'no-such-entry'" in result.output
    result = providers("--endpoint", "nope", tmp_path=tmp_path)
    assert result.exit_code == 2 and "no configured endpoint 'nope'" in result.output
    result = providers(tmp_path=tmp_path, config=CONFIG.replace("catalog: vllm", "catalog: vlm"))
    assert result.exit_code == 2
    assert f"{tmp_path}/egress.yaml:13: providers[1].catalog: unknown catalog entry 'vlm'" in result.output
