"""Which terms a provider credential falls under (egress.identity.plans classifies it).

A pass-through credential is the client's own: the same provider's API key and a person's
subscription sign-in reach the same host, under different terms (API terms: no training,
bounded retention, a DPA; consumer terms: data may be used for training, no DPA).

Invariant: a class is a label and facts, never the credential or any part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Plan(StrEnum):
    API = "api"
    CONSUMER = "consumer"
    ENTERPRISE = "enterprise"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """The terms of one provider's plan, from the catalog (`plans:` in catalog.yaml)."""

    trains_on_data: bool | None
    retention_days: int | None
    dpa: bool | None
    source: str


@dataclass(frozen=True, slots=True)
class CredentialClass:
    """What the client sent: whose credential format (`type`, e.g. `anthropic_oauth`), for which
    provider, under which plan, with that plan's facts when the catalog has them."""

    plan: Plan
    type: str
    provider: str | None
    facts: PlanFacts | None = None
