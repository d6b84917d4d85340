"""Legal requirement ids: which the policy's reasons cite, and which each report section serves.

A data table, not logic: a reason (the bundled policy's text after `<endpoint>: `) is matched to
a reason code by the first pattern it contains, and a code to the requirement ids it cites. An
id names the instrument and article (`GDPR_ART_44`: GDPR Article 44; `EU_2016_943_ART_2`: the
Trade Secrets Directive, Article 2). A reason that matches no pattern gets code `OTHER` and no id.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReasonCode:
    code: str
    pattern: str  # a substring of the reason's text
    requirements: tuple[str, ...]
    meaning: str


REASON_CODES: tuple[ReasonCode, ...] = (
    ReasonCode("JURISDICTION_UNKNOWN", "is unknown", ("GDPR_ART_44",), "the destination's jurisdiction is unknown"),
    ReasonCode(
        "TRAINS_ON_DATA", "trains on API data", ("GDPR_ART_5_1_B", "GDPR_ART_28"), "the operator trains on API data"
    ),
    ReasonCode("CREDENTIAL_PLAN", "-plan credential", ("GDPR_ART_28",), "a consumer-plan credential"),
    ReasonCode(
        "PII_JURISDICTION",
        "personal data may not go to",
        ("GDPR_ART_44", "GDPR_ART_45", "GDPR_ART_46"),
        "personal data may not be transferred to that jurisdiction",
    ),
    ReasonCode(
        "PII_NEEDS_DPA",
        "personal data needs a data processing agreement",
        ("GDPR_ART_28", "GDPR_ART_46"),
        "personal data needs a processor agreement",
    ),
    ReasonCode(
        "PROPRIETARY_SELF_HOSTED",
        "proprietary code goes to self-hosted",
        ("EU_2016_943_ART_2",),
        "proprietary code stays in-house",
    ),
    ReasonCode(
        "PIPELINE_SELF_HOSTED", "service account (pipeline)", ("EU_2016_943_ART_2",), "pipeline code stays in-house"
    ),
    ReasonCode(
        "NO_COMPLIANT_ENDPOINT", "no candidate endpoint is compliant", ("GDPR_ART_25",), "no compliant destination"
    ),
    ReasonCode("MASKING", "masking ", ("GDPR_ART_25", "GDPR_ART_32"), "values masked before leaving"),
    ReasonCode("APPROVAL", "requires approval", ("GDPR_ART_32",), "held for a human approver"),
)
OTHER = ReasonCode("OTHER", "", (), "a reason without a requirement on record")
_BY_CODE = {r.code: r for r in (*REASON_CODES, OTHER)}

# What each section of the pack serves.
SECTION_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "data_flow": ("GDPR_ART_30", "GDPR_ART_44"),
    "art30": ("GDPR_ART_30",),
    "transfers": ("GDPR_ART_44", "GDPR_ART_45", "GDPR_ART_46"),
    "measures": ("GDPR_ART_25", "GDPR_ART_32"),
    "dpia": ("GDPR_ART_35",),
    "government_access": ("GDPR_ART_44", "GDPR_ART_48"),
    "checklists": ("GDPR_ART_28",),
    "policy": ("GDPR_ART_5_2", "GDPR_ART_25"),
    "evidence": ("GDPR_ART_5_2", "GDPR_ART_30"),
}


def reason_code(reason: str) -> ReasonCode:
    return next((r for r in REASON_CODES if r.pattern in reason), OTHER)


def by_code(code: str) -> ReasonCode:
    return _BY_CODE.get(code, OTHER)
