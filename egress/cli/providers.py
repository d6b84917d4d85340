"""`egress providers`: the provider catalog and the configured endpoints, each with its answers to
the pre-procurement checklist (computed by egress.checklist.providers), as tables or JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import orjson
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

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
from egress.config import Config, ConfigError, load_config
from egress.policy.decide import PolicyEngine
from egress.policy.rego import PolicyLoadError

console = Console(highlight=False)


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
