"""`egress providers`: the provider catalog and the configured endpoints, each with its answers to
the pre-procurement checklist (computed by egress.checklist.providers), as tables or JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import orjson
from pydantic import BaseModel

from egress.app import load_policy_engine
from egress.checklist.providers import (
    ALLOWED,
    MASKED,
    CatalogReport,
    Checklist,
    EndpointReport,
    ProvidersReport,
    build_report,
    destinations,
    policy_fits,
)
from egress.cli.options import config_option
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format
from egress.config import Config, ConfigError, load_config
from egress.policy.decide import PolicyEngine
from egress.policy.rego import PolicyLoadError


def providers_report(config: Config, engine: PolicyEngine) -> ProvidersReport:
    """The catalog and the endpoints; "policy fit" is what `engine` (the configured policy)
    decides for each of them. The engine's event-loop resources are released here."""

    async def fits() -> list[dict[str, str]]:
        try:
            return await policy_fits(engine, destinations(config.provider_catalog, config.providers))
        finally:
            await engine.aclose()

    return build_report(config.provider_catalog, config.providers, asyncio.run(fits()))


# --- rendering ---------------------------------------------------------------------------------


def _answer(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else (yes if value else no)


def _retention(c: Checklist) -> str:
    days = "unknown" if c.retention_days is None else f"{c.retention_days} d"
    zdr = {True: "ZDR offered", False: "no ZDR offered", None: "ZDR option unknown"}[c.zero_data_retention_offered]
    if c.zero_data_retention_in_effect:
        zdr = "ZDR in effect"
    return f"{days}, {zdr}"


def _where(c: Checklist, region: str | None) -> str:
    """Where the data is processed, and the operator's own jurisdiction when it is another."""
    where = f"{c.jurisdiction or 'unknown'} · {region or 'unknown'}"
    operator = c.operator_jurisdiction
    if operator is not None and operator not in (c.jurisdiction, "self"):
        where += f" (operator {operator})"
    return where


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
# At 80 columns the identity, place and policy fit stay; the rest goes, least telling first.
_CHECKLIST_SPEC = (
    Column("inference_location", "inference location", drop=7),
    Column("pinning", "pinning", drop=3),
    Column("training", "training", drop=2),
    Column("retention", "retention", drop=4),
    Column("government_access", "government access", drop=6),
    Column("policy_fit", "policy fit"),
    Column("exposure", "exposure", drop=5),
)


def _catalog_table(report: ProvidersReport) -> tuple[TableSpec, list[list[str]]]:
    spec = TableSpec(
        (Column("id", "id", no_wrap=True), Column("operator", "operator", drop=8), Column("where", "where"))
        + _CHECKLIST_SPEC,
        title=f"Provider catalog {report.catalog_version}",
    )
    rows = []
    for r in report.catalog:
        where = _where(r.checklist, r.entry.region)
        label = {"bundled": r.id, "config": f"{r.id} (added)"}.get(r.origin, f"{r.id} (overridden)")
        rows.append([label, r.entry.operator, where, *_row(r.checklist)])
    return spec, rows


def _endpoint_table(report: ProvidersReport) -> tuple[TableSpec, list[list[str]]]:
    spec = TableSpec(
        (Column("endpoint", "endpoint", no_wrap=True), Column("operator", "operator", drop=8), Column("where", "where"))
        + _CHECKLIST_SPEC,
        title="Configured endpoints",
    )
    rows = []
    for r in report.endpoints:
        e = r.endpoint
        label = f"{e.name} ({e.catalog})" if e.catalog else e.name
        rows.append([label, e.operator, _where(r.checklist, e.region), *_row(r.checklist)])
    return spec, rows


def _detail(
    title: str, facts: dict[str, object], c: Checklist, notes: dict[str, str]
) -> tuple[TableSpec, list[list[str]]]:
    """One entry or endpoint: every fact, its note where it has one, then the checklist."""
    spec = TableSpec((Column("fact", "fact", no_wrap=True), Column("value", "value")), title=title)
    rows = []
    for key, value in facts.items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        rows.append([key, shown + (f"\nnote: {notes[key]}" if key in notes else "")])
    if "general" in notes:
        rows.append(["note", notes["general"]])
    for label, value in zip(_CHECKLIST_COLUMNS, _row(c), strict=True):
        if label != "policy fit":
            rows.append([f"checklist: {label}", value])
    for data_class, verdict in c.policy_fit.items():
        rows.append([f"policy fit: {data_class}", verdict])
    return spec, rows


def _show_entry(report: CatalogReport) -> tuple[TableSpec, list[list[str]]]:
    facts = report.entry.model_dump(mode="json", exclude={"notes"})
    return _detail(
        f"{report.id} ({report.origin})", {**facts, "origin": report.origin}, report.checklist, report.entry.notes
    )


def _show_endpoint(report: EndpointReport) -> tuple[TableSpec, list[list[str]]]:
    facts = report.endpoint.model_dump(mode="json")
    return _detail(f"endpoint {report.name}", facts, report.checklist, {})


class _ConfigRefused(click.ClickException):
    exit_code = 2


@click.command("providers")
@config_option
@format_option
@click.option("--id", "entry_id", default=None, help="Show one catalog entry in detail (with source and as_of).")
@click.option("--endpoint", "endpoint_name", default=None, help="Show one configured endpoint in detail.")
def providers_command(
    config_path: Path | None, fmt: str, as_json: bool, entry_id: str | None, endpoint_name: str | None
) -> None:
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
    resolved = resolve_format(fmt, as_json)
    if entry_id:
        one = next((r for r in report.catalog if r.id == entry_id), None)
        if one is None:
            raise click.BadParameter(f"no catalog entry {entry_id!r}", param_hint="--id")
        _emit(one, resolved, _show_entry(one))
    elif endpoint_name:
        found = next((r for r in report.endpoints if r.name == endpoint_name), None)
        if found is None:
            raise click.BadParameter(f"no configured endpoint {endpoint_name!r}", param_hint="--endpoint")
        _emit(found, resolved, _show_endpoint(found))
    else:
        _emit(report, resolved, _catalog_table(report), _endpoint_table(report))


def _emit(model: BaseModel, fmt: str, *tables: tuple[TableSpec, list[list[str]]]) -> None:
    """JSON: the whole report (every fact, not only the columns); else each table, a blank line apart."""
    if fmt == "json":
        click.echo(orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
        return
    for i, (spec, rows) in enumerate(tables):
        if i:
            click.echo()
        print_rows(spec, rows, fmt)
