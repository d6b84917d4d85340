"""What the commands share: the one --config option, loading the configuration with readable
errors, and opening the configured store.

Imported by every command module, so it imports no heavy library at module level: a command's
`--help` must not load the configuration machinery (pydantic, the rule files, the OIDC client)
or a database driver (tests/unit/cli/test_startup.py)."""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

if TYPE_CHECKING:
    from egress.config import Config
    from egress.store.base import SqlStore

err_console = Console(stderr=True, highlight=False)

CONFIG_HELP = "Configuration file (YAML). Default: $EGRESS_CONFIG, else the embedded defaults."

F = TypeVar("F", bound=Callable[..., Any])


def os_user() -> str:
    """Who runs the command, for naming what it creates. A container may run under a user id with
    no passwd entry (Kubernetes' runAsUser): then `uid-<n>`, never a crash."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def config_option_with(help_text: str) -> Callable[[F], F]:
    """`--config FILE` (the parameter `config_path`), with a command's own help text."""
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None, help=help_text
    )


config_option = config_option_with(CONFIG_HELP)


def load_or_exit(config_path: Path | None, **overrides: Any) -> Config:
    """The configuration, or each problem (file, line, key, what is wrong) and exit status 2."""
    # Imported here: a command's --help does not load the configuration machinery.
    from egress.config import ConfigError, load_config

    try:
        return load_config(config_path, **overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            err_console.print(f"[red]config error[/red] {problem}")
        sys.exit(2)


def open_store(config: Config) -> SqlStore:
    """The configured store, migrated, as the gateway opens it (without importing the gateway)."""
    from egress.store.open import open_migrated  # imported here: a database driver is heavy

    return open_migrated(
        config.store_url,
        config.resolved_data_dir,
        config.store,
    )


def iso(ts: float | None) -> str:
    """A Unix time as ISO 8601 UTC to the second; empty for None."""
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
