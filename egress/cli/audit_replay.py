"""`egress audit replay REQUEST_ID` and `egress audit recording-key …`: recorded payloads.

Exit codes of `replay`: 0 shown and verified; 1 no such request, not recorded, or its payloads
expired (retention); 2 a payload does not match the digest the audit chain holds, or does not
open (altered, moved from another record, or its key was pruned).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson
from rich.console import Console
from rich.table import Table

from egress.cli.options import config_option, load_or_exit, open_store
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format
from egress.config import Config
from egress.core.audit_record import AuditRecord, parse_record
from egress.core.exchange import Api
from egress.recording.keys import (
    RecordingKeyError,
    SealError,
    load_recording_keys,
    prune_recording_keys,
    rotate_recording_key,
)
from egress.recording.recordings import Recordings, Replay
from egress.store.base import SqlStore
from egress.wire.apis import answer_text

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_NOT_FOUND = 1
EXIT_MISMATCH = 2


@click.command("replay")
@config_option
@click.argument("request_id")
@click.option("--raw", is_flag=True, help="Show the received bytes exactly as the upstream sent them.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def replay_command(config_path: Path | None, request_id: str, raw: bool, as_json: bool) -> None:
    """Show what a recorded request sent upstream and received, and what was masked (kinds only).

    The payloads are checked against the digests in the request's audit record."""
    config = load_or_exit(config_path)
    store = open_store(config)
    try:
        record = _audit_record(store, request_id)
        replay = _open(config, store, request_id, record)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps(_as_json(replay, record), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(replay, record, raw)
    if not replay.digests_match:
        sys.exit(EXIT_MISMATCH)


def _audit_record(store: SqlStore, request_id: str) -> AuditRecord | None:
    stored = store.audit_by_request(request_id)
    return parse_record(stored.entry.canonical) if stored is not None else None


def _open(config: Config, store: SqlStore, request_id: str, record: AuditRecord | None) -> Replay:
    """The replay, or exit with what is missing."""
    # A request that was never recorded needs no key (the key file may not exist here).
    replay = _opened(config, store, request_id) if store.get_recording(request_id) is not None else None
    if replay is None:
        if record is None:
            _fail(f"no request {request_id} in the audit", EXIT_NOT_FOUND)
        if record.recorded:
            _fail(f"request {request_id} was recorded, but its recording is gone (deleted)", EXIT_NOT_FOUND)
        _fail(
            f"request {request_id} was not recorded (its policy decision carried no record_payload obligation)",
            EXIT_NOT_FOUND,
        )
    if replay.expired:
        _fail(
            f"request {request_id}: its payloads expired (recording.retention_days) and were deleted; "
            "the audit chain still holds their digests",
            EXIT_NOT_FOUND,
        )
    return replay


def _opened(config: Config, store: SqlStore, request_id: str) -> Replay | None:
    try:
        keys = load_recording_keys(config.recording_key_file)
    except RecordingKeyError as exc:
        _fail(f"request {request_id} was recorded, but {exc}", EXIT_MISMATCH)
    try:
        return Recordings(store, keys).replay(request_id)
    except SealError as exc:
        _fail(f"request {request_id}: {exc}; refusing to show it", EXIT_MISMATCH)


def _fail(message: str, code: int) -> NoReturn:
    err_console.print(f"[red]{message}[/red]")
    sys.exit(code)


def _received_text(replay: Replay) -> str:
    try:
        api = Api(replay.api) if replay.api else None
    except ValueError:
        api = None
    return answer_text(api, replay.received, replay.stream) if api is not None else ""


def _pretty(body: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def _summary(record: AuditRecord | None) -> dict[str, Any]:
    if record is None:
        return {}
    decision = record.decision
    return {
        "ts": record.ts,
        "user": record.user,
        "team": record.team,
        "client": record.client,
        "api": record.api,
        "model": record.model,
        "endpoint": record.endpoint,
        "jurisdiction": record.jurisdiction,
        "region": record.region,
        "outcome": record.outcome,
        "status": record.status,
        "decision": (
            {
                "action": decision.action,
                "reasons": list(decision.reasons),
                "obligations": list(decision.obligations),
                "policy_revision": decision.policy_revision,
            }
            if decision is not None
            else dict.fromkeys(("action", "reasons", "obligations", "policy_revision"))
        ),
    }


def _verdict(replay: Replay) -> str:
    if replay.digests_match:
        unchecked = " (the sent body was cut at recording.max_bytes: only the answer checked)"
        return "payloads match the digests in the audit chain" + (unchecked if replay.sent_truncated else "")
    return f"MISMATCH: {', '.join(replay.mismatched)} payload(s) differ from the digests in the audit chain"


def _as_json(replay: Replay, record: AuditRecord | None) -> dict[str, Any]:
    try:
        sent: Any = orjson.loads(replay.sent)
    except orjson.JSONDecodeError:
        sent = replay.sent.decode("utf-8", errors="replace")
    return {
        "request_id": replay.request_id,
        "recorded_at": replay.recorded_at,
        "audit": _summary(record),
        "endpoint": replay.endpoint,
        "upstream_path": replay.upstream_path,
        "status": replay.status,
        "stream": replay.stream,
        "masked_kinds": replay.masked_kinds,
        "sent": sent,
        "received_text": _received_text(replay),
        "received_raw": replay.received.decode("utf-8", errors="replace"),
        "sent_truncated": replay.sent_truncated,
        "received_truncated": replay.received_truncated,
        "digests_match": replay.digests_match,
        "mismatched": list(replay.mismatched),
    }


def _print(replay: Replay, record: AuditRecord | None, raw: bool) -> None:
    summary = _summary(record)
    table = Table(show_header=False, box=None)
    decision = summary.get("decision") or {}
    for name, value in (
        ("request", replay.request_id),
        ("when", _iso(summary.get("ts") or replay.recorded_at)),
        (
            "who",
            f"{summary.get('user') or '-'} (team {summary.get('team') or '-'}, client {summary.get('client') or '-'})",
        ),
        ("api / model", f"{summary.get('api') or '-'} / {summary.get('model') or '-'}"),
        ("endpoint", f"{replay.endpoint or '-'} {replay.upstream_path or ''}".strip()),
        ("jurisdiction", f"{summary.get('jurisdiction') or '-'} ({summary.get('region') or '-'})"),
        ("decision", f"{decision.get('action') or '-'}; " + "; ".join(decision.get("reasons") or [])),
        ("outcome", f"{summary.get('outcome') or '-'}, upstream status {replay.status}"),
        ("masked", ", ".join(f"{k} x{n}" for k, n in sorted(replay.masked_kinds.items())) or "nothing"),
        ("integrity", _verdict(replay)),
    ):
        table.add_row(f"[bold]{name}[/bold]", value)
    console.print(table)
    click.echo("\n--- sent upstream (masked) " + ("[cut at recording.max_bytes] " if replay.sent_truncated else ""))
    click.echo(_pretty(replay.sent))
    cut = "[cut at recording.max_bytes] " if replay.received_truncated else ""
    if raw or not replay.stream:
        click.echo(f"\n--- received (exact bytes) {cut}")
        click.echo(replay.received.decode("utf-8", errors="replace") if raw else _pretty(replay.received))
    else:
        click.echo(f"\n--- received: the answer's text (--raw for the exact event stream) {cut}")
        click.echo(_received_text(replay))


def _iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts is not None else "-"


# --- recording keys ----------------------------------------------------------------------------


@click.group("recording-key")
def recording_key_group() -> None:
    """The keys that seal recorded payloads (docs/recording.md: rotation)."""


@recording_key_group.command("rotate")
@config_option
def recording_key_rotate(config_path: Path | None) -> None:
    """Add a new current key; older keys stay to open what they sealed. Restart the gateway to seal with it."""
    config = load_or_exit(config_path)
    try:
        keys = rotate_recording_key(config.recording_key_file)
    except RecordingKeyError as exc:
        _fail(str(exc), 2)
    click.echo(
        f"new current recording key {keys.current}; {len(keys.keys) - 1} older key(s) kept to open older payloads. "
        "Restart the gateway to seal new payloads with it; run `egress audit recording-key prune` after "
        f"recording.retention_days ({config.recording.retention_days:g}) to drop keys no payload needs."
    )


@recording_key_group.command("prune")
@config_option
def recording_key_prune(config_path: Path | None) -> None:
    """Drop the keys that no stored payload needs any more (never the current one)."""
    config = load_or_exit(config_path)
    store = open_store(config)
    try:
        dropped = prune_recording_keys(config.recording_key_file, store.recording_key_ids())
    except RecordingKeyError as exc:
        _fail(str(exc), 2)
    finally:
        store.close()
    click.echo(f"dropped {len(dropped)} key(s): {', '.join(dropped)}" if dropped else "no key to drop")


_RECORDING_KEYS_TABLE = TableSpec(
    (
        Column("key_id", "key id", no_wrap=True),
        Column("current", "current"),
        Column("needed", "stored payloads need it"),
    )
)


@recording_key_group.command("list")
@config_option
@format_option
def recording_key_list(config_path: Path | None, fmt: str, as_json: bool) -> None:
    """The key ids (never the keys), which is current, and which stored payloads still need."""
    config = load_or_exit(config_path)
    store = open_store(config)
    try:
        keys = load_recording_keys(config.recording_key_file)
        in_use = store.recording_key_ids()
    except RecordingKeyError as exc:
        _fail(str(exc), 2)
    finally:
        store.close()
    rows = [(kid, "yes" if kid == keys.current else "", "yes" if kid in in_use else "no") for kid in keys.keys]
    print_rows(_RECORDING_KEYS_TABLE, rows, resolve_format(fmt, as_json))
