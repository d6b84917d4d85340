"""The provider catalog: what is known about each provider offering, where it comes from, and how a
configured endpoint is made from an entry.

Pure functions over parsed YAML. `egress.config` reads the files (the bundled
`egress/defaults/catalog.yaml` and the configuration's own `catalog:` list) and turns the
problems raised here into errors that name the file and line.

A fact an entry does not know is `null` with a note saying so, never a guess: an endpoint made
from such an entry must state that fact itself (`instantiate` refuses otherwise).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from egress.core.endpoint import WireApi
from egress.route.clouds.profiles import geography
from egress.route.tool_hosts import PublishedRange, ToolHost

_ID = r"^[a-z0-9][a-z0-9._-]*$"
_JURISDICTION = re.compile(r"^(?:[A-Z]{2}|EU|self)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# A parameter fills one label of a host or path; it can never add a scheme, host, port separator,
# path, query or fragment, so a catalog entry's URL keeps the shape its facts were written for.
_PARAM_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Facts an entry may leave unknown (null, with a note). The catalog never guesses them.
NULLABLE_FACTS = (
    "jurisdiction",
    "region",
    "default_inference_location",
    "region_pinning",
    "retention_days",
    "trains_on_api_data",
    "dpa",
    "zero_data_retention",
)
# The laws an operator of a jurisdiction answers to wherever its region is: an entry whose
# operator is from there lists each (a substring of one of its `government_access` items). A US
# operator's UK, EU, JP or AU region still lists the CLOUD Act and FISA Section 702.
OPERATOR_LAW: dict[str, tuple[str, ...]] = {
    "US": ("CLOUD Act", "FISA Section 702"),
    "CN": ("PRC National Intelligence Law",),
}
# Facts an endpoint must have (core.endpoint.Endpoint requires them).
_REQUIRED_BY_ENDPOINT = ("jurisdiction", "region", "retention_days", "trains_on_api_data", "dpa")
# What an endpoint takes over from its entry. Not `zero_data_retention`: in the catalog it says
# that a ZDR option is offered; on an endpoint it says that ZDR is in effect, which only the
# organisation's own contract can tell.
_ENDPOINT_FACTS = (
    "operator",
    "api",
    "models",
    "jurisdiction",
    "region",
    "default_inference_location",
    "region_pinning",
    "retention_days",
    "trains_on_api_data",
    "dpa",
    "certifications",
    "open_weights",
    "government_access",
    "operator_jurisdiction",
    "headers",
    "query",
    "source",
    "as_of",
)


class CatalogEntry(BaseModel):
    """One provider offering (an operator's API in one region or data zone), with its sourced facts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID)
    title: str
    operator: str
    api: WireApi
    base_url: str = Field(description="a URL, or a template whose {placeholders} a provider's params fill")
    params: dict[str, str] = Field(default_factory=dict, description="default values for base_url placeholders")
    models: tuple[str, ...] = Field(min_length=1, description="model name patterns (shell globs)")
    jurisdiction: str | None = Field(description="ISO 3166 alpha-2 code, EU, or self, of where the data is processed")
    region: str | None
    default_inference_location: str | None
    region_pinning: bool | None = Field(description="inference can be pinned to the region")
    retention_days: int | None = Field(ge=0, description="longest default retention of prompts and outputs")
    trains_on_api_data: bool | None
    dpa: bool | None = Field(description="a data processing agreement is offered")
    zero_data_retention: bool | None = Field(description="a zero-data-retention option is offered")
    certifications: tuple[str, ...] = ()
    open_weights: bool = False
    government_access: tuple[str, ...] = Field(
        min_length=1, description="laws under which the operator can be compelled"
    )
    operator_jurisdiction: str | None = Field(
        default=None,
        description="ISO 3166 alpha-2 code of the operator's home law (its parent's), apart from where data is processed",
    )
    # The safeguard on record for a transfer to a third country (GDPR Art. 44-46): an adequacy
    # decision, Standard Contractual Clauses in the DPA, …; null: none on record (the report says
    # so). Its source goes in `notes.transfer_safeguard`.
    transfer_safeguard: str | None = Field(default=None, description="GDPR transfer safeguard on record")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    source: str = Field(pattern=r"^https://\S+$", description="the vendor page the facts come from")
    as_of: str = Field(description="YYYY-MM-DD: when the facts were checked against the source")
    notes: dict[str, str] = Field(default_factory=dict, description="per fact (or `general`): caveats, unknowns")

    @field_validator("jurisdiction", "operator_jurisdiction")
    @classmethod
    def _jurisdiction(cls, value: str | None) -> str | None:
        if value is not None and not _JURISDICTION.match(value):
            raise ValueError("must be an ISO 3166 alpha-2 code (e.g. US, FR), EU, self, or null (unknown)")
        return value

    @field_validator("as_of")
    @classmethod
    def _date(cls, value: str) -> str:
        if not _DATE.match(value):
            raise ValueError("must be a date written YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CatalogEntry:
        placeholders = set(PLACEHOLDER.findall(self.base_url))
        if not re.match(r"^https?://[^/\s]+", self.base_url):
            raise ValueError("base_url must be an absolute http:// or https:// URL (placeholders allowed)")
        if unused := sorted(set(self.params) - placeholders):
            raise ValueError(f"params {unused} are not placeholders in base_url")
        if bad := sorted(k for k, v in self.params.items() if not _PARAM_VALUE.match(v)):
            raise ValueError(f"params {bad} must be letters, digits, '.', '_' or '-'")
        if stray := sorted(set(self.notes) - set(type(self).model_fields) - {"general"}):
            raise ValueError(f"notes {stray} name no fact of the entry")
        if unexplained := [f for f in NULLABLE_FACTS if getattr(self, f) is None and f not in self.notes]:
            raise ValueError(f"unknown facts {unexplained} need a note saying why they are unknown")
        laws = " | ".join(self.government_access)
        if missing := [law for law in OPERATOR_LAW.get(self.operator_jurisdiction or "", ()) if law not in laws]:
            raise ValueError(
                f"operator_jurisdiction {self.operator_jurisdiction} keeps {missing} in government_access "
                "whatever the region: the operator answers to its own law"
            )
        if self.jurisdiction is not None and _bedrock(self):
            for pattern in self.models:
                where = profile_jurisdictions(pattern)
                if where and where != {self.jurisdiction}:
                    raise ValueError(
                        f"model {pattern!r} is a cross-Region inference profile served in {sorted(where)}, "
                        f"not only in this entry's jurisdiction {self.jurisdiction}"
                    )
        return self


def _bedrock(entry: CatalogEntry) -> bool:
    """Amazon Bedrock, natively or through its Messages-API endpoint (bedrock-mantle)."""
    return entry.api is WireApi.BEDROCK or ".api.aws/" in entry.base_url or "bedrock" in entry.base_url


def profile_jurisdictions(model_id: str) -> set[str]:
    """Where a Bedrock cross-Region inference profile may serve a request: the jurisdictions of
    its geography (`eu.` -> {"EU"}, `jp.` -> {"JP"}, `au.` -> {"AU"}, `us.` -> {"US"}, `apac.` ->
    several, `global.` -> {"*"}: anywhere). Empty for a base model id, served in its Region only.
    The geographies are egress.route.clouds.profiles' (one table for the catalog and endpoints)."""
    geo = geography(model_id)
    return set(geo.jurisdictions) if geo is not None else set()


class CatalogFile(BaseModel):
    """The shape of `catalog.yaml`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    entries: tuple[CatalogEntry, ...] = Field(min_length=1)
    tool_hosts: tuple[ToolHost, ...] = Field(default=(), description="coding tools' own backends (egress lockdown)")
    published_ranges: tuple[PublishedRange, ...] = Field(default=(), description="vendors' address ranges per host")
    # Credential plans' terms (API, consumer, enterprise): read and checked by egress.identity.plans
    # (route does not import identity, so they are opaque here).
    plans: tuple[dict[str, Any], ...] = Field(default=(), description="credential plans' terms, with sources")
    # Prices per model with source and date: read and checked by egress.limits.prices (spend).
    prices: tuple[dict[str, Any], ...] = Field(default=(), description="prices per model, with sources")


class CatalogError(Exception):
    """A provider entry cannot be made from its catalog entry; `key` is the provider key at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class ProviderCatalog(BaseModel):
    """The bundled entries, with a configuration's additions and overrides applied. Ids are unique."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    entries: tuple[CatalogEntry, ...] = ()
    tool_hosts: tuple[ToolHost, ...] = ()  # coding tools' own backends, for egress lockdown
    published_ranges: tuple[PublishedRange, ...] = ()  # vendors' address ranges per host, for egress lockdown
    prices: tuple[dict[str, Any], ...] = ()  # prices per model (egress.limits.prices checks them)
    overridden: frozenset[str] = frozenset()  # bundled entries whose facts the configuration changed
    added: frozenset[str] = frozenset()  # entries only the configuration has

    @model_validator(mode="after")
    def _unique(self) -> ProviderCatalog:
        ids = [e.id for e in self.entries]
        if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"duplicate catalog ids: {duplicates}")
        return self

    def get(self, entry_id: str) -> CatalogEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def entry_for(self, entry_id: str) -> CatalogEntry:
        """The entry a provider names; an unknown id is a CatalogError on its `catalog` key."""
        entry = self.get(entry_id)
        if entry is None:
            ids = [e.id for e in self.entries]
            close = difflib.get_close_matches(entry_id, ids, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CatalogError("catalog", f"unknown catalog entry {entry_id!r}{hint} (`egress providers` lists them)")
        return entry

    def origin(self, entry_id: str) -> str:
        if entry_id in self.added:
            return "config"
        return "bundled, overridden by config" if entry_id in self.overridden else "bundled"

    def with_entry(self, entry: CatalogEntry) -> ProviderCatalog:
        """This catalog with `entry` replacing the one of the same id, or added after the others."""
        known = self.get(entry.id) is not None
        entries = tuple(entry if e.id == entry.id else e for e in self.entries) if known else (*self.entries, entry)
        bundled_override = known and entry.id not in self.added
        return self.model_copy(
            update={
                "entries": entries,
                "overridden": self.overridden | {entry.id} if bundled_override else self.overridden,
                "added": self.added if known else self.added | {entry.id},
            }
        )


def parse_catalog(raw: Any) -> ProviderCatalog:
    """The bundled catalog from its parsed YAML (raises pydantic's ValidationError)."""
    parsed = CatalogFile.model_validate(raw)
    return ProviderCatalog(
        version=parsed.version,
        entries=parsed.entries,
        tool_hosts=parsed.tool_hosts,
        published_ranges=parsed.published_ranges,
        prices=parsed.prices,
    )


def patched_entry(base: CatalogEntry | None, patch: Mapping[str, Any]) -> dict[str, Any]:
    """The raw entry a configuration's `catalog:` item describes: a new entry as written, or the
    existing one with the item's keys replacing its own. A note on a fact the item replaces is
    dropped (it explained the old value) unless the item gives one."""
    if base is None:
        return dict(patch)
    notes = {k: v for k, v in base.notes.items() if k not in patch}
    notes.update(patch.get("notes") or {})
    return {**base.model_dump(mode="json"), **patch, "notes": notes}


def instantiate(entry: CatalogEntry, provider: Mapping[str, Any]) -> dict[str, Any]:
    """The raw endpoint a provider entry (`catalog: <id>`) describes: the entry's facts, then every
    key the provider gives (name and credentials always come from the provider), with the
    base_url template filled from the provider's `params` over the entry's defaults."""
    facts = {key: getattr(entry, key) for key in _ENDPOINT_FACTS if getattr(entry, key) is not None}
    if missing := [k for k in _REQUIRED_BY_ENDPOINT if k not in facts and k not in provider]:
        raise CatalogError(
            missing[0],
            f"catalog entry {entry.id!r} does not know {', '.join(missing)}: state "
            f"{'it' if len(missing) == 1 else 'them'} in this provider entry (`egress providers --id {entry.id}` says why)",
        )
    given = {k: v for k, v in provider.items() if k != "params"}
    base_url = fill_template(str(provider.get("base_url", entry.base_url)), entry.params, provider.get("params"))
    return {**facts, **given, "base_url": base_url, "catalog": entry.id}


def fill_template(template: str, defaults: Mapping[str, str], given: Any) -> str:
    """`template` with each {placeholder} replaced by the provider's param, else the entry's default."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise CatalogError("params", "must be a mapping of base_url placeholders to values")
    wanted = set(PLACEHOLDER.findall(template))
    if unknown := sorted(set(given) - wanted):
        raise CatalogError("params", f"{unknown} are not placeholders in base_url {template}")
    values = {**defaults, **{str(k): str(v) for k, v in given.items()}}
    if missing := sorted(wanted - set(values)):
        raise CatalogError("params", f"base_url {template} needs a value for {missing} (params: {{{missing[0]}: …}})")
    if bad := sorted(k for k in wanted if not _PARAM_VALUE.match(values[k])):
        raise CatalogError("params", f"{bad} must be letters, digits, '.', '_' or '-' (one label of a URL)")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
