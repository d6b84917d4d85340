"""`egress scan`: the gateway's inspection engine as a command for CI and laptops."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson
import pathspec
import re2
from rich.console import Console
from rich.progress import Progress

from egress.cli.options import config_option_with
from egress.cli.scan_plan import Plan, PlanCache, plan_key
from egress.cli.tables import Column, TableSpec, print_rows, resolve_format
from egress.core.exchange import Tier
from egress.detect.compiled_cache import FileBlobCache
from egress.detect.engine import RuleMatcher
from egress.detect.rules import SEVERITIES, Rule, RuleError, RuleSet, load_rule_files
from egress.detect.scan import TextScanner

# The configuration (pydantic, YAML) is read only on a cold start, when no cached plan fits
# (egress/cli/scan_plan.py): a warm start, as in a pre-commit hook, never imports it.

MAX_FILE_BYTES = 5 * 1024 * 1024
TIERS = tuple(t.value for t in Tier)  # most certain first
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}


@dataclass(frozen=True, slots=True)
class FileFinding:
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    kind: str
    rule: str
    severity: str
    preview: str
    description: str
    tier: str = "certain"  # certain | likely (docs/detection.md); path rules are certain


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


class FileScanner:
    def __init__(self, matcher: RuleMatcher) -> None:
        ruleset = matcher.ruleset
        self.ruleset = ruleset
        self.text_scanner = TextScanner(matcher, cache_chars=0)
        self._rules = {r.id: r for r in ruleset.rules}
        self._path_rules = [(r, re2.compile(r.path)) for r in ruleset.rules if r.path and not r.regex]
        self._rule_paths = {r.id: re2.compile(r.path) for r in ruleset.rules if r.path and r.regex}
        self._allow_paths = [re2.compile(p) for a in ruleset.allowlists if not a.target_rules for p in a.paths]

    def scan(self, path: str, text: str) -> list[FileFinding]:
        if any(p.search(path) for p in self._allow_paths):
            return []
        out: list[FileFinding] = []
        for path_rule, pattern in self._path_rules:
            if pattern.search(path):
                out.append(
                    FileFinding(path, 1, 1, 1, 1, path_rule.kind, path_rule.id, path_rule.severity, "(file path)", path_rule.description)
                )
        for f in self.text_scanner.scan_text(text):
            rule = self._rules.get(f.rule_id)
            if rule is None:
                continue
            restricted = self._rule_paths.get(rule.id)
            if restricted is not None and not restricted.search(path):
                continue
            if any(re2.search(p, path) for a in rule.allowlists for p in a.paths):
                continue
            line, column = _position(text, f.start)
            end_line, end_column = _position(text, f.end)
            out.append(
                FileFinding(
                    path,
                    line,
                    column,
                    end_line,
                    end_column,
                    f.kind,
                    f.rule_id,
                    f.severity,
                    f.preview,
                    rule.description,
                    str(f.tier),
                )
            )
        return out


def load_matcher(config_path: Path | None, files: tuple[tuple[str, str], ...], err: Console) -> RuleMatcher:
    """The rules from the cached plan when nothing they came from changed (warm start), else
    from the configuration (cold start, which writes the plan). Exits 2 on a bad configuration
    or rule file."""
    plans = PlanCache(os.environ)
    key = plan_key(config_path, files, os.environ)
    plan = plans.load(key) if key else None
    if plan is None:
        # Imported here, on a cold start only: the configuration loads pydantic, YAML and the
        # settings of every part of egress.
        from egress.config import ConfigError, load_config
        from egress.detect.internal import internal_rules

        try:
            config = load_config(config_path)
            loaded = load_rule_files(list(config.rule_files) + list(files))
        except (RuleError, ConfigError, OSError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            sys.exit(2)
        internal = internal_rules(config.detection.internal_identifiers)
        ruleset = RuleSet(rules=loaded.rules + internal, allowlists=loaded.allowlists, version=loaded.version)
        plan = Plan(ruleset, config.detection.cache_dir)
        if key:
            plans.store(key, plan, config.rule_files)
    return RuleMatcher(plan.ruleset, FileBlobCache(plan.cache_dir), lazy=True)


def _gitignore(root: Path) -> pathspec.GitIgnoreSpec | None:
    patterns: list[str] = []
    for ignore in sorted(root.rglob(".gitignore")):
        base = ignore.parent.relative_to(root).as_posix()
        for line in ignore.read_text(errors="replace").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            body = line[1:] if negate else line
            if base != ".":
                body = f"{base}/{body.lstrip('/')}"
            patterns.append(("!" if negate else "") + body)
    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


def _walk(root: Path) -> Iterator[Path]:
    spec = _gitignore(root)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if ".git" in path.relative_to(root).parts or not path.is_file():
            continue
        if spec is not None and spec.match_file(rel):
            continue
        yield path


def _git_files(root: Path) -> list[Path]:
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True)
    return [root / p for p in out.stdout.decode().split("\0") if p]


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


def _sarif(findings: list[FileFinding], ruleset: RuleSet) -> dict[str, Any]:
    used = sorted({f.rule for f in findings})
    by_id = {r.id: r for r in ruleset.rules}
    rules = []
    for rule_id in used:
        rule: Rule | None = by_id.get(rule_id)
        rules.append(
            {
                "id": rule_id,
                "shortDescription": {"text": rule.description if rule else rule_id},
                "defaultConfiguration": {"level": _LEVEL.get(rule.severity if rule else "medium", "warning")},
                "properties": {"tags": [rule.kind, rule.family] if rule else []},
            }
        )
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": used.index(f.rule),
            "level": _LEVEL.get(f.severity, "warning"),
            "message": {"text": f"{f.description or f.rule} ({f.tier}): {f.preview}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path},
                        "region": {
                            "startLine": f.line,
                            "startColumn": f.column,
                            "endLine": f.end_line,
                            "endColumn": f.end_column,
                        },
                    }
                }
            ],
            "properties": {"kind": f.kind, "severity": f.severity, "tier": f.tier},
        }
        for f in findings
    ]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {"tool": {"driver": {"name": "egress", "semanticVersion": "0.1.0", "rules": rules}}, "results": results}
        ],
    }


FINDINGS_TABLE = TableSpec(
    (
        Column("path", "path"),
        Column("line", "line", no_wrap=True, justify="right"),
        Column("column", "col", justify="right", drop=4),
        Column("kind", "kind", drop=2),
        Column("rule", "rule"),
        Column("severity", "severity", drop=1),
        Column("preview", "preview", drop=3),
        Column("tier", "tier", drop=5),
    )
)


@click.command("scan")
@click.argument("paths", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "table", "plain", "json", "sarif"]),
    default="auto",
    show_default=True,
    help="table: fitted to the terminal; plain: tab-separated columns; auto: table on a terminal, plain "
    "through a pipe.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default="medium",
    show_default=True,
    help="Exit 1 when a finding has this severity or higher.",
)
@click.option(
    "--fail-tier",
    type=click.Choice(TIERS),
    default="likely",
    show_default=True,
    help="Count only findings of this confidence tier or a more certain one for --fail-on (certain: "
    "validated formats only; likely: both tiers).",
)
@click.option(
    "--rules",
    "rule_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="gitleaks-format rule file (repeatable); without [extend] useDefault it replaces the bundled rules.",
)
@config_option_with("egress configuration (for detection.internal_identifiers and detection.rules).")
@click.option("--git", "git_tracked", is_flag=True, help="Scan the tracked files of the git repository at PATH.")
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
def scan_command(
    paths: tuple[str, ...],
    fmt: str,
    as_json: bool,
    fail_on: str,
    fail_tier: str,
    rule_files: tuple[Path, ...],
    config_path: Path | None,
    git_tracked: bool,
    no_progress: bool,
) -> None:
    """Scan files, directories (respecting .gitignore), a git repository's tracked files or
    standard input (-) for secrets, personal data, sensitive files and internal identifiers.

    Exit status: 0 no finding at or above --fail-on (and --fail-tier), 1 findings, 2 error."""
    err = Console(stderr=True, highlight=False)
    try:
        files = tuple((str(p), p.read_text(encoding="utf-8")) for p in rule_files)
    except OSError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    scanner = FileScanner(load_matcher(config_path, files, err))
    ruleset = scanner.ruleset

    targets: list[tuple[str, Path | None]] = []
    for raw in paths or (".",):
        if raw == "-":
            targets.append(("-", None))
            continue
        path = Path(raw)
        if not path.exists():
            err.print(f"[red]error:[/red] {raw}: no such file or directory")
            sys.exit(2)
        if git_tracked:
            try:
                targets += [(p.as_posix(), p) for p in _git_files(path)]
            except (subprocess.CalledProcessError, FileNotFoundError):
                err.print(f"[red]error:[/red] {raw} is not a git repository")
                sys.exit(2)
        elif path.is_dir():
            targets += [(p.as_posix(), p) for p in _walk(path)]
        else:
            targets.append((path.as_posix(), path))

    findings: list[FileFinding] = []
    show = not no_progress and len(targets) > 200 and err.is_terminal
    with Progress(console=err, transient=True, disable=not show) as progress:
        task = progress.add_task("scanning", total=len(targets))
        for name, target in targets:
            text = sys.stdin.read() if target is None else _read(target)
            if text is not None:
                findings += scanner.scan(name, text)
            progress.advance(task)

    fmt = fmt if fmt == "sarif" else resolve_format(fmt, as_json)
    if fmt == "json":
        click.echo(
            orjson.dumps(
                {
                    "findings": [
                        {
                            "path": f.path,
                            "line": f.line,
                            "column": f.column,
                            "kind": f.kind,
                            "rule": f.rule,
                            "severity": f.severity,
                            "tier": f.tier,
                            "preview": f.preview,
                        }
                        for f in findings
                    ]
                },
                option=orjson.OPT_INDENT_2,
            )
        )
    elif fmt == "sarif":
        click.echo(orjson.dumps(_sarif(findings, ruleset), option=orjson.OPT_INDENT_2))
    else:
        rows = [(f.path, f.line, f.column, f.kind, f.rule, f.severity, f.preview, f.tier) for f in findings]
        print_rows(FINDINGS_TABLE, rows, fmt)
        err.print(f"{len(findings)} findings in {len(targets)} inputs ({len(ruleset.rules)} rules)")
    threshold = SEVERITIES.index(fail_on)
    tiers = TIERS[: TIERS.index(fail_tier) + 1]
    failing = [f for f in findings if SEVERITIES.index(f.severity) >= threshold and f.tier in tiers]
    sys.exit(1 if failing else 0)
