"""The `egress` command group and `egress serve`; each other command lives in the module named
for its noun (keys, audit, config, …) and is imported when it runs."""

from __future__ import annotations

from pathlib import Path

import click

from egress.cli.entry import COMMANDS
from egress.cli.lazy import LazyGroup
from egress.cli.options import config_option, load_or_exit

# Commands in other modules are imported when they run. (The `egress` executable's root is
# egress.cli.entry, which imports none of this module for --version and --help.)
_LAZY = {name: spec for name, spec in COMMANDS.items() if spec.module != "egress.cli.main"}


@click.group(cls=LazyGroup, lazy=_LAZY)
@click.version_option(package_name="egress")
def main() -> None:
    """egress: decide where your code may go when developers use AI coding agents."""


@main.command()
@config_option
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: Path | None, host: str | None, port: int | None, workers: int | None, log_level: str) -> None:
    """Run the gateway."""
    from egress.cli.serve import run_serve  # imported here: keeps start-up fast

    run_serve(load_or_exit(config_path, host=host, port=port, workers=workers), config_path, log_level)
