"""False positives on clean source: `secret` lines flagged per MB of the Python standard library
and the installed site-packages (test suites excluded: they hold deliberate fake credentials),
for `certain` findings and for both tiers together (issue #14: at most 0.2 and 1 per MB).

    python bench/clean_source.py [--mb 40] [--json FILE] [--examples 20]

A line counts once, with the most certain tier found on it. The same selection of files as
bench/detection_report.py's clean-code section, so the two reports measure the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egress.config import default_cache_dir  # noqa: E402
from egress.detect.compiled_cache import FileBlobCache  # noqa: E402
from egress.detect.engine import RuleMatcher  # noqa: E402
from egress.detect.rules import bundled_files, load_rules  # noqa: E402
from egress.detect.scan import TextScanner  # noqa: E402

EXCLUDED_PARTS = frozenset({"test", "tests", "testing", "idlelib"})


def clean_files(limit_bytes: int) -> list[Path]:
    """The standard library, then the installed packages, in a fixed order, up to the limit."""
    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"]), Path(paths["purelib"])]
    out: list[Path] = []
    total = 0
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            parts = set(path.relative_to(root).parts)
            if parts & EXCLUDED_PARTS or (root == roots[0] and "site-packages" in parts):
                continue
            out.append(path)
            total += path.stat().st_size
            if total >= limit_bytes:
                return out
    return out


@dataclass
class Flagged:
    lines: dict[str, Counter[str]] = field(default_factory=lambda: {"certain": Counter(), "likely": Counter()})
    examples: list[str] = field(default_factory=list)


def measure(scanner: TextScanner, files: list[Path], examples: int) -> tuple[int, Flagged]:
    size = 0
    flagged = Flagged()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        size += len(text.encode())
        best: dict[int, tuple[str, str]] = {}  # line -> (tier, rule)
        for f in scanner.scan_text(text):
            if f.kind != "secret":
                continue
            line = text.count("\n", 0, f.start) + 1
            tier = str(f.tier)
            if line not in best or (tier == "certain" and best[line][0] != "certain"):
                best[line] = (tier, f.rule_id)
        for line, (tier, rule) in sorted(best.items()):
            flagged.lines[tier][rule] += 1
            if len(flagged.examples) < examples:
                flagged.examples.append(f"{path.name}:{line} {tier} `{rule}`")
    return size, flagged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=40.0, help="how much source to scan")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--examples", type=int, default=20)
    args = parser.parse_args()
    matcher = RuleMatcher(load_rules(bundled_files()), FileBlobCache(default_cache_dir(os.environ)))
    scanner = TextScanner(matcher, cache_chars=0)
    files = clean_files(int(args.mb * 1e6))
    started = time.perf_counter()
    size, flagged = measure(scanner, files, args.examples)
    seconds = time.perf_counter() - started
    mb = size / 1e6
    certain = sum(flagged.lines["certain"].values())
    likely = sum(flagged.lines["likely"].values())
    report = {
        "files": len(files),
        "mb": round(mb, 2),
        "certain_lines": certain,
        "likely_lines": likely,
        "certain_per_mb": round(certain / mb, 3),
        "both_per_mb": round((certain + likely) / mb, 3),
        "certain_rules": dict(flagged.lines["certain"].most_common()),
        "likely_rules": dict(flagged.lines["likely"].most_common()),
        "examples": flagged.examples,
        "seconds": round(seconds, 1),
    }
    print(
        f"{len(files)} files, {mb:.1f} MB in {seconds:.1f} s: certain {certain} lines ({certain / mb:.3f}/MB, "
        f"aim <= 0.2), both tiers {certain + likely} lines ({(certain + likely) / mb:.3f}/MB, aim <= 1)"
    )
    for tier in ("certain", "likely"):
        for rule, n in flagged.lines[tier].most_common(15):
            print(f"  {tier:8} {rule}: {n}")
    for example in flagged.examples:
        print("  e.g.", example)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
