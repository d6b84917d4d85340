"""Recall on the held-apart unseen set (tests/corpus/unseen): per family, per syntax, macro, by
part (vendor formats, generic credentials), and the tiers found on the near-misses. Prints the
tables and writes them into docs/detection.md (between the unseen markers).

    python bench/unseen_report.py [--update-baseline] [--save-summary FILE] [--before FILE]
                                  [--misses N] [--no-write]

`--save-summary` keeps this run's numbers as JSON; `--before` puts such a file's numbers beside
this run's (the engine before a change). `--update-baseline` rewrites the recall per family the
build holds (an explicit step).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.corpus.matrix.detector import egress_detector  # noqa: E402
from tests.corpus.unseen.generate import PER_CELL, SEED, cases  # noqa: E402
from tests.corpus.unseen.score import UnseenScore, score, write_baseline  # noqa: E402

BEGIN = "<!-- unseen report: begin (bench/unseen_report.py writes this section) -->"
END = "<!-- unseen report: end -->"


def summary(result: UnseenScore) -> dict[str, object]:
    m = result.matrix
    return {
        "macro_recall_vendor": m.macro_recall("vendor"),
        "macro_recall_generic": m.macro_recall("generic"),
        "macro_certain_vendor": m.macro_certain_recall("vendor"),
        "macro_syntax_recall": m.macro_syntax_recall(),
        "near_misses": result.near_misses,
        "certain_on_near_misses": len(result.certain_on_near_misses),
        "likely_on_near_misses": len(result.likely_on_near_misses),
        "families": {f: t.recall for f, t in sorted(m.families.items())},
        "syntaxes": {s: t.recall for s, t in sorted(m.syntaxes.items())},
    }


def _b(before: dict[str, object] | None, section: str, key: str) -> str:
    if before is None:
        return ""
    value = before[section].get(key)  # type: ignore[attr-defined]
    return " — |" if value is None else f" {value:.3f} |"


def tables(result: UnseenScore, before: dict[str, object] | None, label: str) -> list[str]:
    m = result.matrix
    now = summary(result)
    bh = f" {label} |" if before else ""
    bs = "---|" if before else ""
    out = [
        BEGIN,
        "",
        "## Unseen set: recall on material no rule was written against",
        "",
        f"`tests/corpus/unseen/` generates {len(cases())} cases (seed {SEED}, {PER_CELL} per cell): "
        f"(a) {sum(1 for g in m.groups.values() if g == 'vendor')} vendor token formats that no bundled rule "
        "covered when the set was written, in 8 syntaxes (some name the value, some do not); (b) "
        f"{sum(1 for g in m.groups.values() if g == 'generic')} generic credential families (names in any casing "
        "and in other languages) in syntaxes the matrix does not use (SQL, CLI flags, URIs of many schemes, "
        "connection strings, Kubernetes, Terraform, dotfiles, code in 20 languages, logs, prose); (c) "
        f"{result.near_misses} near-misses (placeholders, references, hashes, identifiers, public keys) that must "
        "never be `certain`. It was written before the rules were changed; rules come from vendor documentation "
        "and general syntax, never from these generators. A case is found when a `secret` finding of either tier "
        "overlaps its value. `tests/unit/detect/test_unseen.py` fails the build when a family's recall falls "
        "below `tests/corpus/unseen/baseline.json` or a near-miss gets a `certain` finding.",
        "",
        "| measure |" + bh + " now |",
        "|---|" + bs + "---|",
    ]
    for key, name in (
        ("macro_recall_vendor", "(a) vendor formats: macro recall (either tier)"),
        ("macro_certain_vendor", "(a) vendor formats: macro recall, `certain` only"),
        ("macro_recall_generic", "(b) generic credentials: macro recall"),
        ("macro_syntax_recall", "macro recall over syntaxes (a and b)"),
        ("certain_on_near_misses", f"(c) near-misses with a `certain` finding (of {result.near_misses})"),
        ("likely_on_near_misses", "(c) near-misses with only a `likely` finding (masked, not blocked)"),
    ):
        value = now[key]
        cell = f"{value:.3f}" if isinstance(value, float) else str(value)
        prev = ""
        if before is not None:
            b = before[key]
            prev = f" {b:.3f} |" if isinstance(b, float) else f" {b} |"
        out.append(f"| {name} |{prev} {cell} |")
    out += ["", "| family | part | cases | recall |" + bh + " `certain` |", "|---|---|---|---|" + bs + "---|"]
    for fam, t in sorted(m.families.items(), key=lambda kv: (m.groups[kv[0]], kv[1].recall, kv[0])):
        out.append(
            f"| {fam} | {m.groups[fam]} | {t.cases} | {t.recall:.3f} |{_b(before, 'families', fam)} {t.certain_recall:.3f} |"
        )
    out += ["", "| syntax | cases | recall |" + bh, "|---|---|---|" + bs]
    for syn, t in sorted(m.syntaxes.items(), key=lambda kv: (kv[1].recall, kv[0])):
        out.append(f"| {syn} | {t.cases} | {t.recall:.3f} |{_b(before, 'syntaxes', syn)}")
    if result.certain_on_near_misses or result.likely_on_near_misses:
        out += ["", "Near-misses with a finding:", ""]
        out += [f"- `certain`: `{t}`" for t in result.certain_on_near_misses]
        out += [f"- `likely`: `{t}`" for t in result.likely_on_near_misses]
    out += ["", END]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--update-baseline", action="store_true")
    ap.add_argument("--save-summary")
    ap.add_argument("--before")
    ap.add_argument("--label", default="before")
    ap.add_argument("--misses", type=int, default=0, help="print up to N missed texts per family")
    ap.add_argument("--no-write", action="store_true", help="do not rewrite docs/detection.md")
    args = ap.parse_args()
    result = score(egress_detector())
    before = json.loads(Path(args.before).read_text()) if args.before else None
    lines = tables(result, before, args.label)
    print("\n".join(lines))
    if args.misses:
        for cell, texts in sorted(result.matrix.misses.items()):
            print(f"MISS {cell}: {texts[0][:200]!r}")
    if args.save_summary:
        Path(args.save_summary).write_text(json.dumps(summary(result), indent=1) + "\n")
    if args.update_baseline:
        write_baseline(result)
    if not args.no_write:
        doc = ROOT / "docs" / "detection.md"
        text = doc.read_text()
        block = "\n".join(lines)
        if BEGIN in text:
            head, rest = text.split(BEGIN, 1)
            text = head + block + rest.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        doc.write_text(text)


if __name__ == "__main__":
    main()
