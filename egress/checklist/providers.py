"""The checklist's answers for each catalog entry and configured endpoint: where inference runs,
whether it can be pinned there, training, retention, the laws under which the operator can be
compelled, which data classes the policy lets go there, and what that exposes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from egress.core.endpoint import Endpoint
from egress.core.exchange import Action
from egress.policy.decide import INPUT_VERSION, PolicyEngine
from egress.route.provider_catalog import CatalogEntry, ProviderCatalog

DATA_CLASSES = ("secret", "pii", "proprietary", "public")
ALLOWED = "allowed"
MASKED = "masked"


class Facts(BaseModel):
    """What the policy weighs about a destination, from a catalog entry or a configured endpoint."""

    model_config = ConfigDict(frozen=True)

    jurisdiction: str | None
    dpa: bool | None
    trains_on_api_data: bool | None
    retention_days: int | None

    @classmethod
    def of(cls, item: CatalogEntry | Endpoint) -> Facts:
        return cls(
            jurisdiction=item.jurisdiction,
            dpa=item.dpa,
            trains_on_api_data=item.trains_on_api_data,
            retention_days=item.retention_days,
        )


# The request each data class stands for when the policy is asked about a destination.
_PROBES: dict[str, tuple[dict[str, int], list[str]]] = {
    "secret": ({"secret": 1}, []),
    "pii": ({"pii": 1}, []),
    "proprietary": ({}, ["proprietary"]),
    "public": ({}, ["public"]),
}
_PROBE = "destination"


def probe_document(facts: Facts, data_class: str) -> dict[str, Any]:
    """A policy input with one candidate, these facts, carrying one data class. Unknown facts go
    as null, so the policy weighs them as it would a real endpoint's missing facts."""
    kinds, classifications = _PROBES[data_class]
    return {
        "version": INPUT_VERSION,
        "request": {"api": "anthropic.messages", "model": "probe", "stream": True, "client": None, "session_id": None},
        "subject": {"user": None, "team": None},
        "findings": {"total": sum(kinds.values()), "kinds": kinds, "severities": {}, "rules": {}},
        "classifications": classifications,
        "candidates": [
            {
                "name": _PROBE,
                "jurisdiction": facts.jurisdiction,
                "dpa": facts.dpa,
                "trains_on_api_data": facts.trains_on_api_data,
                "retention_days": facts.retention_days,
                "self_hosted": facts.jurisdiction == "self",
                "translated": False,
            }
        ],
    }


def verdict(answer: Any, data_class: str) -> str:
    """ "allowed", "masked" (it goes, with values of that kind replaced by placeholders), or
    "refused: <the policy's reasons>"."""
    if not isinstance(answer, dict):
        return "refused: the policy gave no decision"
    allowed = _PROBE in (answer.get("endpoints") or []) and answer.get("action") not in (Action.BLOCK, Action.REQUIRE_APPROVAL)
    if allowed:
        return MASKED if data_class in (answer.get("mask") or []) else ALLOWED
    prefix = f"{_PROBE}: "
    reasons = [r.removeprefix(prefix) for r in answer.get("reasons") or [] if r.startswith(prefix)]
    return "refused: " + ("; ".join(reasons) or str(answer.get("action", "no endpoint allowed")))


async def policy_fits(engine: PolicyEngine, facts: list[Facts]) -> list[dict[str, str]]:
    """For each destination and data class, what `engine` decides. The caller owns (and closes) it."""
    return [{c: verdict(await engine.evaluate(probe_document(item, c)), c) for c in DATA_CLASSES} for item in facts]


