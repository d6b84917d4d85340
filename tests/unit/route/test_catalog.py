"""The bundled provider catalog, and how configured providers and `catalog:` lists use it."""

from __future__ import annotations

import asyncio
import importlib.resources
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from egress.checklist.providers import Facts, exposure, policy_fits
from egress.config import ConfigError, load_config
from egress.policy.rego import RegoPolicy, RegoSource
from egress.route.provider_catalog import CatalogEntry, CatalogError, fill_template, parse_catalog

US_LAW = ("US CLOUD Act (18 U.S.C. 2713)", "FISA Section 702 (50 U.S.C. 1881a)")
REQUIRED = {
    "anthropic": "US",
    "openai": "US",
    "azure-openai-swedencentral": "SE",
    "azure-openai-francecentral": "FR",
    "azure-openai-eu-datazone": "EU",
    "google-vertex-europe-west4": "NL",
    "google-vertex-us-central1": "US",
    "aws-bedrock-eu-central-1": "EU",
    "aws-bedrock-us-east-1": "US",
    "mistral": "FR",
    "zai": "CN",
    "moonshot": "CN",
    "deepseek": "CN",
    "vllm": "self",
    "ollama": "self",
    "llamacpp": "self",
}


def bundled_raw() -> dict:
    return yaml.safe_load((importlib.resources.files("egress") / "defaults" / "catalog.yaml").read_text())


def bundled():
    return parse_catalog(bundled_raw())


def test_every_bundled_entry_validates_and_is_sourced_and_dated():
    catalog = bundled()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", catalog.version)
    assert len(catalog.entries) == len(bundled_raw()["entries"]) >= len(REQUIRED)
    for entry in catalog.entries:
        assert entry.source.startswith("https://") and " " not in entry.source, entry.id
        assert re.fullmatch(r"20\d\d-\d{2}-\d{2}", entry.as_of), entry.id
        assert entry.government_access, entry.id
        unknown = [
            f
            for f in ("jurisdiction", "region", "retention_days", "trains_on_api_data", "dpa")
            if getattr(entry, f) is None
        ]
        assert all(entry.notes.get(f) for f in unknown), (entry.id, unknown)


def test_required_providers_are_present_with_their_jurisdictions():
    catalog = bundled()
    assert {e.id: e.jurisdiction for e in catalog.entries if e.id in REQUIRED} == REQUIRED
    for entry in catalog.entries:
        if entry.operator.startswith(("Microsoft", "Google", "Amazon", "OpenAI", "Anthropic")):
            # A US operator's EU region: the region's jurisdiction, and still the US law.
            assert set(US_LAW) <= set(entry.government_access), entry.id
        if entry.jurisdiction == "CN":
            assert "PRC National Intelligence Law (2017) Art. 7" in entry.government_access
        if entry.jurisdiction == "self":
            assert entry.api.value == "openai-chat" and entry.models == ("*",) and entry.open_weights
            assert fill_template(entry.base_url, entry.params, None).startswith("http://127.0.0.1:")
    assert catalog.get("mistral").government_access == (
        "none beyond EU/member-state law (French law; no US parent company)",
    )


def entry_dict(**changes) -> dict:
    raw = {e["id"]: e for e in bundled_raw()["entries"]}["openai"]
    return {**raw, **changes}


def test_an_unknown_fact_must_say_why():
    CatalogEntry.model_validate(entry_dict(retention_days=None, notes={"retention_days": "not published"}))
    with pytest.raises(ValidationError, match=r"unknown facts \['retention_days'\] need a note"):
        CatalogEntry.model_validate(entry_dict(retention_days=None, notes={}))
    with pytest.raises(ValidationError, match="source"):
        CatalogEntry.model_validate(entry_dict(source="OpenAI's website"))
    with pytest.raises(ValidationError, match="as_of"):
        CatalogEntry.model_validate(entry_dict(as_of="last week"))
    with pytest.raises(ValidationError, match="jurisdiction"):
        CatalogEntry.model_validate(entry_dict(jurisdiction="France"))


def test_a_param_fills_one_label_and_cannot_move_the_host():
    template = "https://{resource}.openai.azure.com/openai/v1"
    assert fill_template(template, {}, {"resource": "my-aoai"}) == "https://my-aoai.openai.azure.com/openai/v1"
    for evil in ("evil.example/x#", "evil.example?", "a@b", "x y"):
        with pytest.raises(CatalogError, match="one label of a URL"):
            fill_template(template, {}, {"resource": evil})
    with pytest.raises(CatalogError, match=r"needs a value for \['resource'\]"):
        fill_template(template, {}, None)
    with pytest.raises(CatalogError, match=r"\['region'\] are not placeholders"):
        fill_template(template, {}, {"resource": "r", "region": "x"})


