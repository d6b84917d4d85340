"""`egress audit verify|export|tail|public-key`, and (egress.cli.audit_replay, imported when
they run) `egress audit replay` and `egress audit recording-key`: the tamper-evident audit log."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from egress.cli.audit_report import print_verify
from egress.cli.lazy import LazyCommand, LazyGroup
from egress.cli.options import config_option, err_console, iso, load_or_exit, open_store
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format
from egress.core.audit_record import AuditRecord, parse_record

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from egress.audit.export import ExportFilter
    from egress.audit.verify import AuditReport
    from egress.core.records import StoredAudit


@click.group(
    "audit",
    cls=LazyGroup,
    lazy={
        "replay": LazyCommand(
            "egress.cli.audit_replay",
            "replay_command",
            "Show what a recorded request sent upstream and received, and what was masked (kinds only).",
        ),
        "recording-key": LazyCommand(
            "egress.cli.audit_replay",
            "recording_key_group",
            "The keys that seal recorded payloads (docs/recording.md: rotation).",
        ),
    },
)
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@config_option
@click.option(
    "--export",
    "export_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Verify this JSONL export offline (no gateway, no database) instead of the store.",
)
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="PEM public key that checks checkpoint signatures (`egress audit public-key`). "
    "Default for the store: the gateway's own key; required with --export.",
)
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The checkpoint anchor to compare the database against (a copy from another disk or a WORM "
    "mount). Default: audit.checkpoint_log.",
)
@click.option(
    "--no-anchor",
    is_flag=True,
    help="Verify the database alone, without its anchor: records cut off together with their newest "
    "checkpoints, or rewritten and re-chained with those checkpoints deleted, then go unnoticed.",
)
def audit_verify(
    config_path: Path | None,
    export_file: Path | None,
    public_key: Path | None,
    anchor_file: Path | None,
    no_anchor: bool,
) -> None:
    """Check the hash chain and every signed checkpoint, and compare the checkpoints with their
    anchor outside the database; name the first record that breaks them."""
    from egress.audit.anchor import read_anchor  # imported here: keeps start-up fast
    from egress.audit.verify import verify_store

    started = time.perf_counter()
    if no_anchor and anchor_file is not None:
        raise click.UsageError("--anchor and --no-anchor exclude each other")
    if export_file is not None:
        if public_key is None:
            raise click.UsageError("--export needs --public-key")
        report, what = _verify_export_file(export_file, _read_public_key(public_key))
        print_verify(report, what, time.perf_counter() - started, live=False)
        return
    config = load_or_exit(config_path)
    key_file = public_key or config.audit_signing_key_file
    public = _read_public_key(key_file) if public_key or key_file.exists() else None
    # Read before the database: a gateway anchors a checkpoint only after storing it.
    anchor = None if no_anchor else read_anchor(anchor_file or config.audit_checkpoint_log)
    store = open_store(config)
    try:
        report = verify_store(store, public, anchor)
    finally:
        store.close()
    print_verify(report, "records", time.perf_counter() - started, live=True)


def _read_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, or the public half of a PEM private key (the gateway's own key file)."""
    # imported here: keeps start-up fast
    from egress.audit.checkpoint import SigningKeyError, load_or_create_signing_key, load_public_key

    data = path.read_bytes()
    try:
        if b"PRIVATE KEY" in data:
            return load_or_create_signing_key(path).public_key()
        return load_public_key(data)
    except SigningKeyError as exc:
        err_console.print(f"[red]{path}: {exc}[/red]")
        sys.exit(2)


def _verify_export_file(path: Path, public: Ed25519PublicKey) -> tuple[AuditReport, str]:
    from egress.audit.export import ExportError, read_export, verify_export  # imported here: keeps start-up fast

    try:
        with path.open("rb") as f:
            export = read_export(f)
    except ExportError as exc:
        err_console.print(f"[red]{path}: {exc}[/red]")
        sys.exit(1)
    what = "complete export" if export.complete else f"filtered export {json.dumps(export.filters, sort_keys=True)}"
    return verify_export(export, public), f"records ({what})"


@audit.command("public-key")
@config_option
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
def audit_public_key(config_path: Path | None, output: Path | None) -> None:
    """Print the PEM public key that checks the audit's signed checkpoints (give it to auditors)."""
    # imported here: keeps start-up fast
    from egress.audit.checkpoint import SigningKeyError, load_or_create_signing_key, public_pem

    config = load_or_exit(config_path)
    try:
        pem = public_pem(load_or_create_signing_key(config.audit_signing_key_file))
    except SigningKeyError as exc:
        err_console.print(f"[red]{exc}[/red]")
        sys.exit(2)
    if output:
        output.write_bytes(pem)
    else:
        click.echo(pem.decode(), nl=False)


