"""Government-access law per destination jurisdiction, and the transfer rules the report applies.

The laws come first from the catalog (each endpoint's `government_access`: the laws under which
its operator can be compelled, its home law included wherever the region is), then from this
table of each jurisdiction's own law. EU/EEA membership and the European Commission's adequacy
decisions (GDPR Art. 45) decide whether a destination is a third-country transfer needing a
safeguard (Art. 46)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from egress.report.context import ReportContext
from egress.report.figures import Figures

EU_MEMBERS = frozenset("AT BE BG HR CY CZ DK EE FI FR DE GR IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split())
EEA = EU_MEMBERS | {"IS", "LI", "NO", "EU"}
# Countries with an adequacy decision of the European Commission (GDPR Art. 45). The United States
# only for organisations certified under the EU-US Data Privacy Framework (Decision 2023/1795), so
# not listed here: a US destination needs its safeguard on record.
ADEQUACY = frozenset("AD AR CA CH FO GB GG IL IM JE JP KR NZ UY".split())
SELF_HOSTED = "self"

# Each jurisdiction's own law on access to data held or processed there.
LOCAL_LAW: dict[str, tuple[str, ...]] = {
    "US": (
        "US CLOUD Act (18 U.S.C. 2713)",
        "FISA Section 702 (50 U.S.C. 1881a)",
        "Executive Order 12333",
    ),
    "CN": (
        "PRC Personal Information Protection Law (PIPL)",
        "PRC Data Security Law (DSL)",
        "PRC Cybersecurity Law (CSL)",
        "PRC National Intelligence Law (Art. 7)",
    ),
    "EU": (
        "GDPR (Regulation (EU) 2016/679)",
        "Law Enforcement Directive (EU) 2016/680 and member-state law on criminal procedure and intelligence",
    ),
    "GB": ("UK GDPR and Data Protection Act 2018", "Investigatory Powers Act 2016"),
    "JP": ("Act on the Protection of Personal Information (APPI)", "Code of Criminal Procedure (Japan)"),
    "AU": (
        "Privacy Act 1988 (Cth)",
        "Telecommunications (Interception and Access) Act 1979",
        "Telecommunications and Other Legislation Amendment (Assistance and Access) Act 2018",
    ),
    SELF_HOSTED: ("the organisation's own jurisdiction: no third-party operator",),
}


def local_law(jurisdiction: str) -> tuple[str, ...]:
    if jurisdiction in LOCAL_LAW:
        return LOCAL_LAW[jurisdiction]
    if jurisdiction in EU_MEMBERS:
        return (*LOCAL_LAW["EU"], f"{jurisdiction} national law on law enforcement and intelligence access")
    return ()


def in_eea(jurisdiction: str | None) -> bool:
    return jurisdiction in EEA


def transfer_basis(jurisdiction: str | None, safeguard: str | None) -> tuple[bool, str]:
    """(a third-country transfer, its safeguard): EEA and self-hosted are no transfer."""
    if jurisdiction is None:
        return True, "unknown destination: no safeguard can be on record"
    if jurisdiction == SELF_HOSTED or in_eea(jurisdiction):
        return False, "no transfer (EU/EEA or self-hosted)"
    if jurisdiction in ADEQUACY:
        return True, f"adequacy decision of the European Commission for {jurisdiction} (GDPR Art. 45)"
    return True, safeguard or "none on record"


@dataclass(frozen=True, slots=True)
class JurisdictionLaw:
    jurisdiction: str
    endpoints: tuple[str, ...]
    operator_law: tuple[str, ...]  # from the catalog: the operators' government_access
    local_law: tuple[str, ...]


def government_access(figures: Figures, context: ReportContext) -> tuple[JurisdictionLaw, ...]:
    """Per destination jurisdiction the period's requests went to."""
    by_jurisdiction: dict[str, list[str]] = {}
    for use in figures.endpoints:
        by_jurisdiction.setdefault(use.jurisdiction, []).append(use.name)
    out = []
    for jurisdiction, names in sorted(by_jurisdiction.items()):
        laws = _unique(law for n in names for law in context.facts(n, jurisdiction).government_access)
        out.append(JurisdictionLaw(jurisdiction, tuple(sorted(names)), laws, local_law(jurisdiction)))
    return tuple(out)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))
