"""`egress admin`: console accounts (the web console at /admin)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from egress.cli.options import config_option, err_console, load_or_exit, open_store
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format

if TYPE_CHECKING:
    from egress.store.base import SqlStore

console = Console(highlight=False)


@contextmanager
def _store(config_path: Path | None) -> Iterator[SqlStore]:
    store = open_store(load_or_exit(config_path))
    try:
        yield store
    finally:
        store.close()


@click.group("admin")
def admin_command() -> None:
    """Console accounts: who may sign in to /admin."""


@admin_command.command("add-user")
@config_option
@click.argument("name")
@click.option("--role", required=True, help="admin (sees everything) or team-lead (sees one team).")
@click.option("--team", default=None, help="The team a team lead sees and approves for.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
def add_user(config_path: Path | None, name: str, role: str, team: str | None, password_stdin: bool) -> None:
    """Create a local console account. The password is asked for (or read from stdin); only its
    argon2 hash is stored."""
    from egress.admin.accounts import AccountError, Passwords, new_account, parse_role  # imported here: --help

    try:
        parsed = parse_role(role)
    except AccountError as exc:
        raise click.BadParameter(str(exc), param_hint="--role") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = new_account(Passwords(), name, parsed, team, password)
    except AccountError as exc:
        raise click.UsageError(str(exc)) from None
    with _store(config_path) as store:
        created = store.console_user_create(user)
    if not created:
        raise click.UsageError(f"a console account named {name!r} exists already (remove-user it first)")
    scope = "every team" if user.team is None else f"team {user.team}"
    err_console.print(f"created console account {name} ({parsed.value.replace('_', ' ')}, {scope})")


_USERS_TABLE = TableSpec(
    (
        Column("account", "account", no_wrap=True),
        Column("role", "role"),
        Column("team", "team"),
        Column("created", "created", drop=1),
    )
)


@admin_command.command("list-users")
@config_option
@format_option
def list_users(config_path: Path | None, fmt: str, as_json: bool) -> None:
    """List console accounts (never their password hashes)."""
    with _store(config_path) as store:
        users = store.console_users()
    rows = [
        (
            user.name,
            user.role.replace("_", "-"),
            user.team,
            datetime.fromtimestamp(user.created_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        )
        for user in users
    ]
    print_rows(_USERS_TABLE, rows, resolve_format(fmt, as_json))


@admin_command.command("remove-user")
@config_option
@click.argument("name")
def remove_user(config_path: Path | None, name: str) -> None:
    """Remove a console account and end its sessions."""
    with _store(config_path) as store:
        removed = store.console_user_remove(name)
    if not removed:
        raise click.UsageError(f"no console account named {name!r}")
    err_console.print(f"removed console account {name}; its sessions have ended")
