"""What the report knows besides the audit: the configured endpoints with their catalog facts, the
measures the configuration puts in force, and the checklist answers. The CLI and the console fill
it from the configuration (this package does not read configuration files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from egress.checklist.providers import Checklist
from egress.core.endpoint import Endpoint
from egress.route.provider_catalog import ProviderCatalog


@dataclass(frozen=True, slots=True)
class EndpointFacts:
    """One recipient as the catalog and configuration describe it; None: not known."""

    name: str
    operator: str | None
    operator_jurisdiction: str | None
    jurisdiction: str | None
    region: str | None
    catalog_id: str | None
    dpa: bool | None
    retention_days: int | None
    trains_on_api_data: bool | None
    zero_data_retention: bool | None  # in effect for this organisation (the endpoint's own statement)
    government_access: tuple[str, ...]
    transfer_safeguard: str | None  # from the catalog entry
    source: str | None

    @classmethod
    def of(cls, endpoint: Endpoint, catalog: ProviderCatalog) -> EndpointFacts:
        entry = catalog.get(endpoint.catalog) if endpoint.catalog else None
        return cls(
            name=endpoint.name,
            operator=endpoint.operator,
            operator_jurisdiction=endpoint.operator_jurisdiction,
            jurisdiction=endpoint.jurisdiction,
            region=endpoint.region,
            catalog_id=endpoint.catalog,
            dpa=endpoint.dpa,
            retention_days=endpoint.retention_days,
            trains_on_api_data=endpoint.trains_on_api_data,
            zero_data_retention=endpoint.zero_data_retention,
            government_access=tuple(endpoint.government_access),
            transfer_safeguard=entry.transfer_safeguard if entry else None,
            source=endpoint.source,
        )

    @classmethod
    def unknown(cls, name: str, jurisdiction: str | None) -> EndpointFacts:
        """An endpoint in the audit that the configuration no longer has."""
        return cls(name, None, None, jurisdiction, None, None, None, None, None, None, (), None, None)


@dataclass(frozen=True, slots=True)
class ReportContext:
    endpoints: Mapping[str, EndpointFacts]
    home_jurisdictions: tuple[str, ...]
    measures: tuple[str, ...]  # technical and organisational measures in force
    checklists: Mapping[str, Checklist] = field(default_factory=dict)
    catalog_version: str = ""
    generated_by: str = "egress report"

    @classmethod
    def of(
        cls,
        endpoints: Sequence[Endpoint],
        catalog: ProviderCatalog,
        home_jurisdictions: Sequence[str],
        measures: Sequence[str],
        checklists: Mapping[str, Checklist] | None = None,
    ) -> ReportContext:
        return cls(
            endpoints={e.name: EndpointFacts.of(e, catalog) for e in endpoints},
            home_jurisdictions=tuple(home_jurisdictions),
            measures=tuple(measures),
            checklists=dict(checklists or {}),
            catalog_version=catalog.version,
        )

    def facts(self, name: str, jurisdiction: str | None) -> EndpointFacts:
        return self.endpoints.get(name) or EndpointFacts.unknown(name, jurisdiction)
