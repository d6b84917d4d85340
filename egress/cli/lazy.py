"""A click group whose subcommands are imported when they run, not when the CLI starts.

`egress --version`, `egress --help` and the commands that do not scan must start fast (issue
#12: at most 0.3 s); importing every command module would load the detection engine, the ASGI
server and the cryptography libraries first. Each lazy subcommand is named with its module, the
command object's name in it, and its one-line help (shown by `--help` without importing it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class LazyCommand:
    module: str
    attribute: str
    short_help: str


class LazyGroup(click.Group):
    def __init__(self, *args: object, lazy: dict[str, LazyCommand] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy:
            return command
        spec = self.lazy[cmd_name]
        loaded = getattr(importlib.import_module(spec.module), spec.attribute)
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{spec.module}.{spec.attribute} is not a click command")
        self.add_command(loaded, cmd_name)
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, without importing the lazy commands for their help text."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name].short_help))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
