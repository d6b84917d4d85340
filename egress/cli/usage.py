"""`egress usage [--team T] [--user U] [--since 7d]`: consumption against limits, per team and
user, from the usage rows the gateways write (egress/limits/usage_log.py, docs/limits.md)."""

from __future__ import annotations

import time
from pathlib import Path

import click
import orjson

from egress.cli.options import config_option, load_or_exit, open_store
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format
from egress.limits.report import UsageLine, month_start, parse_since, usage_report

SPEC = TableSpec(
    (
        Column("scope", "scope", no_wrap=True),
        Column("name", "name", no_wrap=True),
        Column("requests", "requests", justify="right"),
        Column("input_tokens", "input tokens", justify="right"),
        Column("output_tokens", "output tokens", justify="right"),
        Column("spend_usd", "spend USD", justify="right"),
        Column("today", "today in/out (limit/day)", drop=2),
        Column("month", "month spend (limit)", drop=1),
    ),
    title="Usage against limits",
)


@click.command("usage")
@config_option
@click.option("--team", default=None, help="Only this team (and its users).")
@click.option("--user", default=None, help="Only this user.")
@click.option("--since", default=None, help="From: 7d, 24h, or a UTC date 2026-12-01 (default: this month).")
@format_option
def usage_command(
    config_path: Path | None, team: str | None, user: str | None, since: str | None, fmt: str, as_json: bool
) -> None:
    """Requests, tokens and spend per team and user, against their limits."""
    config = load_or_exit(config_path)
    now = time.time()
    try:
        start = parse_since(since, now) if since else month_start(now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    store = open_store(config)
    try:
        lines = usage_report(store, config.limits, start, now, team=team, user=user)
    finally:
        store.close()
    chosen = resolve_format(fmt, as_json)
    if chosen == "json":
        click.echo(orjson.dumps([_json(line) for line in lines], option=orjson.OPT_INDENT_2).decode())
        return
    if not lines:
        click.echo("no usage recorded in this period")
        return
    pct = UsageLine.percent
    rows = [
        (
            line.scope,
            line.name,
            line.requests,
            line.input_tokens,
            line.output_tokens,
            f"{line.spend_usd:.4f}",
            f"{line.today_input}/{line.today_output} ({line.input_per_day or '-'}/{line.output_per_day or '-'})"
            + (f" {pct(line.today_output, line.output_per_day)}" if line.output_per_day else ""),
            f"{line.month_spend_usd:.4f} ({line.spend_per_month_usd or '-'})"
            + (f" {pct(line.month_spend_usd, line.spend_per_month_usd)}" if line.spend_per_month_usd else ""),
        )
        for line in lines
    ]
    print_rows(SPEC, rows, chosen)


def _json(line: object) -> dict[str, object]:
    return {name: getattr(line, name) for name in line.__slots__}  # type: ignore[attr-defined]