# --- configurations that use the catalog ----------------------------------------------------------

CONFIG = """\
providers:
  - name: aoai
    catalog: azure-openai-swedencentral
    params: {resource: my-aoai}
    retention_days: 0
    zero_data_retention: true
    models: ["gpt-4.1"]
    credentials: {env: AOAI_KEY, header: api-key}
  - name: local
    catalog: llamacpp
    params: {port: 8081}
    upstream_model: gemma-3-270m
    credentials: {passthrough: true}
"""


def load(text: str, tmp_path: Path, env: dict | None = None):
    path = tmp_path / "egress.yaml"
    path.write_text(text)
    return load_config(path, env={"HOME": str(tmp_path), "AOAI_KEY": "k-1", **(env or {})})


def problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path)
    return [str(p) for p in info.value.problems]


def test_a_provider_inherits_its_entrys_facts_and_its_own_keys_win(tmp_path):
    aoai, local = load(CONFIG, tmp_path).providers
    assert aoai.catalog == "azure-openai-swedencentral"
    assert aoai.base_url == "https://my-aoai.openai.azure.com/openai/v1"
    assert (aoai.operator, aoai.jurisdiction, aoai.region, aoai.api.value) == (
        "Microsoft Corporation",
        "SE",
        "swedencentral",
        "openai",
    )
    assert set(US_LAW) <= set(aoai.government_access) and aoai.region_pinning is True
    assert aoai.source.startswith("https://learn.microsoft.com/") and aoai.as_of == "2026-11-26"
    # Overrides: the catalog does not know the retention; ZDR in effect is the provider's statement.
    assert (aoai.retention_days, aoai.zero_data_retention, aoai.models) == (0, True, ("gpt-4.1",))
    assert aoai.credentials.api_key.get_secret_value() == "k-1" and aoai.credentials.header == "api-key"
    assert local.base_url == "http://127.0.0.1:8081/v1" and local.jurisdiction == "self"
    assert local.upstream_model == "gemma-3-270m" and local.models == ("*",) and local.open_weights


def test_the_embedded_defaults_reference_their_catalog_entries(tmp_path):
    anthropic, openai = load_config(None, env={"HOME": str(tmp_path)}).providers
    assert (anthropic.name, anthropic.catalog, anthropic.base_url, anthropic.models) == (
        "anthropic",
        "anthropic",
        "https://api.anthropic.com",
        ("claude-*", "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-4-8",
         "claude-sonnet-4-6", "claude-haiku-4-5"),
    )
    assert (openai.name, openai.catalog, openai.base_url) == ("openai", "openai", "https://api.openai.com/v1")
    # The patterns route; the names spelled out are what GET /v1/models lists.
    assert openai.models[:6] == ("gpt-*", "o1*", "o3*", "o4*", "codex-*", "chatgpt-*")
    assert "gpt-5.5" in openai.models
    assert anthropic.credentials.passthrough and openai.credentials.passthrough
    assert (anthropic.jurisdiction, anthropic.trains_on_api_data, anthropic.dpa) == ("US", False, True)
    # The catalog says a ZDR option is offered; only the organisation can say it is in effect.
    assert anthropic.zero_data_retention is False


def test_an_unknown_catalog_id_is_named_with_its_line(tmp_path):
    text = CONFIG.replace("catalog: llamacpp", "catalog: llama-cpp")
    assert problems(text, tmp_path) == [
        f"{tmp_path}/egress.yaml:10: providers[1].catalog: unknown catalog entry 'llama-cpp'; "
        "did you mean 'llamacpp'? (`egress providers` lists them)"
    ]


def test_a_missing_template_param_and_unknown_facts_are_named(tmp_path):
    text = CONFIG.replace("    params: {resource: my-aoai}\n", "")
    out = problems(text, tmp_path)
    assert len(out) == 1 and out[0].startswith(f"{tmp_path}/egress.yaml:2: providers[0].params: base_url https://")
    assert "needs a value for ['resource']" in out[0]
    out = problems(CONFIG.replace("    retention_days: 0\n", ""), tmp_path)
    assert out == [
        f"{tmp_path}/egress.yaml:2: providers[0].retention_days: catalog entry 'azure-openai-swedencentral' does "
        "not know retention_days: state it in this provider entry "
        "(`egress providers --id azure-openai-swedencentral` says why)"
    ]


EXTENSION = """\
catalog:
  - id: azure-openai-swedencentral
    retention_days: 0
  - id: acme-llm
    title: ACME's internal model gateway
    operator: ACME GmbH
    api: openai-chat
    base_url: https://llm.acme.example/v1
    models: ["acme-*"]
    jurisdiction: DE
    region: fra
    default_inference_location: Frankfurt
    region_pinning: true
    retention_days: 0
    trains_on_api_data: false
    dpa: true
    zero_data_retention: true
    government_access: [German law]
    source: https://llm.acme.example/terms
    as_of: "2026-10-01"
"""


