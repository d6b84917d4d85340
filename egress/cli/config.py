"""`egress config check`: validate a configuration file and explain each error."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group("config")
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
    # Imported here: `egress config --help` does not load the configuration machinery.
    from egress.config import ConfigError, load_config

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