def exposure(facts: Facts, fit: dict[str, str]) -> str:
    """What a request the policy lets through would expose at this destination."""
    if fit["public"] != ALLOWED:
        return "nothing is sent"
    secrets = "secrets: masked (placeholders only)" if fit["secret"] == MASKED else "secrets: never sent"
    if fit["pii"] == MASKED:
        return f"{secrets}; PII: masked (placeholders only)"
    if fit["pii"] != ALLOWED:
        return f"{secrets}; PII: never sent"
    kept = "kept for an unknown time" if facts.retention_days is None else f"kept up to {facts.retention_days} days"
    return f"{secrets}; PII: sent in clear, {'not kept' if facts.retention_days == 0 else kept}"


class Checklist(BaseModel):
    """The pre-procurement checklist's answers for one destination; None means unknown."""

    model_config = ConfigDict(frozen=True)

    default_inference_location: str | None
    region_pinning: bool | None
    trains_on_api_data: bool | None
    retention_days: int | None
    zero_data_retention_offered: bool | None
    zero_data_retention_in_effect: bool | None  # an endpoint's own statement; None for catalog entries
    # Where the data is processed, and whose law the operator answers to wherever that is.
    jurisdiction: str | None
    operator_jurisdiction: str | None
    government_access: tuple[str, ...]
    policy_fit: dict[str, str]
    exposure: str


def checklist(
    item: CatalogEntry | Endpoint, zdr_offered: bool | None, zdr_in_effect: bool | None, fit: dict[str, str]
) -> Checklist:
    facts = Facts.of(item)
    return Checklist(
        default_inference_location=item.default_inference_location,
        region_pinning=item.region_pinning,
        trains_on_api_data=item.trains_on_api_data,
        retention_days=item.retention_days,
        zero_data_retention_offered=zdr_offered,
        zero_data_retention_in_effect=zdr_in_effect,
        jurisdiction=item.jurisdiction,
        operator_jurisdiction=item.operator_jurisdiction,
        government_access=item.government_access,
        policy_fit=fit,
        exposure=exposure(facts, fit),
    )


class CatalogReport(BaseModel):
    id: str
    origin: str
    checklist: Checklist
    entry: CatalogEntry


class EndpointReport(BaseModel):
    name: str
    checklist: Checklist
    endpoint: Endpoint  # credentials show their source (env name or passthrough), never a key


class ProvidersReport(BaseModel):
    catalog_version: str
    catalog: tuple[CatalogReport, ...]
    endpoints: tuple[EndpointReport, ...]


def catalog_report(catalog: ProviderCatalog, entry: CatalogEntry, fit: dict[str, str]) -> CatalogReport:
    return CatalogReport(
        id=entry.id,
        origin=catalog.origin(entry.id),
        checklist=checklist(entry, entry.zero_data_retention, None, fit),
        entry=entry,
    )


def endpoint_report(catalog: ProviderCatalog, endpoint: Endpoint, fit: dict[str, str]) -> EndpointReport:
    entry = catalog.get(endpoint.catalog) if endpoint.catalog else None
    offered = entry.zero_data_retention if entry else None
    return EndpointReport(
        name=endpoint.name, checklist=checklist(endpoint, offered, endpoint.zero_data_retention, fit), endpoint=endpoint
    )


def destinations(catalog: ProviderCatalog, endpoints: Sequence[Endpoint]) -> list[Facts]:
    """What the policy is asked about: the catalog's entries, then the configured endpoints."""
    return [Facts.of(e) for e in catalog.entries] + [Facts.of(e) for e in endpoints]


def build_report(
    catalog: ProviderCatalog, endpoints: Sequence[Endpoint], fits: list[dict[str, str]]
) -> ProvidersReport:
    """The catalog and the endpoints; `fits` are `policy_fits` over `destinations(catalog, endpoints)`."""
    entries = len(catalog.entries)
    return ProvidersReport(
        catalog_version=catalog.version,
        catalog=tuple(catalog_report(catalog, e, f) for e, f in zip(catalog.entries, fits[:entries], strict=True)),
        endpoints=tuple(endpoint_report(catalog, e, f) for e, f in zip(endpoints, fits[entries:], strict=True)),
    )
