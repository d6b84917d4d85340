"""The `egress` command line."""

from __future__ import annotations

import csv
import getpass
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import click
import orjson
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.table import Table

from egress.app import ENV_SERVE_CONFIG, build_app, freeze_after_start, open_configured_store
from egress.audit.checkpoint import SigningKeyError, load_or_create_signing_key, load_public_key, public_pem
from egress.audit.export import ExportError, ExportFilter, export_jsonl, read_export, verify_export
from egress.audit.verify import AuditReport, Membership, verify_store
from egress.cli.admin import admin_command
from egress.cli.approvals import approvals_command
from egress.cli.audit_replay import recording_key_group, replay_command
from egress.cli.policy import PID_FILE, policy_command
from egress.cli.providers import providers_command
from egress.cli.scan import scan_command
from egress.config import Config, ConfigError, load_config
from egress.core.records import StoredAudit
from egress.gateway.auth import KEY_HEADER, new_key
from egress.gateway.http_protocol import with_header_timeout

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Configuration file (YAML). Default: $EGRESS_CONFIG, else the embedded defaults.",
    )(fn)


def _load(config_path: Path | None, **overrides: Any) -> Config:
    try:
        return load_config(config_path, **overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            err_console.print(f"[red]config error[/red] {problem}")
        sys.exit(2)


@click.group()
@click.version_option(package_name="egress")
def main() -> None:
    """egress: decide where your code may go when developers use AI coding agents."""


main.add_command(scan_command)
main.add_command(providers_command)
main.add_command(policy_command)
main.add_command(approvals_command)
main.add_command(admin_command)


# --- serve -------------------------------------------------------------------------------------


@main.command()
@_config_option
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: Path | None, host: str | None, port: int | None, workers: int | None, log_level: str) -> None:
    """Run the gateway."""
    config = _load(config_path, host=host, port=port, workers=workers)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    first_key = _ensure_first_key(config)
    _print_banner(config, first_key)
    server = config.server
    common: dict[str, Any] = dict(
        host=server.host,
        port=server.port,
        loop="uvloop",
        http=with_header_timeout(server.header_read_timeout_s),
        lifespan="on",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=30,
        server_header=False,
        date_header=False,
        proxy_headers=False,  # egress does not trust X-Forwarded-* from its clients
    )
    if server.tls_cert_file is not None:  # both or neither: validated when the config loaded
        common.update(ssl_certfile=str(server.tls_cert_file), ssl_keyfile=str(server.tls_key_file))
    # `egress policy reload` signals this process: with one worker it reloads the policy in
    # place; with several, uvicorn's supervisor restarts the workers one by one (same effect).
    pid_file = config.resolved_data_dir / PID_FILE
    config.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        if server.workers > 1:
            if config_path is not None:
                os.environ[ENV_SERVE_CONFIG] = str(config_path.resolve())
            uvicorn.run("egress.app:create_app_from_env", factory=True, workers=server.workers, **common)
        else:
            uvicorn.run(freeze_after_start(build_app(config)), **common)
    finally:
        pid_file.unlink(missing_ok=True)


def _ensure_first_key(config: Config) -> str | None:
    """On a fresh install with keys required, create one key for the local user and show it once."""
    if not config.auth.required:
        return None
    store = open_configured_store(config)
    try:
        if store.list_keys():
            return None
        secret, key = new_key(getpass.getuser(), None)
        store.create_key(key)
        return secret
    finally:
        store.close()


def _print_banner(config: Config, first_key: str | None) -> None:
    server = config.server
    base = (
        server.public_url
        or f"{'https' if server.tls_cert_file else 'http'}://"
        f"{'127.0.0.1' if server.host in ('0.0.0.0', '::') else server.host}:{server.port}"
    )
    key = first_key or "<your gateway key: egress keys create --user YOU>"
    header = KEY_HEADER.decode()
    lines = [
        f"egress listening on {base}  (store: {config.store_url.split('://')[0]}, data: {config.resolved_data_dir})",
    ]
    if first_key:
        lines.append(f"Created the first gateway key for {getpass.getuser()} (shown once, store it now): {first_key}")
    lines += [
        "",
        "Claude Code:",
        f"  export ANTHROPIC_BASE_URL={base}",
        f'  export ANTHROPIC_CUSTOM_HEADERS="{header}: {key}"',
        "",
        "Codex CLI (~/.codex/config.toml):",
        '  model_provider = "egress"',
        "  [model_providers.egress]",
        '  name = "egress"',
        f'  base_url = "{base}/v1"',
        '  wire_api = "responses"',
        '  env_key = "OPENAI_API_KEY"',
        f'  env_http_headers = {{ "{header}" = "EGRESS_KEY" }}',
        f"  # and: export EGRESS_KEY={key}",
        "",
        "aider / Continue / Cline / OpenCode (OpenAI-compatible):",
        f"  export OPENAI_BASE_URL={base}/v1   # aider: OPENAI_API_BASE",
        f"  extra header {header}: {key}",
        "",
    ]
    if config.console.enabled:
        lines += [f"Console: {base}/admin   (first account: egress admin add-user NAME --role admin)", ""]
    click.echo("\n".join(lines))


