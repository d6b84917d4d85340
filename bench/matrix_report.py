"""Recall on the matrix corpus (tests/corpus/matrix): per family, per syntax, macro; findings
on the hard negatives. Prints the tables and writes them into docs/detection.md (between the
matrix markers); `--update-baseline` rewrites the cells the build holds (an explicit step).

    python bench/matrix_report.py [--update-baseline] [--save-summary FILE] [--before FILE]

`--save-summary` keeps this run's per-family and per-syntax recall as JSON; `--before` puts such
a file's numbers beside this run's (e.g. the commit before a detection change).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.corpus.matrix.detector import egress_detector  # noqa: E402
from tests.corpus.matrix.generate import PER_CELL, SEED  # noqa: E402
from tests.corpus.matrix.score import MatrixScore, score, write_baseline  # noqa: E402
from tests.corpus.matrix.syntaxes import SYNTAXES  # noqa: E402

BEGIN = "<!-- matrix report: begin (bench/matrix_report.py writes this section) -->"
END = "<!-- matrix report: end -->"


def summary(result: MatrixScore) -> dict[str, object]:
    return {
        "macro_recall": result.macro_recall(),
        "macro_recall_vendor": result.macro_recall("vendor"),
        "macro_recall_generic": result.macro_recall("generic"),
        "macro_certain_recall": result.macro_certain_recall(),
        "macro_syntax_recall": result.macro_syntax_recall(),
        "cells": len(result.cells),
        "passing_cells": len(result.passing_cells()),
        "negatives": result.negatives,
        "flagged_negatives": len(result.flagged_negatives),
        "families": {f: t.recall for f, t in sorted(result.families.items())},
        "syntaxes": {s: t.recall for s, t in sorted(result.syntaxes.items())},
    }


def _cell(before: dict[str, float] | None, key: str) -> str:
    if before is None:
        return ""
    value = before.get(key)
    return "—" if value is None else f"{value:.3f}"


def tables(result: MatrixScore, before: dict[str, object] | None, label: str) -> list[str]:
    cases = sum(t.cases for t in result.cells.values())
    head_before = f" {label} |" if before else ""
    sep_before = "---|" if before else ""
    b_fam = before["families"] if before else None
    b_syn = before["syntaxes"] if before else None
    out = [
        BEGIN,
        "",
        "## Matrix corpus: recall per credential family and per syntax",
        "",
        f"`tests/corpus/matrix/` generates {cases} cases (seed {SEED}, {PER_CELL} per cell): "
        f"{len(result.families)} credential families × {len(SYNTAXES)} syntaxes (a family meets only the "
        "syntaxes that can hold its value: `IDENTIFIED BY`, .netrc or `mysql -p` hold passwords only), "
        f"{len(result.cells)} cells, and {result.negatives} hard negatives. A case is found when a `secret` "
        "finding of either tier overlaps its value. `tests/unit/detect/test_matrix.py` fails the build when "
        "a cell in `tests/corpus/matrix/baseline.json` stops passing or a hard negative gets any finding.",
        "",
        "| measure | " + (f"{label} | " if before else "") + "now |",
        "|---|" + sep_before + "---|",
    ]
    now = summary(result)
    for key, name in (
        ("macro_recall", "macro recall over families (either tier)"),
        ("macro_recall_vendor", "… vendor families"),
        ("macro_recall_generic", "… generic families"),
        ("macro_certain_recall", "macro recall, `certain` findings only"),
        ("macro_syntax_recall", "macro recall over syntaxes"),
    ):
        out.append(f"| {name} | " + (f"{_cell(before, key)} | " if before else "") + f"{now[key]:.3f} |")  # type: ignore[str-format]
    out.append(
        "| cells passing | " + (f"{before['passing_cells']} | " if before else "")
        + f"{now['passing_cells']} of {now['cells']} |"
    )
    out.append(
        "| findings on hard negatives | " + (f"{before['flagged_negatives']} | " if before else "")
        + f"{now['flagged_negatives']} of {now['negatives']} |"
    )
    out += ["", "| family | group | cases | recall |" + head_before + " `certain` |", "|---|---|---|---|" + sep_before + "---|"]
    for family, t in sorted(result.families.items(), key=lambda kv: (kv[1].recall, kv[0])):
        b = f" {_cell(b_fam, family)} |" if before else ""  # type: ignore[arg-type]
        out.append(f"| {family} | {result.groups[family]} | {t.cases} | {t.recall:.3f} |{b} {t.certain_recall:.3f} |")
    out += ["", "| syntax | cases | recall |" + head_before, "|---|---|---|" + sep_before]
    for syntax, t in sorted(result.syntaxes.items(), key=lambda kv: (kv[1].recall, kv[0])):
        b = f" {_cell(b_syn, syntax)} |" if before else ""  # type: ignore[arg-type]
        out.append(f"| {syntax} | {t.cases} | {t.recall:.3f} |{b}")
    if result.flagged_negatives:
        out += ["", "Hard negatives with a finding:", ""]
        out += [f"- {kind} ({tier}): `{text[:100]}`" for kind, tier, text in result.flagged_negatives[:30]]
    out += ["", END]
    return out


def write_section(path: Path, lines: list[str]) -> None:
    text = path.read_text() if path.exists() else ""
    section = "\n".join(lines)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--update-baseline", action="store_true", help="rewrite tests/corpus/matrix/baseline.json")
    parser.add_argument("--save-summary", type=Path, help="write this run's recall as JSON")
    parser.add_argument("--before", type=Path, help="a saved summary to show beside this run")
    parser.add_argument("--before-label", default="before")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "detection.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    result = score(egress_detector())
    before = json.loads(args.before.read_text()) if args.before else None
    lines = tables(result, before, args.before_label)
    print("\n".join(lines))
    if args.save_summary:
        args.save_summary.write_text(json.dumps(summary(result), indent=1) + "\n")
    if not args.no_write:
        write_section(args.out, lines)
    if args.update_baseline:
        write_baseline(result)
        print(f"baseline: {len(result.passing_cells())} passing cells")


if __name__ == "__main__":
    main()
