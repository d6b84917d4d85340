"""The catalog's UK, Japan and Australia regions, Azure UK South, the managed open-model providers,
the operator's own jurisdiction beside the region's, and the Bedrock inference profiles'
geographies; `egress providers` answers the checklist for each."""

from __future__ import annotations

import importlib.resources
import json

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from egress.cli.main import main
from egress.core.endpoint import Endpoint
from egress.policy.decide import RequestFacts, policy_input
from egress.route.provider_catalog import CatalogEntry, instantiate, parse_catalog, profile_jurisdictions

US_LAW = {"US CLOUD Act (18 U.S.C. 2713)", "FISA Section 702 (50 U.S.C. 1881a)"}
# id -> (where the data is processed, the operator's own jurisdiction)
NEW = {
    "aws-bedrock-eu-west-2": ("GB", "US"),
    "aws-bedrock-ap-northeast-1": ("JP", "US"),
    "aws-bedrock-ap-southeast-2": ("AU", "US"),
    "google-vertex-claude-europe-west2": ("GB", "US"),
    "google-vertex-claude-asia-northeast1": ("JP", "US"),
    "google-vertex-claude-australia-southeast1": ("AU", "US"),
    "azure-openai-uksouth": ("GB", "US"),
    "mistral": ("FR", "FR"),
    "fireworks-dedicated-us": ("US", "US"),
    "fireworks-dedicated-eu-frankfurt": ("DE", "US"),
    "fireworks-dedicated-ap-tokyo": ("JP", "US"),
    "nebius-dedicated-eu-north1": ("FI", "NL"),
    "nebius-dedicated-us-central1": ("US", "NL"),
}


def raw() -> dict:
    return yaml.safe_load((importlib.resources.files("egress") / "defaults" / "catalog.yaml").read_text())


def entries() -> dict[str, CatalogEntry]:
    return {e.id: e for e in parse_catalog(raw()).entries}


def test_the_new_regions_are_present_with_both_jurisdictions() -> None:
    found = entries()
    assert {i: (found[i].jurisdiction, found[i].operator_jurisdiction) for i in NEW} == NEW
    for i in NEW:
        assert found[i].source.startswith("https://") and found[i].as_of >= "2026-11-26", i


def test_every_bundled_entry_names_its_operators_jurisdiction_and_a_us_operator_keeps_us_law() -> None:
    for entry in entries().values():
        assert entry.operator_jurisdiction is not None, entry.id
        if entry.operator_jurisdiction == "US":
            # Whatever the region (GB, JP, AU, DE, EU…), the operator answers to US law.
            assert US_LAW <= set(entry.government_access), entry.id
        if entry.operator_jurisdiction != entry.jurisdiction and entry.jurisdiction != "self":
            # The region's own law is listed too where the entry knows the region.
            assert len(entry.government_access) >= 2 or entry.operator_jurisdiction is None, entry.id


def test_the_managed_open_model_entries_serve_glm_and_kimi_as_open_weights() -> None:
    found = entries()
    for i in ("fireworks-dedicated-us", "fireworks-dedicated-eu-frankfurt", "fireworks-dedicated-ap-tokyo"):
        models = " ".join(found[i].models).lower()
        assert "kimi" in models and "glm" in models and found[i].open_weights, i
        assert found[i].notes["general"], i  # what is pinned and what is not verified is said
    for i in ("nebius-dedicated-eu-north1", "nebius-dedicated-us-central1"):
        assert "Unsure" in found[i].notes["general"], i  # regions from a third-party page


def entry(**changes: object) -> dict:
    base = {e["id"]: e for e in raw()["entries"]}["aws-bedrock-ap-northeast-1"]
    return {**base, **changes}


def test_a_us_operator_without_us_law_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"operator_jurisdiction US keeps \['CLOUD Act', 'FISA Section 702'\]"):
        CatalogEntry.model_validate(entry(government_access=["Japanese law where the data is processed"]))
    with pytest.raises(ValidationError, match=r"keeps \['PRC National Intelligence Law'\]"):
        CatalogEntry.model_validate(entry(operator_jurisdiction="CN"))
    with pytest.raises(ValidationError, match="ISO 3166"):
        CatalogEntry.model_validate(entry(operator_jurisdiction="USA"))