# --- keys --------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Gateway keys: who may use the gateway."""


@keys.command("create")
@_config_option
@click.option("--user", required=True, help="The person the key belongs to.")
@click.option("--team", default=None, help="Their team (used by policy and audit).")
def keys_create(config_path: Path | None, user: str, team: str | None) -> None:
    """Create a key. It is printed once; only its hash is stored."""
    store = open_configured_store(_load(config_path))
    secret, key = new_key(user, team)
    store.create_key(key)
    store.close()
    err_console.print(
        f"created {key.key_id} for {user}" + (f" (team {team})" if team else "") + ". The key is shown once:"
    )
    click.echo(secret)


@keys.command("list")
@_config_option
def keys_list(config_path: Path | None) -> None:
    """List keys (ids, owners, state), never the keys themselves."""
    store = open_configured_store(_load(config_path))
    table = Table("key id", "user", "team", "created", "state")
    for key in store.list_keys():
        table.add_row(
            key.key_id,
            key.user,
            key.team or "",
            _iso(key.created_at),
            f"revoked {_iso(key.revoked_at)}" if key.revoked_at else "active",
        )
    store.close()
    console.print(table)


@keys.command("revoke")
@_config_option
@click.argument("key_id")
def keys_revoke(config_path: Path | None, key_id: str) -> None:
    """Revoke a key by its id (effective within seconds on running gateways)."""
    store = open_configured_store(_load(config_path))
    ok = store.revoke_key(key_id, time.time())
    store.close()
    if not ok:
        err_console.print(f"[red]no active key with id {key_id}[/red]")
        sys.exit(1)
    click.echo(f"revoked {key_id}")


# --- audit -------------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


audit.add_command(replay_command)
audit.add_command(recording_key_group)


@audit.command("verify")
@_config_option
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
def audit_verify(config_path: Path | None, export_file: Path | None, public_key: Path | None) -> None:
    """Check the hash chain and every signed checkpoint; name the first record that breaks them."""
    started = time.perf_counter()
    if export_file is not None:
        if public_key is None:
            raise click.UsageError("--export needs --public-key")
        report, what = _verify_export_file(export_file, _read_public_key(public_key))
        _print_verify(report, what, time.perf_counter() - started, live=False)
        return
    config = _load(config_path)
    key_file = public_key or config.audit_signing_key_file
    public = _read_public_key(key_file) if public_key or key_file.exists() else None
    store = open_configured_store(config)
    try:
        report = verify_store(store, public)
    finally:
        store.close()
    _print_verify(report, "records", time.perf_counter() - started, live=True)


