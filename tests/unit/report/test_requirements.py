"""Reason codes and requirement ids: every refusal and summary reason the bundled policy can give
maps to a code with requirement ids (a new rule in the bundle fails here until the table names
it); and the flow rule never counts a masked finding as having left in clear (property test)."""

from __future__ import annotations

import re
from importlib.resources import files

from hypothesis import given
from hypothesis import strategies as st

from egress.core.audit_record import AuditRecord, Decision, Findings, Masked, MaskedValue
from egress.report.flows import Column, classify
from egress.report.requirements import OTHER, reason_code

# What the bundled policy writes, one example per rule (egress/policy/bundle/egress.rego).
EXAMPLES = {
    "openai: jurisdiction (missing) is unknown": "JURISDICTION_UNKNOWN",
    "openai: trains on API data and the request is not public": "TRAINS_ON_DATA",
    "openai: the request carries a consumer-plan credential (oauth)": "CREDENTIAL_PLAN",
    "openai: personal data may not go to US": "PII_JURISDICTION",
    "openai: personal data needs a data processing agreement": "PII_NEEDS_DPA",
    "openai: proprietary code goes to self-hosted endpoints only": "PROPRIETARY_SELF_HOSTED",
    "openai: a service account (pipeline) sends code to self-hosted endpoints only": "PIPELINE_SELF_HOSTED",
    "no candidate endpoint is compliant for this request": "NO_COMPLIANT_ENDPOINT",
    "masking pii, secret": "MASKING",
    "a finding requires approval before the request may leave": "APPROVAL",
}


def test_every_bundled_reason_has_a_code_and_requirements() -> None:
    for reason, code in EXAMPLES.items():
        found = reason_code(reason)
        assert found.code == code and found.requirements, reason
    assert reason_code("something new") is OTHER


def test_the_examples_cover_every_rule_of_the_bundle() -> None:
    rego = (files("egress") / "policy" / "bundle" / "egress.rego").read_text()
    fragments = re.findall(r'c\.name, ": ([^"]+)"', rego)
    assert len(fragments) >= 7
    for fragment in fragments:
        assert any(fragment in example for example in EXAMPLES), f"no reason code covers {fragment!r}"


KINDS = st.sampled_from(["secret", "pii", "internal", "proprietary_code", "sensitive_file"])


@given(
    kinds=st.sets(KINDS, max_size=4),
    masked=st.sets(KINDS, max_size=4),
    endpoint=st.sampled_from([None, "anthropic", "vllm"]),
    outcome=st.sampled_from(["forwarded", "refused", "failed", "cancelled"]),
    action=st.sampled_from(["allow", "mask", "block", "reroute"]),
)
def test_a_masked_finding_never_counts_as_clear(kinds, masked, endpoint, outcome, action) -> None:
    record = AuditRecord(
        v=3,
        request_id="r",
        ts=1.0,
        outcome=outcome,
        endpoint=endpoint,
        jurisdiction="self" if endpoint == "vllm" else "US" if endpoint else None,
        findings=Findings(kinds=dict.fromkeys(kinds, 1), total=len(kinds)),
        masked=Masked(values=tuple(MaskedValue(hash="h", kind=k, occurrences=1, rule="r") for k in masked)),
        decision=Decision(id="d", action=action),
    )
    columns = dict(classify(record))
    assert set(columns) == (kinds or {"none"})  # each data class once
    for kind, column in columns.items():
        if kind in masked:
            assert column is not Column.CLEAR
        if endpoint is None or outcome == "refused" or action == "block":
            assert column is Column.BLOCKED
        elif endpoint == "vllm":
            assert column is Column.IN_HOUSE
