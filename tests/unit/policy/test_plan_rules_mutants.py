"""The bundled policy's own tests of the credential-plan and pipeline rules catch a broken rule."""

from __future__ import annotations

from egress.policy.rego import RegoSource
from egress.policy.testing import Verdict, run_isolated


def failures_of(old: str, new: str) -> set[str]:
    source = RegoSource.bundled()
    name, text = source.modules[0]
    mutant = text.replace(old, new)
    assert mutant != text, f"the policy no longer contains {old!r}"
    results = run_isolated(RegoSource(((name, mutant),), source.tests), {"mask_kinds": ["secret"]})
    return {r.name for r in results if r.verdict is not Verdict.PASS}


def test_the_plan_rule_switched_off_fails_its_tests() -> None:
    failed = failures_of("\tplan_of(req) in s.public_only_plans\n", "\tfalse\n")
    assert {"test_consumer_plan_unclassified_request_only_on_the_organisations_key",
            "test_consumer_plan_proprietary_request_blocked", "test_public_only_plans_is_data"} <= failed  # fmt: skip


def test_the_plan_rule_ignoring_public_fails_its_tests() -> None:
    failed = failures_of(
        "\tplan_of(req) in s.public_only_plans\n\tnot public(req)\n", "\tplan_of(req) in s.public_only_plans\n"
    )
    assert "test_consumer_plan_public_request_leaves" in failed


def test_the_plan_rule_ignoring_passthrough_fails_its_tests() -> None:
    failed = failures_of("\tnot c.passthrough == false\n}\n\n# A service account", "}\n\n# A service account")
    assert "test_consumer_plan_unclassified_request_only_on_the_organisations_key" in failed


def test_the_pipeline_rule_for_everyone_fails_its_tests() -> None:
    failed = failures_of('\tcaller_kind(req) == "service_account"\n', "")
    assert "test_person_with_little_code_goes_to_cloud" in failed