def _read_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, or the public half of a PEM private key (the gateway's own key file)."""
    data = path.read_bytes()
    try:
        if b"PRIVATE KEY" in data:
            return load_or_create_signing_key(path).public_key()
        return load_public_key(data)
    except SigningKeyError as exc:
        err_console.print(f"[red]{path}: {exc}[/red]")
        sys.exit(2)


def _verify_export_file(path: Path, public: Ed25519PublicKey) -> tuple[AuditReport, str]:
    try:
        with path.open("rb") as f:
            export = read_export(f)
    except ExportError as exc:
        err_console.print(f"[red]{path}: {exc}[/red]")
        sys.exit(1)
    what = "complete export" if export.complete else f"filtered export {json.dumps(export.filters, sort_keys=True)}"
    return verify_export(export, public), f"records ({what})"


def _print_verify(report: AuditReport, what: str, elapsed: float, live: bool) -> None:
    chain = report.chain
    for brk in report.breaks:
        rid = f" (request {brk.request_id})" if brk.request_id else ""
        click.echo(f"BROKEN at record {brk.seq}{rid}: {brk.reason}.")
    signed = f"records 1..{report.covered_seq} signed" if report.covered_seq else "none covering a record"
    if chain.ok and chain.last_seq > report.covered_seq and live:
        # Not an error (the next checkpoint comes within checkpoint_interval_s), but an auditor
        # should know which records only the chain protects.
        signed += f"; records {report.covered_seq + 1}..{chain.last_seq} not covered by a checkpoint yet"
    summary = (
        f"{chain.checked} {what} verified in {elapsed:.2f} s; "
        f"{report.checkpoints_verified} checkpoints verified ({signed}); head {chain.last_hash}"
    )
    if report.membership is not None:
        _print_membership(report.membership, chain.checked, report.checkpoints_verified)
    if report.ok:
        click.echo(f"OK: {summary}")
        return
    click.echo(f"FAILED: {summary}")
    sys.exit(1)


def _print_membership(m: Membership, checked: int, checkpoints: int) -> None:
    """What a filtered export proves about its records' membership in the signed log."""
    click.echo(
        f"Records checked: {checked}; {m.proven} proven members of the signed log (inclusion proof to "
        f"a signed checkpoint's Merkle root); {m.not_yet_covered} not yet covered by a signed checkpoint; "
        f"{checkpoints} checkpoints verified."
    )
    if m.not_yet_covered:
        click.echo(
            f"WARNING: {m.not_yet_covered} records are not yet covered by a signed checkpoint, so their "
            "membership is not proven. The gateway signs one at most audit.checkpoint_interval_s after a "
            "record: export them again later."
        )
    if m.v1_only:
        click.echo(
            f"WARNING: {m.v1_only} records are covered only by version 1 checkpoints (no Merkle root), so "
            "their membership cannot be proven by a filtered export: verify a complete export for them."
        )
    click.echo("Note: a filtered export cannot prove that its filter selected every matching record.")


@audit.command("public-key")
@_config_option
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None)
def audit_public_key(config_path: Path | None, output: Path | None) -> None:
    """Print the PEM public key that checks the audit's signed checkpoints (give it to auditors)."""
    config = _load(config_path)
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
@_config_option
@click.option("-n", "count", type=int, default=20, show_default=True, help="How many records.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON lines.")
def audit_tail(config_path: Path | None, count: int, as_json: bool) -> None:
    """Show the newest audit records."""
    store = open_configured_store(_load(config_path))
    rows = store.audit_tail(count)
    store.close()
    if as_json:
        for row in rows:
            click.echo(row.entry.canonical.decode())
        return
    table = Table("seq", "time", "user", "api", "model", "endpoint", "jurisdiction", "outcome", "status", "ms")
    for row in rows:
        rec = orjson.loads(row.entry.canonical)
        table.add_row(
            str(row.seq),
            _iso(rec["ts"]),
            rec.get("user") or "",
            rec.get("api") or "",
            rec.get("model") or "",
            rec.get("endpoint") or "",
            rec.get("jurisdiction") or "",
            rec["outcome"],
            str(rec.get("status") or ""),
            # Approval steps (records of type "approval") have no latency of their own.
            f"{rec['latency_ms']['total']:.1f}" if "latency_ms" in rec else "",
        )
    console.print(table)


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
@_config_option
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
    selector = ExportFilter(**filters)
    store = open_configured_store(_load(config_path))
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
        rec = orjson.loads(row.entry.canonical)
        usage = rec.get("usage") or {}
        values = {
            **rec,
            "seq": row.seq,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
            "input_tokens": usage.get("input_tokens"),
            "output_tokens": usage.get("output_tokens"),
        }
        writer.writerow(["" if values.get(c) is None else values.get(c) for c in _CSV_COLUMNS])
    stream.detach()  # leave the underlying stream open for the caller


# --- config ------------------------------------------------------------------------------------


@main.group("config")
def config_group() -> None:
    """Configuration files."""


@config_group.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--no-env",
    is_flag=True,
    help="check syntax and schema only: credentials named by unset environment variables are not required",
)
def config_check(file: Path, no_env: bool) -> None:
    """Validate a configuration file and explain each error (file, line, key, what is wrong).

    policy.data is checked against the policy's schema: unknown keys, finding kinds, rule ids,
    jurisdictions and endpoint names are errors (docs/policy.md). Warnings name what could not be
    checked. Exit status 2 on any error."""
    try:
        config = load_config(file, require_env=not no_env)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}")
        sys.exit(2)
    for warning in config.warnings:
        click.echo(f"warning: {warning}")
    unset = [e.credentials.env for e in config.providers if e.credentials.env and e.credentials.api_key is None]
    oidc = config.console.oidc
    if oidc is not None and oidc.client_secret_env and oidc.client_secret is None:
        unset.append(oidc.client_secret_env)
    if unset:
        click.echo(f"note: not set, not required with --no-env (serve needs them): {', '.join(unset)}")
    click.echo(
        f"{file}: OK ({len(config.providers)} provider endpoints: {', '.join(e.name for e in config.providers)})"
    )


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
