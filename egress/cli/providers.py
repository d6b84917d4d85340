"""`egress providers`: the provider catalog and the configured endpoints, each with its answers to
the pre-procurement checklist (where inference runs, whether it can be pinned there, training,
retention, the laws under which the operator can be compelled, which data classes the policy lets
go there, and what that exposes)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from egress.app import load_policy_engine
from egress.config import Config, ConfigError, load_config
from egress.core.endpoint import Endpoint
from egress.policy.decide import INPUT_VERSION, PolicyEngine
from egress.policy.rego import PolicyLoadError
from egress.route.provider_catalog import CatalogEntry, ProviderCatalog

console = Console(highlight=False)

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
    """"allowed", "masked" (it goes, with values of that kind replaced by placeholders), or
    "refused: <the policy's reasons>"."""
    if not isinstance(answer, dict):
        return "refused: the policy gave no decision"
    allowed = _PROBE in (answer.get("endpoints") or []) and answer.get("action") not in ("block", "require_approval")
    if allowed:
        return MASKED if data_class in (answer.get("mask") or []) else ALLOWED
    prefix = f"{_PROBE}: "
    reasons = [r.removeprefix(prefix) for r in answer.get("reasons") or [] if r.startswith(prefix)]
    return "refused: " + ("; ".join(reasons) or str(answer.get("action", "no endpoint allowed")))


async def policy_fits(engine: PolicyEngine, facts: list[Facts]) -> list[dict[str, str]]:
    """For each destination and data class, what the active policy (as configured) decides."""
    fits = []
    try:
        for item in facts:
            fits.append({c: verdict(await engine.evaluate(probe_document(item, c)), c) for c in DATA_CLASSES})
    finally:
        await engine.aclose()
    return fits


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


def providers_report(config: Config, engine: PolicyEngine) -> ProvidersReport:
    """The catalog and the endpoints; "policy fit" is what `engine` (the configured policy)
    decides for each of them."""
    catalog = config.provider_catalog
    facts = [Facts.of(e) for e in catalog.entries] + [Facts.of(e) for e in config.providers]
    fits = asyncio.run(policy_fits(engine, facts))
    entries = len(catalog.entries)
    return ProvidersReport(
        catalog_version=catalog.version,
        catalog=tuple(catalog_report(catalog, e, f) for e, f in zip(catalog.entries, fits[:entries], strict=True)),
        endpoints=tuple(endpoint_report(catalog, e, f) for e, f in zip(config.providers, fits[entries:], strict=True)),
    )


# --- rendering ---------------------------------------------------------------------------------


def _answer(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else (yes if value else no)


def _retention(c: Checklist) -> str:
    days = "unknown" if c.retention_days is None else f"{c.retention_days} d"
    zdr = {True: "ZDR offered", False: "no ZDR offered", None: "ZDR option unknown"}[c.zero_data_retention_offered]
    if c.zero_data_retention_in_effect:
        zdr = "ZDR in effect"
    return f"{days}, {zdr}"


def _fit(c: Checklist) -> str:
    marks = {ALLOWED: "✓", MASKED: "masked"}
    return " ".join(f"{k}:{marks.get(v, '✗')}" for k, v in c.policy_fit.items())


def _row(c: Checklist) -> list[str]:
    return [
        c.default_inference_location or "unknown",
        _answer(c.region_pinning, "yes", "no"),
        _answer(c.trains_on_api_data, "TRAINS", "no training"),
        _retention(c),
        "; ".join(c.government_access),
        _fit(c),
        c.exposure,
    ]


_CHECKLIST_COLUMNS = (
    "inference location",
    "pinning",
    "training",
    "retention",
    "government access",
    "policy fit",
    "exposure",
)


def _catalog_table(report: ProvidersReport) -> Table:
    table = Table("id", "operator", "where", *_CHECKLIST_COLUMNS, title=f"Provider catalog {report.catalog_version}")
    for r in report.catalog:
        where = f"{r.entry.jurisdiction or 'unknown'} · {r.entry.region or 'unknown'}"
        label = {"bundled": r.id, "config": f"{r.id} (added)"}.get(r.origin, f"{r.id} (overridden)")
        table.add_row(label, r.entry.operator, where, *_row(r.checklist))
    table.columns[0].no_wrap = True
    return table


def _endpoint_table(report: ProvidersReport) -> Table:
    table = Table("endpoint", "operator", "where", *_CHECKLIST_COLUMNS, title="Configured endpoints")
    for r in report.endpoints:
        e = r.endpoint
        label = f"{e.name} ({e.catalog})" if e.catalog else e.name
        table.add_row(label, e.operator, f"{e.jurisdiction} · {e.region}", *_row(r.checklist))
    table.columns[0].no_wrap = True
    return table


def _detail(title: str, facts: dict[str, object], c: Checklist, notes: dict[str, str]) -> Table:
    """One entry or endpoint: every fact, its note where it has one, then the checklist."""
    table = Table("fact", title=title)
    table.add_column("value", overflow="fold")
    for key, value in facts.items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        table.add_row(key, shown + (f"\n[dim]note: {notes[key]}[/dim]" if key in notes else ""))
    if "general" in notes:
        table.add_row("note", notes["general"])
    table.add_row("[bold]checklist[/bold]", "")
    for label, value in zip(_CHECKLIST_COLUMNS, _row(c), strict=True):
        if label != "policy fit":
            table.add_row(label, value)
    for data_class, verdict in c.policy_fit.items():
        table.add_row(f"policy fit: {data_class}", verdict)
    return table


def _show_entry(report: CatalogReport) -> Table:
    facts = report.entry.model_dump(mode="json", exclude={"notes"})
    return _detail(
        f"{report.id} ({report.origin})", {**facts, "origin": report.origin}, report.checklist, report.entry.notes
    )


def _show_endpoint(report: EndpointReport) -> Table:
    facts = report.endpoint.model_dump(mode="json")
    return _detail(f"endpoint {report.name}", facts, report.checklist, {})


class _ConfigRefused(click.ClickException):
    exit_code = 2


@click.command("providers")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (YAML). Default: $EGRESS_CONFIG, else the embedded defaults.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of tables.")
@click.option("--id", "entry_id", default=None, help="Show one catalog entry in detail (with source and as_of).")
@click.option("--endpoint", "endpoint_name", default=None, help="Show one configured endpoint in detail.")
def providers_command(config_path: Path | None, as_json: bool, entry_id: str | None, endpoint_name: str | None) -> None:
    """The provider catalog and the configured endpoints, with their checklist answers."""
    if entry_id and endpoint_name:
        raise click.UsageError("give --id or --endpoint, not both")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise _ConfigRefused(f"config error\n{exc}") from None
    try:
        engine = load_policy_engine(config)
    except PolicyLoadError as exc:
        raise _ConfigRefused(f"policy error\n{exc}") from None
    try:
        report = providers_report(config, engine)
    finally:
        engine.close()
    if entry_id:
        one = next((r for r in report.catalog if r.id == entry_id), None)
        if one is None:
            raise click.BadParameter(f"no catalog entry {entry_id!r}", param_hint="--id")
        _emit(one, as_json, _show_entry(one))
    elif endpoint_name:
        found = next((r for r in report.endpoints if r.name == endpoint_name), None)
        if found is None:
            raise click.BadParameter(f"no configured endpoint {endpoint_name!r}", param_hint="--endpoint")
        _emit(found, as_json, _show_endpoint(found))
    else:
        _emit(report, as_json, _catalog_table(report), _endpoint_table(report))


def _emit(model: BaseModel, as_json: bool, *tables: Table) -> None:
    if as_json:
        click.echo(orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
        return
    for table in tables:
        console.print(table)