@audit.command("tail")
@config_option
@click.option("-n", "count", type=int, default=20, show_default=True, help="How many records.")
@format_option
def audit_tail(config_path: Path | None, count: int, fmt: str, as_json: bool) -> None:
    """Show the newest audit records (JSON: the records themselves, one per line)."""
    store = open_store(load_or_exit(config_path))
    rows = store.audit_tail(count)
    store.close()
    resolved = resolve_format(fmt, as_json)
    if resolved == "json":
        for row in rows:
            click.echo(row.entry.canonical.decode())
        return
    table: list[tuple[object, ...]] = []
    for row in rows:
        record = parse_record(row.entry.canonical)
        latency = record.latency_ms
        table.append(
            (
                row.seq,
                iso(record.ts),
                record.user,
                record.api,
                record.model,
                record.endpoint,
                record.jurisdiction,
                record.outcome,
                record.status,
                # Approval steps and egress records have no latency of their own.
                f"{latency.total:.1f}" if latency is not None and latency.total is not None else "",
            )
        )
    print_rows(_AUDIT_TABLE, table, resolved)


_AUDIT_TABLE = TableSpec(
    (
        Column("seq", "seq", no_wrap=True, justify="right"),
        Column("time", "time", no_wrap=True, drop=3),
        Column("user", "user"),
        Column("api", "api", drop=4),
        Column("model", "model", drop=2),
        Column("endpoint", "endpoint"),
        Column("jurisdiction", "jurisdiction", drop=1),
        Column("outcome", "outcome"),
        Column("status", "status", justify="right", drop=5),
        Column("ms", "ms", justify="right", drop=6),
    )
)


def _iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """ISO 8601 to Unix seconds; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


_CSV_COLUMNS = [
    "seq",
    "ts",
    "request_id",
    "user",
    "team",
    "client",
    "api",
    "model",
    "endpoint",
    "jurisdiction",
    "region",
    "outcome",
    "status",
    "error_code",
    "bytes_in",
    "bytes_out",
    "input_tokens",
    "output_tokens",
    "upstream_body_sha256",
    "recorded",
    "response_sha256",
    "prev_hash",
    "hash",
]


@audit.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.option(
    "--since", callback=_iso_time, default=None, help="Records at or after this time (ISO 8601; UTC if no zone)."
)
@click.option("--until", callback=_iso_time, default=None, help="Records before this time (ISO 8601).")
@click.option("--user", default=None)
@click.option("--team", default=None)
@click.option("--endpoint", default=None)
@click.option("--jurisdiction", default=None)
@click.option("--kind", default=None, help="Only requests with a finding of this kind (secret, pii, …).")
@click.option("--decision", default=None, help="Only requests with this policy action (allow, mask, deny, …).")
@click.option("--approval", default=None, help="Only the records of this approval (the request and every step).")
def audit_export(config_path: Path | None, fmt: str, output: Path | None, **filters: Any) -> None:
    """Export audit records with their chain fields, and (JSONL) the signed checkpoints that cover
    them, for an auditor: `egress audit verify --export FILE --public-key KEY.pem` checks it. A
    filtered JSONL export also carries each record's inclusion proof (its membership in the
    signed log); records newer than the last checkpoint get theirs in a later export."""
    from egress.audit.export import ExportFilter, export_jsonl  # imported here: keeps start-up fast

    selector = ExportFilter(**filters)
    store = open_store(load_or_exit(config_path))
    binary = output.open("wb") if output else sys.stdout.buffer
    try:
        if fmt == "jsonl":
            # Checkpoints first, then the records (lazy): every exported checkpoint's records exist.
            for line in export_jsonl(store.iter_audit(), store.list_checkpoints(), selector, time.time()):
                binary.write(line)
        else:
            _export_csv(store.iter_audit(), selector, binary)
        binary.flush()
    finally:
        store.close()
        if output:
            binary.close()


def _export_csv(rows: Iterable[StoredAudit], selector: ExportFilter, binary: BinaryIO) -> None:
    stream = io.TextIOWrapper(binary, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(stream)
    writer.writerow(_CSV_COLUMNS)
    for row in rows:
        if not selector.matches(row):
            continue
        values = _csv_row(row, parse_record(row.entry.canonical))
        writer.writerow(["" if v is None else v for v in values])
    stream.detach()  # leave the underlying stream open for the caller


def _csv_row(row: StoredAudit, r: AuditRecord) -> tuple[object, ...]:
    """One CSV row, in _CSV_COLUMNS order; a key the record lacks is an empty cell."""
    usage = r.usage
    return (
        row.seq,
        r.ts,
        r.request_id,
        r.user,
        r.team,
        r.client,
        r.api,
        r.model,
        r.endpoint,
        r.jurisdiction,
        r.region,
        r.outcome,
        r.status,
        r.error_code,
        r.bytes_in,
        r.bytes_out,
        usage.input_tokens if usage else None,
        usage.output_tokens if usage else None,
        r.upstream_body_sha256,
        r.recorded,
        r.response_sha256,
        row.prev_hash,
        row.hash,
    )
