"""GDPR Art. 30 record-of-processing draft, from the period's figures and the recipients' facts.
A draft: what the audit shows; the controller completes what it cannot (data subjects, legal
basis)."""

from __future__ import annotations

from dataclasses import dataclass

from egress.report.context import ReportContext
from egress.report.figures import Figures
from egress.report.law import transfer_basis

PURPOSE = (
    "Software development assisted by AI coding agents: prompts with source code and context sent "
    "through the egress gateway to language-model endpoints, inspected, masked, routed and audited."
)
TO_COMPLETE = "to be completed by the controller"


@dataclass(frozen=True, slots=True)
class Recipient:
    endpoint: str
    operator: str | None
    operator_jurisdiction: str | None
    jurisdiction: str | None
    dpa: bool | None
    requests: int


@dataclass(frozen=True, slots=True)
class Transfer:
    endpoint: str
    jurisdiction: str | None
    third_country: bool
    safeguard: str


@dataclass(frozen=True, slots=True)
class Retention:
    endpoint: str
    retention_days: int | None
    zero_data_retention: bool | None


@dataclass(frozen=True, slots=True)
class Art30Record:
    purposes: tuple[str, ...]
    teams: tuple[str, ...]
    data_subjects: str
    legal_basis: str
    personal_data: dict[str, int]  # findings by personal-data detector
    data_kinds: dict[str, int]  # requests by finding kind
    recipients: tuple[Recipient, ...]
    transfers: tuple[Transfer, ...]
    retention: tuple[Retention, ...]
    measures: tuple[str, ...]


def art30(figures: Figures, context: ReportContext) -> Art30Record:
    recipients, transfers, retention = [], [], []
    for use in figures.endpoints:
        f = context.facts(use.name, use.jurisdiction)
        recipients.append(
            Recipient(use.name, f.operator, f.operator_jurisdiction, use.jurisdiction, f.dpa, use.requests)
        )
        third, safeguard = transfer_basis(use.jurisdiction, f.transfer_safeguard)
        transfers.append(Transfer(use.name, use.jurisdiction, third, safeguard))
        retention.append(Retention(use.name, f.retention_days, f.zero_data_retention))
    return Art30Record(
        purposes=(PURPOSE,),
        teams=tuple(sorted({row.team for row in figures.flows})),
        data_subjects=TO_COMPLETE,
        legal_basis=TO_COMPLETE,
        personal_data=figures.personal_data,
        data_kinds=figures.kinds,
        recipients=tuple(recipients),
        transfers=tuple(transfers),
        retention=tuple(retention),
        measures=context.measures,
    )