@pytest.mark.parametrize(
    ("model_id", "where"),
    [
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", {"EU"}),
        ("jp.anthropic.claude-sonnet-4-5-20250929-v1:0", {"JP"}),
        ("au.anthropic.claude-sonnet-4-5-20250929-v1:0", {"AU"}),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", {"US"}),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", {"*"}),
        (
            "arn:aws:bedrock:ap-northeast-1:123456789012:inference-profile/jp.anthropic.claude-haiku-4-5-20251001-v1:0",
            {"JP"},
        ),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", set()),  # a base id: its Region only
    ],
)
def test_profile_jurisdictions(model_id: str, where: set[str]) -> None:
    assert profile_jurisdictions(model_id) == where


def test_apac_profiles_span_several_jurisdictions() -> None:
    assert {"JP", "AU"} <= profile_jurisdictions("apac.anthropic.claude-sonnet-4-20250514-v1:0")


def test_an_entry_listing_a_profile_of_another_geography_is_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"inference profile served in \['EU'\], not only in this entry's jurisdiction JP"
    ):
        CatalogEntry.model_validate(entry(models=["eu.anthropic.claude-*"]))
    with pytest.raises(ValidationError, match="apac"):
        CatalogEntry.model_validate(entry(models=["apac.anthropic.claude-*"]))


def test_an_endpoint_takes_the_operator_jurisdiction_and_the_policy_sees_both() -> None:
    tokyo = entries()["aws-bedrock-ap-northeast-1"]
    endpoint = Endpoint.model_validate(
        instantiate(
            tokyo,
            {
                "name": "claude-jp",
                "credentials": {"env": "AWS_BEARER_TOKEN_BEDROCK"},
                "retention_days": 0,
                "model_map": {"claude-sonnet-4-5": "jp.anthropic.claude-sonnet-4-5-20250929-v1:0"},
            },
        )
    )
    assert (endpoint.jurisdiction, endpoint.operator_jurisdiction) == ("JP", "US")
    facts = RequestFacts("anthropic.messages", "claude-sonnet-4-5", False, "u", None, None, None)
    candidate = policy_input(facts, (), (endpoint,))["candidates"][0]
    assert (candidate["jurisdiction"], candidate["operator_jurisdiction"]) == ("JP", "US")


def providers(*args: str) -> str:
    result = CliRunner().invoke(main, ["providers", *args], env={"COLUMNS": "250", "HOME": "/nonexistent"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_egress_providers_answers_the_checklist_for_each_new_entry() -> None:
    report = json.loads(providers("--json"))
    by_id = {r["id"]: r for r in report["catalog"]}
    for i, (where, operator) in NEW.items():
        checklist = by_id[i]["checklist"]
        assert (checklist["jurisdiction"], checklist["operator_jurisdiction"]) == (where, operator), i
        assert checklist["default_inference_location"], i
        # Mistral documents EU hosting but no per-request region choice: unknown, said so.
        assert checklist["region_pinning"] is (None if i == "mistral" else True), i
        assert set(checklist["policy_fit"]) == {"secret", "pii", "proprietary", "public"}, i
        assert checklist["exposure"], i
        if operator == "US":
            assert US_LAW <= set(checklist["government_access"]), i
    # Unknown training terms: personal data is not sent there under the default rules.
    assert by_id["fireworks-dedicated-eu-frankfurt"]["checklist"]["policy_fit"]["pii"].startswith("refused")


def test_the_table_shows_the_operators_jurisdiction_when_it_is_not_the_regions() -> None:
    table = providers("--format", "plain")
    rows = {line.split("\t")[0]: line.split("\t") for line in table.splitlines() if "\t" in line}
    assert rows["aws-bedrock-eu-west-2"][2] == "GB · eu-west-2 (operator US)"
    assert rows["nebius-dedicated-eu-north1"][2] == "FI · eu-north1 (operator NL)"
    assert rows["mistral"][2] == "FR · eu"  # an operator at home: nothing to add
    detail = providers("--id", "aws-bedrock-ap-southeast-2", "--format", "plain")
    assert "operator_jurisdiction\tUS" in detail and "au.anthropic.claude-*" in detail
