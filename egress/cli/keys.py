"""`egress keys create|list|revoke|rotate`: gateway keys, who may use the gateway and for what.

A key may expire (`--expires 30d`), be scoped (`--apis`, `--models`, `--endpoints`) and belong
to a service account (`--service-account ci-build`: a pipeline, input.caller.kind in the policy).
`rotate` issues a successor with the same owner and scope; the old key keeps working for the
overlap (`--overlap 1h`), then expires.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from egress.cli.options import config_option, err_console, iso, load_or_exit, open_store
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format
from egress.core.durations import DurationError, format_duration, parse_duration
from egress.core.exchange import Api
from egress.core.key_scope import KeyScope
from egress.core.records import GatewayKey


class DurationType(click.ParamType[int]):
    """`90s`, `15m`, `12h`, `30d`, `2w`: whole seconds."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except DurationError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in (value or "").split(",") if part.strip()))


def _scope(apis: str | None, models: str | None, endpoints: str | None) -> KeyScope:
    """The scope the options describe; an unknown API name is a usage error (it would match nothing)."""
    scope = KeyScope(apis=_names(apis), models=_names(models), endpoints=_names(endpoints))
    known = {a.value for a in Api} | {a.value.partition(".")[2] for a in Api}
    unknown = [a for a in scope.apis if a not in known]
    if unknown:
        raise click.UsageError(f"--apis: unknown API {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return scope


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
@click.option("--expires", type=DURATION, default=None, help="Lifetime: 90s, 15m, 12h, 30d, 2w. Default: never.")
@click.option("--apis", default=None, help="Only these APIs, comma-separated (messages, responses, …). Default: any.")
@click.option("--models", default=None, help="Only models matching these patterns ('claude-*'). Default: any.")
@click.option("--endpoints", default=None, help="Only these configured endpoints, comma-separated. Default: any.")
@click.option(
    "--service-account",
    "service_account",
    default=None,
    help="The key is this pipeline's (the policy sees a service account); --user is its owner.",
)
def keys_create(
    config_path: Path | None,
    user: str | None,
    team: str | None,
    csv_path: Path | None,
    output_path: Path | None,
    allow_duplicate_users: bool,
    expires: int | None,
    apis: str | None,
    models: str | None,
    endpoints: str | None,
    service_account: str | None,
) -> None:
    """Create a key (or one per CSV row). It is printed once; only its hash is stored."""
    scope = _scope(apis, models, endpoints)
    if csv_path is not None:
        if user is not None or team is not None:
            raise click.UsageError("--from-csv takes users and teams from the file: drop --user and --team")
        if expires is not None or not scope.unrestricted or service_account is not None:
            raise click.UsageError("--expires, --apis, --models, --endpoints and --service-account go with --user")
        from egress.cli.key_csv import create_keys_from_csv  # imported here: keeps start-up fast

        create_keys_from_csv(config_path, csv_path, output_path, allow_duplicate_users)
        return
    if user is None:
        raise click.UsageError("give --user NAME, or --from-csv FILE")
    if output_path is not None or allow_duplicate_users:
        raise click.UsageError("--output and --allow-duplicate-users go with --from-csv")
    from egress.gateway.auth import new_key  # imported here: keeps start-up fast

    config = load_or_exit(config_path)
    configured = {e.name for e in config.providers}
    stray = [e for e in scope.endpoints if e not in configured]
    if stray:
        # A warning, not an error: the key may be meant for an endpoint added later.
        err_console.print(f"[yellow]warning: --endpoints names {stray[0]!r}, which is not configured[/yellow]")
    store = open_store(config)
    expires_at = time.time() + expires if expires is not None else None
    secret, key = new_key(user, team, expires_at=expires_at, scope=scope, service_account=service_account)
    store.create_key(key)
    store.close()
    who = f"service account {service_account} (owner {user})" if service_account else user
    err_console.print(
        f"created {key.key_id} for {who}"
        + (f" (team {team})" if team else "")
        + (f", expires {iso(expires_at)}" if expires_at else "")
        + (f", scope {scope.describe()}" if not scope.unrestricted else "")
        + ". The key is shown once:"
    )
    click.echo(secret)


@keys.command("rotate")
@config_option
@click.argument("key_id")
@click.option(
    "--overlap",
    type=DURATION,
    default="1h",
    show_default=True,
    help="How long the old key keeps working beside its successor.",
)
def keys_rotate(config_path: Path | None, key_id: str, overlap: int) -> None:
    """Issue a successor to a key (same owner, team, scope, service account and lifetime); the old
    key expires when the overlap ends. The new key is printed once."""
    from egress.gateway.auth import new_key  # imported here: keeps start-up fast

    store = open_store(load_or_exit(config_path))
    try:
        old = store.get_key(key_id)
        now = time.time()
        if old is None or old.revoked_at is not None or old.expired(now):
            err_console.print(f"[red]no active key with id {key_id}[/red]")
            sys.exit(1)
        lifetime = None if old.expires_at is None else max(old.expires_at - old.created_at, 1.0)
        secret, key = new_key(
            old.user,
            old.team,
            expires_at=None if lifetime is None else now + lifetime,
            scope=old.scope,
            service_account=old.service_account,
            rotated_from=old.key_id,
        )
        if not store.rotate_key(old.key_id, key, now + overlap):
            err_console.print(f"[red]no active key with id {key_id}[/red]")
            sys.exit(1)
    finally:
        store.close()
    err_console.print(
        f"created {key.key_id}, successor of {old.key_id}; {old.key_id} keeps working for "
        f"{format_duration(overlap)} (until {iso(now + overlap)}). The new key is shown once:"
    )
    click.echo(secret)


_KEYS_TABLE = TableSpec(
    (
        Column("key_id", "key id", no_wrap=True),
        Column("user", "user"),
        Column("service_account", "service account", drop=2),
        Column("team", "team", drop=3),
        Column("scope", "scope"),
        Column("expires", "expires", drop=1),
        Column("last_used", "last used", drop=1),
        Column("created", "created", drop=4),
        Column("state", "state"),
    )
)


def _state(key: GatewayKey, now: float) -> str:
    if key.revoked_at:
        return f"revoked {iso(key.revoked_at)}"
    if key.expired(now):
        return "expired"
    return "active"


@keys.command("list")
@config_option
@format_option
def keys_list(config_path: Path | None, fmt: str, as_json: bool) -> None:
    """List keys (ids, owners, state), never the keys themselves."""
    store = open_store(load_or_exit(config_path))
    now = time.time()
    rows = [
        (
            key.key_id,
            key.user,
            key.service_account,
            key.team,
            key.scope.describe(),
            iso(key.expires_at) if key.expires_at else "never",
            iso(key.last_used_at) if key.last_used_at else "never",
            iso(key.created_at),
            _state(key, now),
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
