"""What several commands share: the --config option and loading it with readable errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

if TYPE_CHECKING:
    from egress.config import Config

err_console = Console(stderr=True, highlight=False)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (YAML). Default: $EGRESS_CONFIG, else the embedded defaults.",
)


def load_or_exit(config_path: Path | None) -> Config:
    """The configuration, or each problem (file, line, key, what is wrong) and exit status 2."""
    # Imported here: a command's --help does not load the configuration machinery.
    from egress.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            err_console.print(f"[red]config error[/red] {problem}")
        sys.exit(2)
