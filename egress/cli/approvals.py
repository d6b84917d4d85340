"""`egress approvals`: list pending approvals and decide them from a terminal.

Decisions go to the shared store (every gateway process and replica sees them) and each one is
appended to the audit chain with the approver's identity: `cli:<os user>`, or `--as NAME`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson
from rich.console import Console

from egress.cli.options import config_option, err_console, load_or_exit, open_store, os_user
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format

if TYPE_CHECKING:
    from egress.approve import Approval, Approvals
    from egress.store.base import SqlStore

console = Console(highlight=False)


def _open(config_path: Path | None) -> tuple[Approvals, SqlStore]:
    from egress.app import build_approvals  # imported here: --help stays fast

    config = load_or_exit(config_path)
    store = open_store(config)
    return build_approvals(config, store), store


@click.group("approvals")
def approvals_command() -> None:
    """Requests held for an approver: list, approve, deny."""


def _age(ts: float, now: float) -> str:
    seconds = max(int(now - ts), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}×{n}" for name, n in sorted(counts.items()))


def _as_json(a: Approval) -> bytes:
    return orjson.dumps(dataclasses.asdict(a), option=orjson.OPT_SORT_KEYS)


@approvals_command.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Every recent approval, not only pending ones.")
@click.option("--team", default=None, help="Only this team's approvals.")
@click.option("--limit", type=int, default=50, show_default=True, help="With --all: how many.")
@format_option
def approvals_list(
    config_path: Path | None, show_all: bool, team: str | None, limit: int, fmt: str, as_json: bool
) -> None:
    """Pending approvals (newest first), or with --all the recent ones in any state."""
    approvals, store = _open(config_path)
    try:
        rows = approvals.recent(limit, team) if show_all else approvals.pending(team)
    finally:
        store.close()
    resolved = resolve_format(fmt, as_json)
    if resolved == "json":  # one JSON document per line, every field
        for a in rows:
            click.echo(_as_json(a).decode())
        return
    if not rows:
        click.echo("no pending approvals" if not show_all else "no approvals")
        return
    now = time.time()
    table = [
        (
            a.approval_id,
            _age(a.created_at, now),
            a.user,
            a.team,
            a.model,
            _counts(a.kinds),
            "; ".join(a.reasons),
            a.status + (f" by {a.decided_by}" if a.decided_by else ""),
            time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(a.expires_at)),
        )
        for a in rows
    ]
    print_rows(APPROVALS_TABLE, table, resolved)


APPROVALS_TABLE = TableSpec(
    (
        Column("id", "id", no_wrap=True),  # whole, to be copied into `egress approvals approve`
        Column("age", "age", no_wrap=True),
        Column("user", "user"),
        Column("team", "team", drop=3),
        Column("model", "model", drop=2),
        Column("kinds", "kinds"),
        Column("reasons", "reasons", drop=1),
        Column("status", "status"),
        Column("expires", "expires", drop=4),
    )
)


def _approver(name: str | None) -> str:
    return name if name else f"cli:{os_user()}"


def _decide(config_path: Path | None, approval_id: str, approve: bool, name: str | None, note: str | None) -> None:
    from egress.approve import ApprovalError  # imported here: --help stays fast

    approvals, store = _open(config_path)
    try:
        decide = approvals.approve if approve else approvals.deny
        decided = decide(approval_id, _approver(name), note)
    except ApprovalError as exc:
        err_console.print(f"[red]{exc}[/red]")
        sys.exit(1)
    finally:
        store.close()
    if approve:
        until = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(decided.expires_at))
        click.echo(f"approved {decided.approval_id} as {decided.decided_by} (usable once until {until})")
    else:
        click.echo(f"denied {decided.approval_id} as {decided.decided_by}")


_as_option = click.option("--as", "name", default=None, help="The approver's name (default cli:<your OS user>).")
_note_option = click.option("--note", default=None, help="Why (kept in the audit).")


@approvals_command.command("approve")
@config_option
@click.argument("approval_id")
@_as_option
@_note_option
def approvals_approve(config_path: Path | None, approval_id: str, name: str | None, note: str | None) -> None:
    """Approve a held request: it goes out (hold mode), or its identical retry passes once."""
    _decide(config_path, approval_id, True, name, note)


@approvals_command.command("deny")
@config_option
@click.argument("approval_id")
@_as_option
@_note_option
def approvals_deny(config_path: Path | None, approval_id: str, name: str | None, note: str | None) -> None:
    """Deny a held request: it is refused with a native error."""
    _decide(config_path, approval_id, False, name, note)
