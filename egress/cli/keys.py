"""`egress keys create|list|revoke`: gateway keys, who may use the gateway."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from egress.cli.options import config_option, err_console, iso, load_or_exit, open_store
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format


@click.group()
def keys() -> None:
    """Gateway keys: who may use the gateway."""


@keys.command("create")
@config_option
@click.option("--user", default=None, help="The person the key belongs to.")
@click.option("--team", default=None, help="Their team (used by policy and audit).")
@click.option(
    "--from-csv",
    "csv_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="One key per row of this CSV file (header: user,team). The whole file is checked first: "
    "one bad row and nothing is created.",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="With --from-csv: write user,team,key_id,key to this new file (mode 0600) instead of stdout.",
)
@click.option("--allow-duplicate-users", is_flag=True, help="With --from-csv: one user may have several rows.")
def keys_create(
    config_path: Path | None,
    user: str | None,
    team: str | None,
    csv_path: Path | None,
    output_path: Path | None,
    allow_duplicate_users: bool,
) -> None:
    """Create a key (or one per CSV row). It is printed once; only its hash is stored."""
    if csv_path is not None:
        if user is not None or team is not None:
            raise click.UsageError("--from-csv takes users and teams from the file: drop --user and --team")
        from egress.cli.key_csv import create_keys_from_csv  # imported here: keeps start-up fast

        create_keys_from_csv(config_path, csv_path, output_path, allow_duplicate_users)
        return
    if user is None:
        raise click.UsageError("give --user NAME, or --from-csv FILE")
    if output_path is not None or allow_duplicate_users:
        raise click.UsageError("--output and --allow-duplicate-users go with --from-csv")
    from egress.gateway.auth import new_key  # imported here: keeps start-up fast

    store = open_store(load_or_exit(config_path))
    secret, key = new_key(user, team)
    store.create_key(key)
    store.close()
    err_console.print(
        f"created {key.key_id} for {user}" + (f" (team {team})" if team else "") + ". The key is shown once:"
    )
    click.echo(secret)


_KEYS_TABLE = TableSpec(
    (
        Column("key_id", "key id", no_wrap=True),
        Column("user", "user"),
        Column("team", "team", drop=1),
        Column("created", "created", drop=2),
        Column("state", "state"),
    )
)


@keys.command("list")
@config_option
@format_option
def keys_list(config_path: Path | None, fmt: str, as_json: bool) -> None:
    """List keys (ids, owners, state), never the keys themselves."""
    store = open_store(load_or_exit(config_path))
    rows = [
        (
            key.key_id,
            key.user,
            key.team,
            iso(key.created_at),
            f"revoked {iso(key.revoked_at)}" if key.revoked_at else "active",
        )
        for key in store.list_keys()
    ]
    store.close()
    print_rows(_KEYS_TABLE, rows, resolve_format(fmt, as_json))


@keys.command("revoke")
@config_option
@click.argument("key_id")
def keys_revoke(config_path: Path | None, key_id: str) -> None:
    """Revoke a key by its id (effective within seconds on running gateways)."""
    store = open_store(load_or_exit(config_path))
    ok = store.revoke_key(key_id, time.time())
    store.close()
    if not ok:
        err_console.print(f"[red]no active key with id {key_id}[/red]")
        sys.exit(1)
    click.echo(f"revoked {key_id}")
