"""`egress report`: the compliance pack for a period (JSON, HTML or PDF), and `egress report
verify`, which recomputes a report's figures from an audit export (docs/compliance.md)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from egress.cli.audit import _iso_time, _read_public_key
from egress.cli.options import config_option, err_console, load_or_exit, open_store

if TYPE_CHECKING:
    from egress.checklist.providers import Checklist
    from egress.config import Config
    from egress.policy.decide import PolicyEngine
    from egress.report.context import ReportContext
    from egress.report.model import Report


@click.group("report", invoke_without_command=True)
@config_option
@click.option("--since", callback=_iso_time, default=None, help="Records at or after this time (ISO 8601; UTC).")
@click.option("--until", callback=_iso_time, default=None, help="Records before this time (ISO 8601; default now).")
@click.option("--format", "fmt", type=click.Choice(["json", "html", "pdf"]), default="json", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write here.")
@click.pass_context
def report_command(
    ctx: click.Context,
    config_path: Path | None,
    since: float | None,
    until: float | None,
    fmt: str,
    output: Path | None,
) -> None:
    """The compliance pack for a period: data-flow map, GDPR Art. 30 draft, DPIA input,
    government-access law, checklists, policy revisions and signed evidence anchors."""
    if ctx.invoked_subcommand is not None:
        return
    if output is None:
        raise click.UsageError("give -o FILE")
    from egress.report.model import build  # imported here: keeps start-up fast

    config = load_or_exit(config_path)
    context = report_context(config)
    store = open_store(config)
    try:
        checkpoints = store.list_checkpoints()
        report = build(store.iter_audit(), checkpoints, context, since or 0.0, until or time.time())
    finally:
        store.close()
    output.write_bytes(render(report, fmt))
    f = report.figures
    click.echo(f"{output}: {fmt} report over records {f.first_seq}..{f.last_seq} ({f.requests} requests)")


def render(report: Report, fmt: str) -> bytes:
    if fmt == "html":
        from egress.report.render_html import render_html  # imported here: keeps start-up fast

        return render_html(report).encode()
    if fmt == "pdf":
        from egress.report.render_pdf import render_pdf

        return render_pdf(report)
    from egress.report.render_json import render_json

    return render_json(report)


def report_context(config: Config) -> ReportContext:
    """The endpoints, catalog facts, measures and checklist answers from the configuration."""
    from egress.app import load_policy_engine  # imported here: keeps start-up fast
    from egress.report.context import ReportContext
    from egress.report.measures import measures

    engine = load_policy_engine(config)
    try:
        checklists = _checklists(config, engine)
    finally:
        engine.close()
    return ReportContext.of(
        config.providers,
        config.provider_catalog,
        config.organisation.home_jurisdictions,
        measures(config.masking.kinds, str(config.approvals.mode), str(config.policy.engine)),
        checklists,
    )


def _checklists(config: Config, engine: PolicyEngine) -> dict[str, Checklist]:
    from egress.checklist.providers import Facts, endpoint_report, policy_fits

    async def fits() -> list[dict[str, str]]:
        try:
            return await policy_fits(engine, [Facts.of(e) for e in config.providers])
        finally:
            await engine.aclose()

    answers = asyncio.run(fits())
    catalog = config.provider_catalog
    return {
        e.name: endpoint_report(catalog, e, fit).checklist for e, fit in zip(config.providers, answers, strict=True)
    }


@report_command.command("verify")
@click.argument("report_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--export",
    "export_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="A complete `egress audit export` covering the period.",
)
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="PEM public key that checks the checkpoint signatures.",
)
def report_verify(report_file: Path, export_file: Path, public_key: Path) -> None:
    """Recompute REPORT_FILE's figures from the export and check its anchors against the signed
    checkpoints. Exit status 1 when anything differs or the export does not verify."""
    from egress.audit.export import ExportError, read_export  # imported here: keeps start-up fast
    from egress.report.verify import verify_report

    public = _read_public_key(public_key)
    try:
        doc = orjson.loads(report_file.read_bytes())
        with export_file.open("rb") as f:
            export = read_export(f)
    except (orjson.JSONDecodeError, ExportError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        sys.exit(1)
    if not isinstance(doc, dict):
        err_console.print(f"[red]{report_file}: not an egress report[/red]")
        sys.exit(1)
    check = verify_report(doc, export, public)
    for problem in check.problems:
        click.echo(f"BROKEN: {problem}.")
    for note in check.notes:
        click.echo(f"WARNING: {note}.")
    status = "OK" if check.ok else "FAILED"
    click.echo(
        f"{status}: {check.records} records of the period recomputed; {check.anchors} evidence anchors "
        "matched to signed checkpoints"
    )
    if not check.ok:
        sys.exit(1)
