"""Tables the CLI prints: fitted to the terminal, plain columns through a pipe, or JSON.

- On a terminal (or `--format table`): a rich table as wide as the terminal. Cells wrap at word
  boundaries; when even the narrowest wrapping does not fit, the lowest-priority columns are left
  out (the note under the table names them) rather than cutting words apart.
- Through a pipe (or `--format plain`): one line per row, cells separated by tabs, a header line
  first; no borders, no colours, no wrapping, so `cut -f`, `awk -F'\\t'` and `sort` work.
- `--format json`: the rows as a JSON array of objects, keyed by each column's `key`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click
import orjson

FORMATS = ("auto", "table", "plain", "json")


@dataclass(frozen=True)
class Column:
    key: str  # the JSON field
    header: str
    drop: int = 0  # 0: always shown; among the others the highest is left out first when narrow
    no_wrap: bool = False  # identifiers: shown whole or not at all
    justify: str = "left"


@dataclass(frozen=True)
class TableSpec:
    columns: tuple[Column, ...]
    title: str | None = None


Row = Sequence[Any]  # one value per column, in the spec's order


def format_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--format auto|table|plain|json` (auto: a table on a terminal, plain columns otherwise) and
    `--json`, kept as an alias of `--format json`."""
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines (same as --format json).")(fn)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="auto",
        show_default=True,
        help="table: fitted to the terminal; plain: tab-separated columns; json. auto: table on a "
        "terminal, plain through a pipe.",
    )(fn)


def resolve_format(fmt: str, as_json: bool) -> str:
    """The format to print in: `--json` wins; auto is a table on a terminal, else plain."""
    if as_json:
        return "json"
    if fmt != "auto":
        return fmt
    return "table" if _stdout_is_terminal() else "plain"


def _stdout_is_terminal() -> bool:
    from rich.console import Console  # imported here: keeps start-up fast

    return Console().is_terminal


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def print_rows(spec: TableSpec, rows: Sequence[Row], fmt: str) -> None:
    """Print one table in a resolved format (see `resolve_format`)."""
    if fmt == "json":
        click.echo(orjson.dumps(json_rows(spec, rows), option=orjson.OPT_INDENT_2).decode())
    elif fmt == "plain":
        click.echo(plain(spec, rows), nl=False)
    else:
        print_table(spec, rows)


def json_rows(spec: TableSpec, rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [{c.key: v for c, v in zip(spec.columns, row, strict=True)} for row in rows]


def plain(spec: TableSpec, rows: Sequence[Row]) -> str:
    """Tab-separated, header first (after a `# title` line when the table has a title); a cell's
    own tabs and line breaks become spaces."""

    def cell(value: Any) -> str:
        return " ".join(_text(value).split())

    lines = [f"# {spec.title}"] if spec.title else []
    lines.append("\t".join(c.header for c in spec.columns))
    lines += ["\t".join(cell(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def print_table(spec: TableSpec, rows: Sequence[Row], width: int | None = None) -> None:
    from rich.console import Console  # imported here: keeps start-up fast

    console = Console(highlight=False, width=width)
    table, hidden = fitted_table(spec, rows, console.width)
    console.print(table)
    if hidden:
        console.print(
            f"[dim]not shown at this width ({console.width} columns): {', '.join(hidden)}; "
            "widen the terminal or use --format json[/dim]"
        )


def fitted_table(spec: TableSpec, rows: Sequence[Row], width: int) -> tuple[Any, list[str]]:
    """The rich table that fits `width` with the fewest columns left out, and the headers left out.

    A column is never narrower than its longest word (its longest cell, if it does not wrap), so
    nothing is cut: when those minimums do not fit, the next column in drop order goes."""
    minimums = [_min_width(c, [row[i] for row in rows]) for i, c in enumerate(spec.columns)]
    shown = list(range(len(spec.columns)))
    droppable = sorted((i for i, c in enumerate(spec.columns) if c.drop), key=lambda i: (-spec.columns[i].drop, -i))

    # Each column adds one space of padding either side and a border; the table one more border.
    def needed() -> int:
        return sum(minimums[i] + 3 for i in shown) + 1

    while needed() > width and droppable:
        shown.remove(droppable.pop(0))
    hidden = [spec.columns[i].header for i in range(len(spec.columns)) if i not in shown]
    # Still too wide (a URL longer than the terminal): such a word folds onto the next line whole.
    return _build(spec, rows, shown, minimums if needed() <= width else None), hidden


def _min_width(column: Column, values: Sequence[Any]) -> int:
    from rich.cells import cell_len  # imported here: keeps start-up fast

    texts = [column.header, *(_text(v) for v in values)]
    if column.no_wrap:
        return max(cell_len(line) for t in texts for line in t.splitlines() or [""])
    return max((cell_len(word) for t in texts for word in t.split()), default=1)


def _build(spec: TableSpec, rows: Sequence[Row], shown: list[int], minimums: list[int] | None) -> Any:
    from rich.table import Table  # imported here: keeps start-up fast

    table = Table(title=spec.title, title_justify="left")
    for i in shown:
        column = spec.columns[i]
        table.add_column(
            column.header,
            no_wrap=column.no_wrap,
            justify=column.justify,  # type: ignore[arg-type]
            min_width=minimums[i] if minimums else None,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(_escape(_text(row[i])) for i in shown))
    return table


def _escape(text: str) -> str:
    from rich.markup import escape  # imported here: keeps start-up fast

    return escape(text)
