"""Scoring a detector on the matrix: recall per cell, family and syntax; findings on negatives.

A case is found when a `secret` finding of either tier overlaps the secret's span (recall
first: a finding that covers the value, or part of it, gets it masked). `certain` recall counts
only findings of that tier. A cell passes when every one of its cases is found.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.corpus.matrix.generate import Case, cases
from tests.corpus.matrix.negatives import negatives

BASELINE = Path(__file__).with_name("baseline.json")


@dataclass(frozen=True, slots=True)
class Detection:
    """One `secret` finding: where it is and its tier (certain | likely)."""

    start: int
    end: int
    tier: str


Detector = Callable[[str], Sequence[Detection]]


@dataclass
class Tally:
    cases: int = 0
    found: int = 0
    certain: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.cases if self.cases else 1.0

    @property
    def certain_recall(self) -> float:
        return self.certain / self.cases if self.cases else 1.0


@dataclass
class MatrixScore:
    cells: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    families: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    syntaxes: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    groups: dict[str, str] = field(default_factory=dict)  # family -> vendor | generic
    misses: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # cell -> texts
    negatives: int = 0
    flagged_negatives: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, tier, text)

    def passing_cells(self) -> list[str]:
        return sorted(cell for cell, t in self.cells.items() if t.found == t.cases)

    def macro_recall(self, group: str | None = None) -> float:
        tallies = [t for f, t in self.families.items() if group is None or self.groups[f] == group]
        return sum(t.recall for t in tallies) / len(tallies) if tallies else 1.0

    def macro_certain_recall(self, group: str | None = None) -> float:
        tallies = [t for f, t in self.families.items() if group is None or self.groups[f] == group]
        return sum(t.certain_recall for t in tallies) / len(tallies) if tallies else 1.0

    def macro_syntax_recall(self) -> float:
        return sum(t.recall for t in self.syntaxes.values()) / len(self.syntaxes) if self.syntaxes else 1.0


def _overlaps(d: Detection, case: Case) -> bool:
    return d.start < case.end and case.start < d.end


def score(detect: Detector, matrix: list[Case] | None = None) -> MatrixScore:
    result = MatrixScore()
    for case in cases() if matrix is None else matrix:
        hits = [d for d in detect(case.text) if _overlaps(d, case)]
        found = bool(hits)
        certain = any(d.tier == "certain" for d in hits)
        result.groups[case.family] = case.group
        for tally in (result.cells[case.cell], result.families[case.family], result.syntaxes[case.syntax]):
            tally.cases += 1
            tally.found += found
            tally.certain += certain
        if not found:
            result.misses[case.cell].append(case.text)
    for kind, _language, text in negatives():
        result.negatives += 1
        for d in detect(text):
            result.flagged_negatives.append((kind, d.tier, text))
    return result


def load_baseline() -> list[str]:
    """The cells that passed when the baseline was last written (an explicit command)."""
    return list(json.loads(BASELINE.read_text())["passing"]) if BASELINE.exists() else []


def write_baseline(result: MatrixScore) -> None:
    doc = {
        "about": "Matrix cells (family × syntax) that passed; the build fails if one stops passing. "
        "Rewrite with: python bench/matrix_report.py --update-baseline",
        "passing": result.passing_cells(),
    }
    BASELINE.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
