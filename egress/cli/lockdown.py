"""`egress lockdown`: network controls that leave no way to a model provider but through the
gateway (export, refresh), and the check that proves them from where it runs (check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from egress.cli.options import config_option, err_console
from egress.config import Config, ConfigError, load_config
from egress.lockdown.check import CheckReport, run_check
from egress.lockdown.export import FORMATS, RESOLVING, export
from egress.lockdown.formats import nftables
from egress.lockdown.hosts import LockdownError, LockdownPlan, build_plan
from egress.lockdown.render import Artifact
from egress.lockdown.resolve import resolve_names


@click.group("lockdown")
def lockdown_command() -> None:
    """Network lock-down: no way to the providers but through the gateway."""


@lockdown_command.command("export")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), required=True, help="What to generate.")
@config_option
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write the files into this folder (default: print them).",
)
@click.option(
    "--resolve/--no-resolve",
    default=True,
    show_default=True,
    help="nftables: resolve provider names to addresses now (published and pinned addresses are always listed).",
)
def export_command(fmt: str, config_path: Path | None, output: Path | None, resolve: bool) -> None:
    """Generate the lock-down for one environment from the endpoints and the provider catalog."""
    plan = _plan(config_path)
    if fmt in RESOLVING and resolve:
        plan = _resolved(plan)
    _emit(export(plan, fmt), output)


@lockdown_command.command("refresh")
@config_option
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The folder holding egress-lockdown.nft (rewritten).",
)
@click.option("--apply", "apply", is_flag=True, help="Load the refreshed ruleset with `nft -f` (needs root).")
def refresh_command(config_path: Path | None, output: Path, apply: bool) -> None:
    """Re-resolve the provider names and rewrite (and with --apply, reload) the nftables ruleset."""
    artifacts = export(_resolved(_plan(config_path)), "nftables")
    _emit(artifacts, output)
    if apply:
        path = output / nftables.FILE
        result = subprocess.run(["nft", "-f", str(path)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            err_console.print(f"[red]nft -f {path} failed[/red]: {result.stderr.strip()}")
            sys.exit(1)
        click.echo(f"loaded {path}")


@lockdown_command.command("check")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for the compliance pack).")
@click.option("--gateway", "gateway_url", default=None, help="The gateway's URL (default lockdown.gateway.url).")
@click.option("--no-gateway", is_flag=True, help="Do not check that the gateway is reachable.")
@click.option(
    "--timeout", "timeout_s", type=float, default=None, help="Seconds per host (default lockdown.check_timeout_s)."
)
def check_command(
    config_path: Path | None, as_json: bool, gateway_url: str | None, no_gateway: bool, timeout_s: float | None
) -> None:
    """Try DNS, TCP and TLS to every provider host from here (no request is sent): each must be
    blocked. Exit 1 if any is reachable directly, 3 if the gateway is not reachable."""
    config = _config(config_path)
    plan = _build(config)
    url = None if no_gateway else (gateway_url or config.lockdown.gateway.url or config.public_base_url)
    report = run_check(plan, url, timeout_s)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
    sys.exit(report.exit_code)


def _config(config_path: Path | None) -> Config:
    # Credentials are not needed to write or check a lock-down: unset key variables are fine.
    try:
        return load_config(config_path, require_env=False)
    except ConfigError as exc:
        for problem in exc.problems:
            err_console.print(f"[red]config error[/red] {problem}")
        sys.exit(2)


def _build(config: Config) -> LockdownPlan:
    try:
        return build_plan(config.providers, config.provider_catalog, config.lockdown)
    except LockdownError as exc:
        err_console.print(f"[red]config error[/red] {exc}")
        sys.exit(2)


def _plan(config_path: Path | None) -> LockdownPlan:
    return _build(_config(config_path))


def _resolved(plan: LockdownPlan) -> LockdownPlan:
    names = [h.name for h in plan.hosts if not h.clients_may_reach]
    return plan.with_resolved(resolve_names(names, plan.settings.resolve_timeout_s))


def _emit(artifacts: list[Artifact], output: Path | None) -> None:
    if output is None:
        for artifact in artifacts:
            if len(artifacts) > 1:
                click.echo(f"# --- {artifact.path}")
            click.echo(artifact.text, nl=False)
        return
    for artifact in artifacts:
        path = output / artifact.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(artifact.text, encoding="utf-8")
        click.echo(f"wrote {path}")


def _print_report(report: CheckReport) -> None:
    rows = [("host", "port", "expected", "dns", "tcp", "tls", "verdict")]
    rows += [(p.host, str(p.port), p.expected, p.dns, p.tcp, p.tls, p.verdict) for p in report.probes]
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell[:40].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if report.gateway is not None:
        state = "ready" if report.gateway.ready else "NOT REACHABLE"
        click.echo(f"\ngateway {report.gateway.url}: {state} ({report.gateway.detail})")
    leaks = report.leaks
    summary = (
        f"{len(leaks)} provider host(s) reachable directly: {', '.join(p.host for p in leaks)}"
        if leaks
        else "no provider host reachable directly"
    )
    click.echo(f"{summary} ({len(report.probes)} hosts, {report.seconds:.1f} s; revision {report.revision})")
