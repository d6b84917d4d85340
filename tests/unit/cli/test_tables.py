"""CLI tables at 80 columns (snapshots in tests/unit/cli/snapshots), through a pipe, and as JSON.

A snapshot is the exact text a user sees in an 80-column terminal: if a change alters it,
look at the new output, and if it reads well, update the file (`EGRESS_UPDATE_SNAPSHOTS=1`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from egress.cli.audit import _AUDIT_TABLE
from egress.cli.keys import _KEYS_TABLE
from egress.cli.main import main
from egress.cli.scan import FINDINGS_TABLE
from egress.cli.tables import Column, TableSpec, fitted_table, plain, print_table
from egress.config import default_cache_dir

SNAPSHOTS = Path(__file__).parent / "snapshots"


def matches_snapshot(name: str, text: str) -> None:
    got = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    path = SNAPSHOTS / name
    if os.environ.get("EGRESS_UPDATE_SNAPSHOTS") == "1":
        path.write_text(got)
    assert path.is_file(), f"missing snapshot {path} (run once with EGRESS_UPDATE_SNAPSHOTS=1 and review it)"
    assert got == path.read_text(), f"{name} differs from its snapshot"


def assert_fits(text: str, width: int = 80) -> None:
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width


def cli(*args: str, tmp_path: Path, columns: int = 80):
    env = {
        "COLUMNS": str(columns),
        "HOME": str(tmp_path),
        "EGRESS_DATA_DIR": str(tmp_path / "data"),
        # The compiled rule automaton (scan) is cached outside the temporary HOME: seconds to build.
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }
    return CliRunner().invoke(main, list(args), env=env)


def test_providers_at_80_columns(tmp_path):
    result = cli("providers", "--format", "table", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    matches_snapshot("providers-80.txt", result.stdout)
    # The columns left out are named, never silently cut.
    assert "not shown at this width (80 columns): operator, inference location" in result.stdout


def test_providers_wide_terminal_shows_every_column(tmp_path):
    result = cli("providers", "--format", "table", tmp_path=tmp_path, columns=400)
    assert result.exit_code == 0, result.output
    assert "not shown at this width" not in result.stdout
    assert "government access" in result.stdout and "FISA Section 702" in result.stdout


def test_providers_one_catalog_entry_at_80_columns(tmp_path):
    result = cli("providers", "--format", "table", "--id", "anthropic", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    matches_snapshot("providers-entry-80.txt", result.stdout)


def test_providers_through_a_pipe_are_tab_separated(tmp_path):
    result = cli("providers", tmp_path=tmp_path)  # CliRunner's stdout is not a terminal
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "# Provider catalog 2026-11-26"
    header = lines[1].split("\t")
    assert header[:3] == ["id", "operator", "where"] and "policy fit" in header
    anthropic = next(line.split("\t") for line in lines if line.startswith("anthropic\t"))
    assert len(anthropic) == len(header) and anthropic[2] == "US · us"
    assert "┃" not in result.stdout and "\x1b[" not in result.stdout


def test_format_json_and_the_json_alias_agree(tmp_path):
    by_format = cli("providers", "--format", "json", tmp_path=tmp_path)
    by_alias = cli("providers", "--json", tmp_path=tmp_path)
    assert by_format.exit_code == by_alias.exit_code == 0
    assert json.loads(by_format.stdout) == json.loads(by_alias.stdout)
    assert json.loads(by_format.stdout)["endpoints"][0]["name"] == "anthropic"


def test_scan_at_80_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths in the table, the same in every run
    Path("src").mkdir()
    Path("src/deploy_settings_for_production.py").write_text(
        'owner = "maria.rossi@acme-robotics.it"\naws_key = "AKIAZ7XK4JQ2MNBVC5LW"\n'
    )
    result = cli("scan", "src", "--format", "table", tmp_path=tmp_path)
    assert result.exit_code == 1, result.output  # a high-severity finding
    assert_fits(result.stdout)
    matches_snapshot("scan-80.txt", result.stdout)


KEYS = [
    (
        "key_3f9a0c1d2e4b",
        "maria.rossi",
        None,
        "payments",
        "apis=messages models=claude-*",
        "2027-01-01T09:15:00Z",
        "2026-12-06T17:40:12Z",
        "2026-12-01T09:15:00Z",
        "active",
    ),
    (
        "key_77b1e0aa9c3d",
        "jonas.berg",
        "ci-build",
        "platform-infrastructure",
        "any",
        "never",
        "never",
        "2026-12-02T14:02:11Z",
        "revoked 2026-12-05T08:00:00Z",
    ),
]


def test_keys_table_at_80_columns(capsys):
    print_table(_KEYS_TABLE, KEYS, width=80)
    out = capsys.readouterr().out
    assert_fits(out)
    matches_snapshot("keys-80.txt", out)


AUDIT = [
    (
        1041,
        "2026-12-07T04:20:01Z",
        "maria.rossi",
        "anthropic.messages",
        "claude-sonnet-4-5",
        "anthropic",
        "US",
        "forwarded",
        200,
        "812.4",
    ),
    (1042, "2026-12-07T04:20:09Z", "jonas.berg", "openai.responses", "gpt-5-codex", None, None, "refused", 403, "3.1"),
]


def test_audit_tail_table_at_80_columns(capsys):
    print_table(_AUDIT_TABLE, AUDIT, width=80)
    out = capsys.readouterr().out
    assert_fits(out)
    matches_snapshot("audit-tail-80.txt", out)


def test_plain_output_keeps_one_line_per_row():
    row = ("a\tb.py", 3, 1, "secret", "aws", "high", "AK…\n(20 chars)", "certain")
    text = plain(FINDINGS_TABLE, [row])
    assert text == (
        "path\tline\tcol\tkind\trule\tseverity\tpreview\ttier\n"
        "a b.py\t3\t1\tsecret\taws\thigh\tAK… (20 chars)\tcertain\n"
    )


@pytest.mark.parametrize("width", [45, 60, 80, 120])
def test_a_word_is_never_cut_while_a_column_can_be_left_out(width):
    spec = TableSpec(
        (
            Column("id", "id", no_wrap=True),
            Column("what", "what"),
            Column("detail", "detail", drop=1),
            Column("more", "more", drop=2),
        )
    )
    rows = [("key_0123456789", "internationalisation considerations", "extraordinarily long words", "x")]
    table, hidden = fitted_table(spec, rows, width)
    from rich.console import Console

    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115 - closed with the console
    console.print(table)
    out = console.export_text()
    for word in ("key_0123456789", "internationalisation", "considerations"):
        assert word in out
    if "detail" not in hidden:
        assert "extraordinarily" in out
    assert "…" not in out
    # Minimum widths (longest word + 3 each, + 1): all 66, without "more" 59, without "detail" too 41.
    assert hidden == {45: ["detail", "more"], 60: ["more"], 80: [], 120: []}[width]