def test_a_catalog_list_overrides_and_adds_entries(tmp_path):
    text = (
        EXTENSION
        + CONFIG.replace("    retention_days: 0\n", "")
        + ("  - name: acme\n    catalog: acme-llm\n    credentials: {passthrough: true}\n")
    )
    config = load(text, tmp_path)
    catalog = config.provider_catalog
    azure = catalog.get("azure-openai-swedencentral")
    assert azure.retention_days == 0 and "retention_days" not in azure.notes  # the old note explained null
    assert azure.jurisdiction == "SE" and "base_url" in azure.notes  # everything else stays
    assert catalog.origin("azure-openai-swedencentral") == "bundled, overridden by config"
    assert catalog.origin("acme-llm") == "config" and catalog.origin("openai") == "bundled"
    assert catalog.entries[-1].id == "acme-llm" and len(catalog.entries) == len(bundled().entries) + 1
    aoai, _, acme = config.providers
    assert aoai.retention_days == 0
    assert (acme.jurisdiction, acme.base_url, acme.catalog, acme.as_of) == (
        "DE",
        "https://llm.acme.example/v1",
        "acme-llm",
        "2026-10-01",
    )


def test_a_catalog_list_mistake_is_named_with_its_line(tmp_path):
    text = EXTENSION.replace("    retention_days: 0\n  - id: acme", "    retention_days: -3\n  - id: acme") + CONFIG
    out = problems(text, tmp_path)
    assert out == [f"{tmp_path}/egress.yaml:3: catalog[0].retention_days: Input should be greater than or equal to 0"]
    out = problems(EXTENSION.replace("    source: https://llm.acme.example/terms\n", "") + CONFIG, tmp_path)
    assert out == [f"{tmp_path}/egress.yaml:4: catalog[1].source: required key is missing"]
    out = problems("catalog:\n  - retention_days: 1\n" + CONFIG, tmp_path)
    assert out == [f"{tmp_path}/egress.yaml:2: catalog[0]: each entry is a mapping with an `id`"]


# --- the policy seam ------------------------------------------------------------------------------


# The bundled policy with personal data in clear (mask_kinds: secret only).
POLICY = RegoPolicy(RegoSource.bundled(), {"mask_kinds": ["secret"]})


def fit(jurisdiction, dpa=True, trains=False, retention=30):
    """What the real bundled policy decides for a destination with these facts."""
    facts = Facts(jurisdiction=jurisdiction, dpa=dpa, trains_on_api_data=trains, retention_days=retention)
    (verdicts,) = asyncio.run(policy_fits(POLICY, [facts]))
    return verdicts, facts


def test_policy_fit_follows_the_default_rules():
    eu, _ = fit("SE")
    assert eu == {
        "secret": "masked",
        "pii": "allowed",
        "proprietary": "refused: proprietary code goes to self-hosted endpoints only",
        "public": "allowed",
    }
    us, _ = fit("US")
    assert us["pii"] == "refused: personal data may not go to US" and us["secret"] == "masked"
    assert fit("DE", dpa=False)[0]["pii"] == "refused: personal data needs a data processing agreement"
    assert fit("NO")[0]["pii"] == "allowed"  # EEA
    own, _ = fit("self", dpa=False)
    assert set(own.values()) == {"masked", "allowed"}
    for trains in (True, None):  # a trainer, or one that may train, gets public content only
        verdicts, _ = fit("FR", trains=trains)
        assert verdicts["public"] == "allowed"
        assert all(
            verdicts[c].startswith("refused: ") and "train" in verdicts[c] for c in ("secret", "pii", "proprietary")
        )
    for unknown in (None, "Atlantis"):
        verdicts = fit(unknown)[0].values()
        assert all(v.startswith("refused: jurisdiction ") and " is unknown" in v for v in verdicts)


def exposed(jurisdiction, **kw) -> str:
    verdicts, facts = fit(jurisdiction, **kw)
    return exposure(facts, verdicts)


def test_exposure_says_what_leaves():
    assert exposed("SE", retention=30) == (
        "secrets: masked (placeholders only); PII: sent in clear, kept up to 30 days"
    )
    assert exposed("self", retention=0).endswith("PII: sent in clear, not kept")
    assert exposed("US") == "secrets: masked (placeholders only); PII: never sent"
    assert exposed("CN", trains=None) == "secrets: never sent; PII: never sent"
    assert exposed(None) == "nothing is sent"
