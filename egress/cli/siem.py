"""`egress siem status|verify`: where each SIEM sink's delivery stands, and a SIEM's copy of the
audit checked against the signed checkpoints (docs/siem.md)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from egress.cli.audit import _read_public_key
from egress.cli.audit_report import print_verify
from egress.cli.options import config_option, err_console, load_or_exit, open_store


@click.group("siem")
def siem_command() -> None:
    """Audit delivery to SIEMs."""


@siem_command.command("status")
@config_option
def siem_status(config_path: Path | None) -> None:
    """Per configured sink: the last record it acknowledged, how far behind it is, who delivers."""
    config = load_or_exit(config_path)
    store = open_store(config)
    try:
        head = store.audit_head()
        last = head[0] if head else 0
        now = time.time()
        if not config.siem.sinks:
            click.echo("no SIEM sinks configured (siem.sinks)")
        for sink in config.siem.sinks:
            cursor = store.siem_cursor(sink.name)
            seq = cursor.seq if cursor else 0
            holder = cursor.owner if cursor and cursor.owner and cursor.lease_until > now else "nobody"
            acked = f"{now - cursor.delivered_at:.0f} s ago" if cursor and cursor.delivered_at else "never"
            click.echo(
                f"{sink.name} ({sink.type}): acknowledged through record {seq} of {last}, "
                f"{last - seq} behind, last acknowledgement {acked}, delivering: {holder}"
            )
    finally:
        store.close()


@siem_command.command("verify")
@config_option
@click.argument("copy_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM public key that checks checkpoint signatures (default: the gateway's own key).",
)
@click.option(
    "--checkpoints",
    "checkpoints_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Take the signed checkpoints from this `egress audit export` file instead of the store.",
)
def siem_verify(
    config_path: Path | None, copy_file: Path, public_key: Path | None, checkpoints_file: Path | None
) -> None:
    """Verify a SIEM's copy (JSON lines: one delivered document or HEC event per line, duplicates
    allowed) against the signed checkpoints up to the copy's last record."""
    from egress.audit.export import ExportError, read_export  # imported here: keeps start-up fast
    from egress.siem.copy import read_copy, verify_copy

    started = time.perf_counter()
    try:
        with copy_file.open("rb") as f:
            copy = read_copy(f)
    except ValueError as exc:
        err_console.print(f"[red]{copy_file}: {exc}[/red]")
        sys.exit(1)
    if checkpoints_file is not None:
        if public_key is None:
            raise click.UsageError("--checkpoints needs --public-key")
        try:
            with checkpoints_file.open("rb") as f:
                checkpoints = read_export(f).checkpoints
        except ExportError as exc:
            err_console.print(f"[red]{checkpoints_file}: {exc}[/red]")
            sys.exit(1)
        public = _read_public_key(public_key)
    else:
        config = load_or_exit(config_path)
        public = _read_public_key(public_key or config.audit_signing_key_file)
        store = open_store(config)
        try:
            checkpoints = store.list_checkpoints()
        finally:
            store.close()
    through = max((d.seq for d in copy), default=0)
    report = verify_copy(copy, checkpoints, public, through=through)
    print_verify(report, "records (SIEM copy)", time.perf_counter() - started, live=False)
