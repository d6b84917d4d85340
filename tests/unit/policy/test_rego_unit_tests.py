"""The bundled policy's own Rego unit tests pass, and they catch a broken rule."""

from __future__ import annotations

from egress.policy.rego import RegoSource
from egress.policy.testing import WITH_HINT, Verdict, discover, run_isolated


def test_bundled_rego_tests_pass_and_cover_every_rule():
    source = RegoSource.bundled()
    results = run_isolated(source, {"mask_kinds": ["secret"]})
    assert len(results) == len(discover(source)) >= 28
    assert [r for r in results if r.verdict is not Verdict.PASS] == []
    policy = source.modules[0][1]
    tests = source.tests[0][1]
    for rule in ("refuse_jurisdiction", "refuse_training", "refuse_pii_jurisdiction", "refuse_pii_dpa"):
        assert f"{rule}(" in policy
    for behaviour in ("test_rule_jurisdiction", "test_rule_training", "test_rule_pii_dpa", "test_proprietary_by_rule"):
        assert behaviour in tests


def test_a_broken_rule_fails_its_tests():
    source = RegoSource.bundled()
    name, text = source.modules[0]
    # Mutant: personal data may go anywhere (the jurisdiction rule never fires).
    mutant = text.replace('not c.jurisdiction in s.pii_jurisdictions', 'c.jurisdiction == "nowhere"')
    assert mutant != text
    results = run_isolated(RegoSource(((name, mutant),), source.tests), {})
    failed = {r.name for r in results if r.verdict is not Verdict.PASS}
    assert "test_pii_rerouted_away_from_us" in failed and "test_pii_with_only_us_is_blocked" in failed


def test_an_engine_crash_is_one_failed_test_with_a_hint():
    source = RegoSource.bundled()
    crashing = (
        "x_test.rego",
        "package x\nimport rego.v1\nimport data.egress\n"
        'test_overrides_input if {\n\td := egress.decision with input as {"candidates": []}\n\td.action == "block"\n}\n',
    )
    results = run_isolated(RegoSource(source.modules, (crashing,)), {})
    (result,) = results
    assert result.verdict is Verdict.ERROR and "stopped on this test" in result.detail and WITH_HINT in result.detail
